"""A/B drain: the same drain on two checkouts of this project, interleaved, with ratios.

    python bench/ab_drain.py OLD_TREE NEW_TREE [--rounds 3] [--tasks 10000] [--concurrency 2]
        [--old-args "…"] [--new-args "…"]

Each round fills the queue with ``--tasks`` no-op tasks and times ``task_worker --burst
--concurrency N`` of OLD_TREE, then of NEW_TREE (alternating which goes first), on one PostgreSQL
database (PGHOST, PGPORT, PGUSER; database ``DSQ_AB_DB``, default dsq_ab, created if missing).
Rates are tasks per second between the first claim and the last finish, as bench/run.py measures
them; the ratio is NEW/OLD of the medians. Needs only Django, psycopg and the two trees.
``--old-args`` and ``--new-args`` add options to one side's worker: one tree against itself with
and without ``--metrics-port 0`` measures what the metrics cost. ``--new-keys K`` gives the new
side's tasks concurrency keys (K of them, limit 1): one tree against itself measures the limited
claim. ``--new-waiting W`` adds, on the new side only, W tasks waiting for a task that does not
run (``depends_on``): one tree against itself measures what waiting tasks cost the claim.
``--new-batches SIZE`` enqueues the new side's tasks in batches of SIZE (``create_batch``): what
settling each member's finish costs.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

SETTINGS = """
import os
import shlex
SECRET_KEY = "ab-only"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
INSTALLED_APPS = ["django.contrib.contenttypes", "django_simple_queue"]
DATABASES = {"default": {
    "ENGINE": "django.db.backends.postgresql",
    "NAME": os.environ.get("DSQ_AB_DB", "dsq_ab"),
    "USER": os.environ.get("PGUSER", "postgres"),
    "PASSWORD": os.environ.get("PGPASSWORD", ""),
    "HOST": os.environ.get("PGHOST", "127.0.0.1"),
    "PORT": os.environ.get("PGPORT", "5432"),
}}
DJANGO_SIMPLE_QUEUE_ALLOWED_TASKS = {"ab_tasks.noop"}
LOGGING = {"version": 1, "disable_existing_loggers": False}
"""

TASKS = '''
def noop() -> None:
    """Does nothing."""
'''

FILL = """
import django
django.setup()
from django.db import connection
from django_simple_queue.utils import create_tasks
with connection.cursor() as cursor:
    cursor.execute("TRUNCATE django_simple_queue_task CASCADE")
    cursor.execute("VACUUM ANALYZE django_simple_queue_task")
import json, sys
options = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
keys = options.pop("concurrency_keys", 0)
waiting = options.pop("waiting", 0)
if waiting:
    from datetime import timedelta
    from django.utils import timezone
    from django_simple_queue.utils import create_task
    never = create_task("ab_tasks.noop", {}, run_after=timezone.now() + timedelta(days=3650))
    for start in range(0, waiting, 10_000):
        create_tasks(
            {"task": "ab_tasks.noop", "args": {}, "depends_on": [never]}
            for i in range(start, min(start + 10_000, waiting))
        )
batch_size = options.pop("batch_size", 0)
if batch_size:
    from django_simple_queue.utils import create_batch
    for start in range(0, int(sys.argv[1]), batch_size):
        create_batch([{"task": "ab_tasks.noop", "args": {}}] * batch_size)
create_tasks(
    {"task": "ab_tasks.noop", "args": {}, **options,
     **({"concurrency_key": f"k{i % keys}", "concurrency_limit": 1} if keys else {})}
    for i in range(0 if batch_size else int(sys.argv[1]))
)
with connection.cursor() as cursor:
    cursor.execute("VACUUM ANALYZE")  # every table: autovacuum does not wake during the drain
