"""The demo project: sample_site's settings, demo_setup, its tasks under the lean worker settings,
the landing page, and ``scripts/demo.sh`` (what ``make demo`` runs) as real processes.

These tests do not use the suite's test database: every process opens a demo database of its own
(a temporary SQLite file, or a throwaway PostgreSQL database through ``DATABASE_URL``).
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from sample_site.dburl import database_from_url
from sample_site.tasks import DEMOS
from tests.conftest import ROOT, run_python

QUEUED, PROGRESS, COMPLETED, FAILED = 0, 1, 2, 3
TASK_COLUMNS = (
    "task, status, attempts, max_attempts, output, error, log, progress, progress_message"
)


def demo_env(db_path: Path | None = None, **extra: str) -> dict[str, str]:
    """The environment of a demo process: sample_site settings on the given SQLite file."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "DSQ_DB_NAME"}}
    env["DJANGO_SETTINGS_MODULE"] = "sample_site.settings"
    env["PYTHONPATH"] = str(ROOT)
    if db_path is not None:
        env["DEMO_DB_PATH"] = str(db_path)
    env.update(extra)
    return env


def manage(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def python(code: str, env: dict[str, str]) -> Any:
    """Run ``code`` in a fresh interpreter with Django set up; return what it printed as JSON."""
    script = "import django, json\ndjango.setup()\n" + code
    return json.loads(run_python(script, env))


def sqlite_rows(db_path: Path, sql: str) -> list[sqlite3.Row]:
    with sqlite3.connect(db_path, timeout=30) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute(sql).fetchall()


@pytest.fixture(scope="module")
def sqlite_pass() -> None:
    """The SQLite demo runs once per Django version: in the suite's SQLite pass."""
    if connection.vendor != "sqlite":
        pytest.skip("the SQLite demo runs in the SQLite pass (DSQ_TEST_DB=sqlite)")


@pytest.fixture(scope="module")
def migrated(sqlite_pass: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo database with every migration applied (copied for each test that needs one)."""
    path = tmp_path_factory.mktemp("demo") / "migrated.sqlite3"
    manage("migrate", "--noinput", env=demo_env(path))
    return path


@pytest.fixture
def demo_db(migrated: Path, tmp_path: Path) -> Path:
    path = tmp_path / "demo.sqlite3"
    with sqlite3.connect(migrated) as source, sqlite3.connect(path) as target:
        source.backup(target)
    return path


# --- settings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgres://shop:p%40ss%2Fword@db.example.com:6543/shop_prod",
            {
                "NAME": "shop_prod",
                "USER": "shop",
                "PASSWORD": "p@ss/word",
                "HOST": "db.example.com",
                "PORT": "6543",
                "OPTIONS": {},
            },
        ),
        (
            "postgresql://u@[::1]:5433/app?sslmode=require&connect_timeout=5",
            {
                "NAME": "app",
                "USER": "u",
                "PASSWORD": "",
                "HOST": "::1",
                "PORT": "5433",
                "OPTIONS": {"sslmode": "require", "connect_timeout": "5"},
            },
        ),
        (
            "postgres://%2Fvar%2Frun%2Fpostgresql/app",
            {"NAME": "app", "USER": "", "HOST": "/var/run/postgresql", "PORT": ""},
        ),
        (
            "pgsql:///app?host=/tmp/sockets",
            {"NAME": "app", "HOST": "/tmp/sockets", "PORT": "", "OPTIONS": {}},
        ),
    ],
)
def test_database_url_postgres(url: str, expected: dict[str, Any]) -> None:
    db = database_from_url(url)
    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert {key: db[key] for key in expected} == expected


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("sqlite:////srv/data/demo.sqlite3", "/srv/data/demo.sqlite3"),
        ("sqlite:///demo.sqlite3", "demo.sqlite3"),
    ],
)
def test_database_url_sqlite(url: str, name: str) -> None:
    db = database_from_url(url)
    assert db["ENGINE"] == "django.db.backends.sqlite3"
    assert db["NAME"] == name
    assert db["OPTIONS"]["transaction_mode"] == "IMMEDIATE"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u:p@host/db", "scheme 'mysql' is not supported"),
        ("postgres://u:p@host:5432/", "names no database"),
        ("postgres://u:p@host:port/db", "a port is a number"),
        ("sqlite://", "names no SQLite file"),
    ],
)
def test_database_url_errors_name_the_problem(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        database_from_url(url)


SHOW_DATABASE = "from django.conf import settings\nprint(json.dumps(settings.DATABASES['default']))"


def test_settings_use_sqlite_unless_database_url_is_set(sqlite_pass: None, tmp_path: Path) -> None:
    sqlite = python(SHOW_DATABASE, demo_env(tmp_path / "x.sqlite3"))
    assert (sqlite["ENGINE"], sqlite["NAME"]) == (
        "django.db.backends.sqlite3",
        str(tmp_path / "x.sqlite3"),
    )

    url = "postgres://shop:secret@db.example.com:6543/shop"
    postgres = python(SHOW_DATABASE, demo_env(tmp_path / "x.sqlite3", DATABASE_URL=url))
    assert postgres["ENGINE"] == "django.db.backends.postgresql"
    assert (postgres["NAME"], postgres["HOST"], postgres["PORT"]) == (
        "shop",
        "db.example.com",
        "6543",
    )


def test_lean_worker_settings_leave_out_the_web_apps(sqlite_pass: None, tmp_path: Path) -> None:
    code = (
        "from django.apps import apps\nfrom django.conf import settings\n"
        "print(json.dumps({'apps': [a.name for a in apps.get_app_configs()],"
        " 'middleware': settings.MIDDLEWARE, 'templates': settings.TEMPLATES,"
        " 'db': settings.DATABASES['default']['NAME'], 'allowed': sorted(settings.DJANGO_SIMPLE_QUEUE_ALLOWED_TASKS)}))"
    )
    env = demo_env(
        tmp_path / "lean.sqlite3", DJANGO_SETTINGS_MODULE="sample_site.task_worker_settings"
    )
    lean = python(code, env)
    assert lean["apps"] == ["django_simple_queue", "sample_site"]
    assert lean["middleware"] == [] and lean["templates"] == []
    # Same database and the same allowed tasks as the web site, or the worker would refuse them.
    assert lean["db"] == str(tmp_path / "lean.sqlite3")
    assert lean["allowed"] == sorted(demo.task for demo in DEMOS.values())


# --- demo_setup -----------------------------------------------------------------------------


def test_demo_setup_creates_the_admin_and_sample_tasks_once(demo_db: Path) -> None:
    first = manage("demo_setup", env=demo_env(demo_db))
    assert "Created the superuser admin (password admin)." in first.stdout
    second = manage("demo_setup", env=demo_env(demo_db))
    assert "A superuser exists already" in second.stdout
    assert "Sample tasks exist already" in second.stdout

    users = sqlite_rows(demo_db, "SELECT username, is_superuser, is_staff FROM auth_user")
    assert [tuple(row) for row in users] == [("admin", 1, 1)]
    tasks = sqlite_rows(demo_db, "SELECT task, status, enqueued_by FROM django_simple_queue_task")
    assert sorted(row["task"] for row in tasks) == sorted(demo.task for demo in DEMOS.values())
    assert {(row["status"], row["enqueued_by"]) for row in tasks} == {(QUEUED, "demo_setup")}


def test_demo_setup_keeps_an_existing_superuser(demo_db: Path) -> None:
    env = demo_env(demo_db, DJANGO_SUPERUSER_PASSWORD="s3cret-pass")
    manage(
        "createsuperuser", "--noinput", "--username", "boss", "--email", "b@example.com", env=env
    )
    out = manage("demo_setup", env=env).stdout
    assert "A superuser exists already" in out
    assert [row["username"] for row in sqlite_rows(demo_db, "SELECT username FROM auth_user")] == [
        "boss"
    ]


def test_demo_setup_refuses_an_unmigrated_database(sqlite_pass: None, tmp_path: Path) -> None:
    proc = manage("demo_setup", env=demo_env(tmp_path / "empty.sqlite3"), check=False)
    assert proc.returncode != 0
    assert "run 'python manage.py migrate' first" in proc.stderr


# --- the demo tasks under a worker with the lean settings -----------------------------------


def primes_below(limit: int) -> int:
    sieve = bytearray([1]) * limit
    sieve[:2] = b"\x00\x00"
    for n in range(2, int(limit**0.5) + 1):
        if sieve[n]:
            sieve[n * n :: n] = bytearray(len(sieve[n * n :: n]))
    return sum(sieve)


def run_worker_until_done(
    fetch: Callable[[], list[dict[str, Any]]], env: dict[str, str], count: int, timeout: float = 90
) -> tuple[list[dict[str, Any]], str]:
    """Run the lean worker until ``count`` tasks are finished, stop it with SIGTERM; rows and output."""
    worker_env = {**env, "DJANGO_SETTINGS_MODULE": "sample_site.task_worker_settings"}
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "task_worker", "--concurrency", "3"],
        cwd=ROOT,
        env=worker_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + timeout
        rows = fetch()
        while sum(row["status"] in (COMPLETED, FAILED) for row in rows) < count:
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, rows
            time.sleep(0.2)
            rows = fetch()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 0, out
    return rows, out


def check_demo_outcomes(rows: list[dict[str, Any]], api_calls: int) -> None:
    """What each demo task is designed to end with."""
    by_name = {row["task"].rpartition(".")[2]: row for row in rows}
    assert len(by_name) == len(DEMOS) == len(rows)

    email = by_name["send_welcome_email"]
    assert (email["status"], email["output"]) == (COMPLETED, "sent 1 e-mail to ada@example.com")
    assert "Subject: Welcome aboard" in email["log"]  # the console e-mail backend's print, captured

    primes = by_name["count_primes"]
    lines = primes["output"].splitlines()
    assert primes["status"] == COMPLETED and len(lines) == 10
    assert lines[-1].split() == ["below", "100000:", str(primes_below(100_000)), "primes"]

    services = by_name["check_services"]
    assert services["status"] == COMPLETED
    elapsed = float(re.search(r"4 services checked in ([\d.]+) s", services["output"])[1])  # type: ignore[index]
    assert elapsed < 0.5 + 0.55 + 0.6 + 0.65  # the four awaits overlapped

    report = by_name["build_report"]
    assert (report["status"], report["output"]) == (COMPLETED, "report ready: 100 rows, total 5050")
    assert (report["progress"], report["progress_message"]) == (1.0, "100 of 100 rows")

    contacts = by_name["import_contacts"]
    assert contacts["status"] == FAILED
    assert "ValueError: row 2: 'grace(at)example.com' is not an e-mail address" in contacts["error"]
    assert "imported ada@example.com" in contacts["log"] and "alan" not in contacts["log"]

    flaky = by_name["call_flaky_api"]
    assert (flaky["status"], flaky["attempts"], flaky["max_attempts"]) == (COMPLETED, 3, 3)
    assert flaky["output"] == "the API answered on call 3"
    assert api_calls == 3


def test_lean_worker_runs_every_demo_task_as_designed(demo_db: Path) -> None:
    env = demo_env(demo_db)
    manage("demo_setup", env=env)

    def fetch() -> list[dict[str, Any]]:
        return [
            dict(row)
            for row in sqlite_rows(demo_db, f"SELECT {TASK_COLUMNS} FROM django_simple_queue_task")
        ]

    rows, out = run_worker_until_done(fetch, env, count=len(DEMOS))
    calls = sqlite_rows(demo_db, "SELECT count(*) FROM sample_site_apicall")[0][0]
    check_demo_outcomes(rows, calls)
    assert out.count("call_flaky_api (attempt") == 3, out  # claimed three times


def pg_query(sql: str, dbname: str, **admin: str) -> list[dict[str, Any]]:
    """Run one statement outside Django (autocommit), with whichever driver Django would use."""
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    if is_psycopg3:
        import psycopg as driver
    else:
        import psycopg2 as driver  # type: ignore[no-redef]
    conn = driver.connect(dbname=dbname, **admin)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql)
            if cur.description is None:
                return []
            columns = [col.name for col in cur.description]
            return [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]
    finally:
        conn.close()


@pytest.mark.postgres
def test_demo_on_postgresql_through_database_url() -> None:
    admin = {
        "host": os.environ.get("PGHOST", "127.0.0.1"),
        "port": os.environ.get("PGPORT", "5432"),
        "user": os.environ.get("PGUSER", "postgres"),
        "password": os.environ.get("PGPASSWORD", ""),
    }
    name = f"dsq_demo_{uuid.uuid4().hex[:8]}"
    url = "postgres://{user}:{password}@{host}:{port}/{name}".format(
        name=name, **{k: urllib.parse.quote(v, safe="") for k, v in admin.items()}
    )
    pg_query(f'CREATE DATABASE "{name}"', "postgres", **admin)
    try:
        env = demo_env(None, DATABASE_URL=url, DEMO_DB_PATH="/nonexistent/never-used.sqlite3")
        manage("migrate", "--noinput", env=env)
        manage("demo_setup", env=env)

        def fetch() -> list[dict[str, Any]]:
            return pg_query(f"SELECT {TASK_COLUMNS} FROM django_simple_queue_task", name, **admin)

        rows, _ = run_worker_until_done(fetch, env, count=len(DEMOS))
        (calls,) = pg_query("SELECT count(*) AS n FROM sample_site_apicall", name, **admin)
        check_demo_outcomes(rows, calls["n"])
    finally:
        pg_query(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', "postgres", **admin)


# --- scripts/demo.sh: the web server and the worker together --------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Browser:
    """urllib with a cookie jar, enough for a CSRF-protected form."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def get(self, path: str) -> tuple[int, str, str]:
        try:
            with self.opener.open(self.base + path, timeout=10) as resp:
                return resp.status, resp.geturl(), resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.url, exc.read().decode()

    def post(self, path: str, data: dict[str, str]) -> tuple[int, str, str]:
        body = urllib.parse.urlencode(data).encode()
        request = urllib.request.Request(
            self.base + path, data=body, headers={"Referer": self.base + "/"}
        )
        try:
            with self.opener.open(request, timeout=10) as resp:
                return resp.status, resp.geturl(), resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.url, exc.read().decode()


def processes_with(marker: str) -> list[int]:
    """Pids of live processes whose environment contains ``marker``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


@pytest.fixture(scope="module")
def demo_site(
    sqlite_pass: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """``scripts/demo.sh`` running on a free port with its own database, current interpreter."""
    db_path = tmp_path_factory.mktemp("demo-sh") / "demo.sqlite3"
    port = free_port()
    # Appending: the test reads it (seek) while the processes write to the same file description.
    log = (db_path.parent / "demo.log").open("a+")
    env = demo_env(db_path, DEMO_PYTHON=sys.executable, PORT=str(port))
    env.pop("DJANGO_SETTINGS_MODULE")  # as from a shell: manage.py chooses sample_site.settings
    proc = subprocess.Popen(
        ["bash", "scripts/demo.sh"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    site = {"proc": proc, "base": base, "db": db_path, "log": log}
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(base + "/", timeout=5) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            log.seek(0)
            assert proc.poll() is None, log.read()
            assert time.monotonic() < deadline, log.read()
            time.sleep(0.2)
        yield site
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        for pid in processes_with(f"DEMO_DB_PATH={db_path}"):
            os.kill(pid, signal.SIGKILL)
        proc.wait(10)
        log.close()


def test_demo_sh_serves_landing_page_status_page_and_admin(demo_site: dict[str, Any]) -> None:
    browser = Browser(demo_site["base"])
    status, _, html = browser.get("/")
    assert status == 200
    for demo in DEMOS.values():
        assert demo.title in html
    assert "user <code>admin</code>, password <code>admin</code>" in html
    # demo_setup's sample tasks are listed, each linking to its public status page.
    links = re.findall(r'href="(/django_simple_queue/task\?task_id=[0-9a-f-]{36})"', html)
    assert len(links) == len(DEMOS)
    status, _, page = browser.get(links[0])
    assert status == 200 and "sample_site.tasks." in page

    assert browser.get("/static/admin/css/base.css")[0] == 200
    status, url, login = browser.get("/admin/")
    assert status == 200 and url.endswith("/admin/login/?next=/admin/")
    assert "django-simple-queue demo" in login  # templates/admin/base_site.html
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login)[1]  # type: ignore[index]
    status, url, index = browser.post(
        "/admin/login/?next=/admin/",
        {"csrfmiddlewaretoken": token, "username": "admin", "password": "admin"},
    )
    assert status == 200 and url.endswith("/admin/"), index
    assert "Site administration" in index and 'href="/admin/django_simple_queue/task/"' in index


ADMIN_TEMPLATES = ROOT / "django_simple_queue/templates/admin/django_simple_queue/task"


@pytest.mark.skipif(
    not ADMIN_TEMPLATES.is_dir(),
    reason="the task admin's templates are not in django_simple_queue yet (sample_site has no admin_ext)",
)
def test_demo_sh_serves_the_task_admin(demo_site: dict[str, Any]) -> None:
    browser = Browser(demo_site["base"])
    login = browser.get("/admin/login/")[2]
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login)[1]  # type: ignore[index]
    browser.post(
        "/admin/login/", {"csrfmiddlewaretoken": token, "username": "admin", "password": "admin"}
    )
    status, _, changelist = browser.get("/admin/django_simple_queue/task/")
    assert status == 200, changelist[:2000]
    change_links = re.findall(
        r'href="(/admin/django_simple_queue/task/[0-9a-f-]{36}/change/)"', changelist
    )
    assert len(set(change_links)) >= len(DEMOS)
    status, _, change = browser.get(change_links[0])
    assert status == 200 and "sample_site.tasks." in change
    assert browser.get("/admin/django_simple_queue/task/add/")[0] == 200


def test_demo_sh_enqueues_from_the_landing_page_and_its_worker_runs_it(
    demo_site: dict[str, Any],
) -> None:
    browser = Browser(demo_site["base"])
    # Without the CSRF token the form is refused.
    assert browser.post("/enqueue/", {"demo": "email"})[0] == 403

    html = browser.get("/")[2]
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)[1]  # type: ignore[index]
    assert browser.post("/enqueue/", {"csrfmiddlewaretoken": token, "demo": "nonsense"})[0] == 400
    status, url, page = browser.post(
        "/enqueue/", {"csrfmiddlewaretoken": token, "demo": "services"}
    )
    assert (
        status == 200 and "/django_simple_queue/task?task_id=" in url
    )  # redirected to the status page
    task_id = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["task_id"][0]
    assert task_id in page

    row = sqlite_rows(
        demo_site["db"],
        f"SELECT task, enqueued_by FROM django_simple_queue_task WHERE id = '{uuid.UUID(task_id).hex}'",
    )
    assert [tuple(r) for r in row] == [("sample_site.tasks.check_services", "landing page")]

    # The worker that demo.sh started picks it up.
    deadline = time.monotonic() + 30
    while True:
        data = json.loads(browser.get(f"/django_simple_queue/task?task_id={task_id}&type=json")[2])
        if data["status"] == "Completed":
            break
        assert data["status"] in ("Queued", "In progress") and time.monotonic() < deadline, data
        time.sleep(0.3)
    assert "4 services checked" in data["output"]
    assert "check_services" in browser.get("/")[2]


def test_demo_sh_starts_its_worker_without_warnings(demo_site: dict[str, Any]) -> None:
    log = demo_site["log"]
    log.seek(0)
    output = log.read()
    assert "django_simple_queue.W" not in output, output
    assert " started: concurrency 1," in output  # one task at a time on SQLite


def test_demo_sh_stops_both_processes_on_ctrl_c(demo_site: dict[str, Any]) -> None:
    proc: subprocess.Popen[bytes] = demo_site["proc"]
    marker = f"DEMO_DB_PATH={demo_site['db']}"
    assert len(processes_with(marker)) >= 3  # the script, the worker (and its pool), runserver
    proc.send_signal(signal.SIGINT)
    assert proc.wait(20) == 0
    log = demo_site["log"]
    log.seek(0)
    output = log.read()
    assert "Stopped." in output and "no new tasks" in output  # the worker drained, not killed
    assert processes_with(marker) == []
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", int(demo_site["base"].rsplit(":", 1)[1])), timeout=2)


def test_demo_sh_stops_the_worker_when_the_web_server_cannot_start(demo_db: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = demo_env(demo_db, DEMO_PYTHON=sys.executable, PORT=str(port))
        proc = subprocess.run(
            ["bash", "scripts/demo.sh"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
            start_new_session=True,
        )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output
    assert f"The web server exited (is port {port} in use?" in output
    assert "Stopped." in output
    assert processes_with(f"DEMO_DB_PATH={demo_db}") == []
