"""A queue on its own database (routers.QueueRouter): web data on SQLite, the queue on PostgreSQL.

Everything runs in real processes with tests/settings_queue_db.py: migrate both databases, enqueue,
a worker, the admin and the status page.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest
from django.db import connection

from tests.conftest import ROOT, manage, run_python, wait_for, worker_env

pytestmark = pytest.mark.postgres

SETUP = "import django; django.setup()\n"


def create_database() -> str:
    name = f"dsq_{uuid.uuid4().hex[:10]}"
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    return name


@pytest.fixture(params=["sqlite", "postgres"])
def two_databases(request, transactional_db: None, tmp_path) -> Iterator[dict[str, str]]:
    """The environment of processes whose project data is on SQLite or on another PostgreSQL
    database, and whose queue is on a PostgreSQL database of its own."""
    created = [create_database()]
    web = str(tmp_path / "web.sqlite3")
    if request.param == "postgres":
        created.append(create_database())
        web = f"postgres:{created[-1]}"
    env = worker_env(
        DJANGO_SETTINGS_MODULE="tests.settings_queue_db", DSQ_WEB_DB=web, DSQ_QUEUE_DB=created[0]
    )
    try:
        yield env
    finally:
        with connection.cursor() as cursor:
            for name in created:
                cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def count_finished(env: dict[str, str]) -> int:
    """Finished tasks in the queue's database, read with a connection of the test's own."""
    params = {**connection.get_connection_params(), "dbname": env["DSQ_QUEUE_DB"]}
    params.pop("cursor_factory", None)
    with connection.Database.connect(**params) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM django_simple_queue_task WHERE status IN (2, 3, 4)")
        return int(cursor.fetchone()[0])


def django(env: dict[str, str], *args: str) -> str:
    proc = subprocess.run(
        manage(*args), env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_a_queue_on_its_own_database_serves_enqueue_worker_admin_and_status_page(two_databases):
    env = two_databases
    django(env, "migrate", "-v", "0")
    django(env, "migrate", "--database", "queue", "-v", "0")
    tables = run_python(
        SETUP + "from django.db import connections\n"
        "for alias in ('default', 'queue'):\n"
        "    names = connections[alias].introspection.table_names()\n"
        "    print(alias, 'django_simple_queue_task' in names, 'auth_user' in names)\n",
        env,
    )
    assert tables.split("\n")[:2] == ["default False True", "queue True False"]

    task_id = run_python(
        SETUP + "from django.db import transaction\n"
        "from django_simple_queue.utils import create_task, create_tasks\n"
        "with transaction.atomic(using='queue'):\n"
        "    create_tasks([{'task': 'tests.tasks.add', 'args': {'a': n}} for n in range(3)])\n"
        "print(create_task('tests.tasks.add', {'a': 40, 'b': 2}))\n",
        env,
    ).strip()
    # A worker that would poll (and heartbeat) every 30 s: it hears of new tasks through LISTEN
    # on the queue's database.
    worker = subprocess.Popen(
        manage("task_worker", "--poll-interval", "30"),
        env={**env, "DSQ_HEARTBEAT_INTERVAL": "30", "DSQ_STALE_AFTER": "120"},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(lambda: count_finished(env) == 4, timeout=30)
        late = run_python(
            SETUP + "from django_simple_queue.utils import create_task\n"
            "print(create_task('tests.tasks.add', {'a': 1}))\n",
            env,
        ).strip()
        started = time.monotonic()
        wait_for(lambda: count_finished(env) == 5, timeout=40)
        assert time.monotonic() - started < 10, "woken by NOTIFY on the queue's database"
    finally:
        worker.terminate()
        worker.wait(30)
    assert late

    script = (
        SETUP + "from django.contrib.auth.models import User\n"
        "from django.test import Client\n"
        "from django_simple_queue.models import Task\n"
        "print(sorted(Task.objects.values_list('status', flat=True)))\n"
        "print(Task.objects.get(id='TASK').output)\n"
        "User.objects.create_superuser('boss', 'boss@example.com', 'pw')\n"
        "client = Client()\n"
        "client.force_login(User.objects.get(username='boss'))\n"
        "listing = client.get('/admin/django_simple_queue/task/')\n"
        "page = client.get('/admin/django_simple_queue/task/TASK/change/')\n"
        "status = client.get('/django_simple_queue/task?task_id=TASK&type=json')\n"
        "print(listing.status_code, 'TASK' in listing.content.decode())\n"
        "print(page.status_code, status.status_code, status.json()['status'])\n"
    )
    pages = run_python(script.replace("TASK", task_id), env)
    statuses, output, listing, details = pages.strip().split("\n")[-4:]
    assert statuses == "[2, 2, 2, 2, 2]", "every task ran, from the queue's database"
    assert output == "42"
    assert listing == "200 True"
    assert details == "200 200 Completed"


def test_the_router_keeps_the_queue_and_the_rest_apart(settings):
    from django_simple_queue.models import Task
    from django_simple_queue.routers import QueueRouter
    from tests.models import Execution

    settings.DJANGO_SIMPLE_QUEUE_DATABASE = "queue"
    router = QueueRouter()
    assert router.db_for_read(Task) == router.db_for_write(Task) == "queue"
    assert router.db_for_write(Execution) is None
    assert router.allow_migrate("queue", "django_simple_queue") is True
    assert router.allow_migrate("default", "django_simple_queue") is False
    assert router.allow_migrate("queue", "auth") is False
    assert router.allow_migrate("default", "auth") is None
    settings.DJANGO_SIMPLE_QUEUE_DATABASE = "default"
    assert router.allow_migrate("default", "auth") is None
    assert router.allow_migrate("default", "django_simple_queue") is True