"""

SPAN = """
import django
django.setup()
from django.db.models import Max, Min
from django_simple_queue.models import Task
done = Task.objects.filter(status=Task.COMPLETED)
agg = done.aggregate(first=Min("started_at"), last=Max("finished_at"))
print(done.count(), (agg["last"] - agg["first"]).total_seconds())
"""


def env_for(tree: Path, extra: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = "ab_settings"
    env["PYTHONPATH"] = os.pathsep.join([str(tree), str(extra)])
    return env


def python(tree: Path, extra: Path, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, *args],
        cwd=tree,
        env=env_for(tree, extra),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode:
        raise SystemExit(f"{tree}: {' '.join(args[:2])} failed:\n{proc.stderr}")
    return proc.stdout


def create_database() -> None:
    import psycopg

    name = os.environ.get("DSQ_AB_DB", "dsq_ab")
    with psycopg.connect(dbname="postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def drain(
    tree: Path,
    extra: Path,
    tasks: int,
    concurrency: int,
    args: Sequence[str] = (),
    fill: str = "{}",
) -> tuple[float, float]:
    """(tasks/s between the first claim and the last finish, wall seconds of the worker)."""
    python(tree, extra, "-c", FILL, str(tasks), fill)
    started = time.perf_counter()
    worker = ["task_worker", "--burst", "--concurrency", str(concurrency), *args]
    python(tree, extra, "-m", "django", *worker)
    wall = time.perf_counter() - started
    finished, span = python(tree, extra, "-c", SPAN).split()
    if int(finished) != tasks:
        raise SystemExit(f"{tree}: {finished} of {tasks} tasks finished")
    return tasks / float(span), wall


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--old-args", default="", help="more task_worker options for OLD_TREE")
    parser.add_argument("--new-args", default="", help="more task_worker options for NEW_TREE")
    parser.add_argument(
        "--new-keys",
        type=int,
        default=0,
        help="NEW_TREE's tasks get one of this many concurrency keys (limit 1 each): what the "
        "limited claim costs",
    )
    parser.add_argument(
        "--new-waiting",
        type=int,
        default=0,
        help="NEW_TREE's queue also holds this many tasks waiting for one that never runs: what "
        "waiting tasks cost the claim",
    )
    parser.add_argument(
        "--new-batches",
        type=int,
        default=0,
        metavar="SIZE",
        help="NEW_TREE's tasks are enqueued in batches of SIZE: what settling their finishes costs",
    )
    opts = parser.parse_args(argv)
    worker_args = {"old": shlex.split(opts.old_args), "new": shlex.split(opts.new_args)}
    trees = {"old": opts.old.resolve(), "new": opts.new.resolve()}
    create_database()
    with tempfile.TemporaryDirectory() as tmp:
        extra = Path(tmp)
        (extra / "ab_settings.py").write_text(SETTINGS)
        (extra / "ab_tasks.py").write_text(TASKS)
        python(trees["new"], extra, "-m", "django", "migrate", "-v", "0")
        rates: dict[str, list[float]] = {"old": [], "new": []}
        walls: dict[str, list[float]] = {"old": [], "new": []}
        for round_ in range(opts.rounds):
            order = ["old", "new"] if round_ % 2 == 0 else ["new", "old"]
            for which in order:
                fill = "{}"
                if which == "new":
                    fill = json.dumps(
                        {
                            "concurrency_keys": opts.new_keys,
                            "waiting": opts.new_waiting,
                            "batch_size": opts.new_batches,
                        }
                    )
                rate, wall = drain(
                    trees[which], extra, opts.tasks, opts.concurrency, worker_args[which], fill
                )
                rates[which].append(rate)
                walls[which].append(wall)
                print(f"round {round_ + 1} {which}: {rate:,.0f} tasks/s, worker {wall:.2f}s")
    for which in ("old", "new"):
        print(
            f"{which}: median {statistics.median(rates[which]):,.0f} tasks/s "
            f"({', '.join(f'{r:,.0f}' for r in rates[which])}), "
            f"median worker {statistics.median(walls[which]):.2f}s"
        )
    ratio = statistics.median(rates["new"]) / statistics.median(rates["old"])
    wall_ratio = statistics.median(walls["new"]) / statistics.median(walls["old"])
    print(f"new/old: rate {ratio:.3f}, worker wall time {wall_ratio:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
