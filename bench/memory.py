"""Supervisor memory under the lean worker settings, against a bare ``django.setup()`` in the same run.

    python bench/memory.py [--tasks 500] [--concurrency 2] [--rounds 3]

Uses PostgreSQL when PGHOST is set (PGPORT, PGUSER, PGDATABASE as libpq reads them), else a
temporary SQLite file. Prints resident memory (RSS) of the worker's supervisor after it has run
the tasks, of a bare process with the same settings and an open connection, their ratio, and the
unique memory (USS) of the fork server and of each idle child, which is what each costs beyond
the pages it shares with the supervisor.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The lean settings module of the original README: no admin, no templates, no URLconf.
LEAN_SETTINGS = """
import os
SECRET_KEY = "bench"
INSTALLED_APPS = ["django_simple_queue"]
MIDDLEWARE = []
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
if os.environ.get("PGHOST"):
    DATABASES = {"default": {"ENGINE": "django.db.backends.postgresql", "NAME": os.environ.get("PGDATABASE", "postgres"),
                             "HOST": os.environ["PGHOST"], "PORT": os.environ.get("PGPORT", "5432"),
                             "USER": os.environ.get("PGUSER", "postgres")}}
else:
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["BENCH_SQLITE"]}}
DJANGO_SIMPLE_QUEUE_ALLOWED_TASKS = {"memtasks.noop"}
"""

BARE = """
import django, os, time
django.setup()
from django.db import connection
connection.ensure_connection()
print(open(f"/proc/{os.getpid()}/status").read().split("VmRSS:")[1].split()[0], flush=True)
"""


def kib(pid: int, field: str = "VmRSS:") -> int:
    """A memory figure of a process in KiB, from /proc."""
    with open(f"/proc/{pid}/status") as status:
        return int(status.read().split(field)[1].split()[0])


def uss(pid: int) -> int:
    """Unique set size in KiB: the pages only this process holds."""
    with open(f"/proc/{pid}/smaps_rollup") as rollup:
        fields = dict(line.split(":", 1) for line in rollup.read().splitlines()[1:])
    return sum(int(fields[name].split()[0]) for name in ("Private_Clean", "Private_Dirty"))


def children_of(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as children:
        return [int(child) for child in children.read().split()]


def run(env: dict[str, str], *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        env=env,
        cwd=ROOT,
        text=True,
        check=True,
        capture_output=True,
        **kwargs,
    )  # type: ignore[call-overload]


def measure_worker(env: dict[str, str], tasks: int, concurrency: int) -> tuple[int, list[int]]:
    """Enqueue ``tasks`` no-ops, let a worker run them all, then read its memory while idle."""
    run(
        env,
        "-c",
        textwrap.dedent(f"""
        import django; django.setup()
        from django_simple_queue.utils import create_tasks
        create_tasks([{{"task": "memtasks.noop", "args": {{}}}}] * {tasks})
    """),
    )
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "django",
            "task_worker",
            "-v",
            "0",
            "--concurrency",
            str(concurrency),
        ],
        env=env,
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            left = run(
                env,
                "-c",
                "import django; django.setup(); from django_simple_queue.models import Task; "
                "print(Task.objects.exclude(status=Task.COMPLETED).count())",
            ).stdout
            if int(left) == 0:
                break
            time.sleep(0.5)
        else:
            raise SystemExit("the worker did not finish the tasks in 300 s")
        time.sleep(1)  # let the last outcomes land and the loop go idle
        # The supervisor's one child is its fork server; the task children are the fork server's.
        (server,) = children_of(worker.pid)
        return kib(worker.pid), uss(server), [uss(child) for child in children_of(server)]
    finally:
        worker.terminate()
        worker.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "lean_settings.py").write_text(LEAN_SETTINGS)
        Path(tmp, "memtasks.py").write_text("def noop():\n    return None\n")
        env = dict(
            os.environ,
            DJANGO_SETTINGS_MODULE="lean_settings",
            BENCH_SQLITE=str(Path(tmp, "db.sqlite3")),
            PYTHONPATH=os.pathsep.join([tmp, str(ROOT), os.environ.get("PYTHONPATH", "")]),
        )
        run(env, "-m", "django", "migrate", "-v", "0")
        bare, supervisor, server_uss, child_uss = [], [], [], []
        for _ in range(options.rounds):
            bare.append(int(run(env, "-c", BARE).stdout))
            rss, server, children = measure_worker(env, options.tasks, options.concurrency)
            supervisor.append(rss)
            server_uss.append(server)
            child_uss.extend(children)

    engine = "PostgreSQL" if os.environ.get("PGHOST") else "SQLite"
    bare_mib, supervisor_mib = statistics.median(bare) / 1024, statistics.median(supervisor) / 1024
    print(
        f"Python {sys.version.split()[0]}, Django {__import__('django').get_version()}, {engine}, "
        f"{options.tasks} tasks x {options.rounds} rounds, concurrency {options.concurrency}"
    )
    print(f"{'process':<44}{'MiB':>8}")
    print(f"{'bare django.setup() + open connection (RSS)':<44}{bare_mib:>8.1f}")
    print(f"{'task_worker supervisor after its tasks (RSS)':<44}{supervisor_mib:>8.1f}")
    print(
        f"{'fork server, unique memory (USS, median)':<44}{statistics.median(server_uss) / 1024:>8.1f}"
    )
    print(
        f"{'idle child, unique memory (USS, median)':<44}{statistics.median(child_uss) / 1024:>8.1f}"
    )
    print(f"supervisor / bare = {supervisor_mib / bare_mib:.2f} (target <= 1.10)")


if __name__ == "__main__":
    main()
