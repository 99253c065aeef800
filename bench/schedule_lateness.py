"""How late schedules' ticks are enqueued and started, against a plain enqueue's pickup, in one run.

    python bench/schedule_lateness.py              # 20 schedules every second for 30 s
    python bench/schedule_lateness.py --quick      # 5 schedules for 8 s

One idle ``task_worker --concurrency 2`` runs every schedule. For each tick, *enqueue lateness* is
the task's ``created`` minus its ``scheduled_for`` (both the database's clock), and *start
lateness* its ``started_at`` minus ``scheduled_for``. The baseline, measured in the same run by the
same worker, is the pickup of tasks enqueued by ``create_task`` at random moments: ``started_at``
minus ``created``. The target is a tick enqueued within 1 s of its time.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import child_env, create_database, start_postgres  # noqa: E402


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke test: 5 schedules, 8 s")
    opts = parser.parse_args(argv)
    schedules, seconds = (5, 8) if opts.quick else (20, 30)

    stop_postgres = start_postgres()
    os.environ["DSQ_BENCH_DB"] = "dsq_bench_schedules"
    create_database("dsq_bench_schedules")
    tally = Path(tempfile.mkdtemp(prefix="dsq-bench-")) / "tally"
    os.environ.update(child_env(tally))
    import django

    django.setup()
    from django.core.management import call_command

    from django_simple_queue import db
    from django_simple_queue.models import Schedule, Task
    from django_simple_queue.utils import create_task

    call_command("migrate", verbosity=0)
    start = db.now().replace(microsecond=0) + timedelta(seconds=3)
    for n in range(schedules):
        Schedule.objects.create(
            name=f"s{n}", task="bench.tasks.noop", interval=1, next_run_at=start
        )
    worker = subprocess.Popen(
        [sys.executable, "-m", "django", "task_worker", "--concurrency", "2", "-v", "0"],
        cwd=ROOT,
        env=child_env(tally),
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 3 + seconds
        rng = random.Random(1)
        while time.monotonic() < deadline:
            time.sleep(rng.uniform(0.05, 0.3))
            create_task("bench.tasks.noop", {})
        Schedule.objects.update(enabled=False)
        time.sleep(2)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(60)
    ticks = Task.objects.filter(schedule__isnull=False, status=Task.COMPLETED)
    enqueue = [(t.created - t.scheduled_for).total_seconds() * 1000 for t in ticks]
    started = [(t.started_at - t.scheduled_for).total_seconds() * 1000 for t in ticks]
    plain = [
        (t.started_at - t.created).total_seconds() * 1000
        for t in Task.objects.filter(schedule__isnull=True, status=Task.COMPLETED)
    ]
    expected = schedules * seconds
    print(
        f"{len(enqueue)} ticks of {schedules} schedules (about {expected} expected), "
        f"{len(plain)} plain tasks"
    )
    print(f"{'':28}{'p50 ms':>10}{'p99 ms':>10}")
    print(
        f"{'tick enqueued, after due':28}{percentile(enqueue, 0.5):10.1f}{percentile(enqueue, 0.99):10.1f}"
    )
    print(
        f"{'tick started, after due':28}{percentile(started, 0.5):10.1f}{percentile(started, 0.99):10.1f}"
    )
    print(
        f"{'plain task started (baseline)':28}{percentile(plain, 0.5):10.1f}{percentile(plain, 0.99):10.1f}"
    )
    print(f"p99 enqueue lateness / 1 s target: {percentile(enqueue, 0.99) / 1000:.3f}")
    print(
        f"median start lateness / baseline pickup: "
        f"{statistics.median(started) / max(statistics.median(plain), 0.001):.2f}x"
    )
    doubled = ticks.count() - len(set(ticks.values_list("schedule_id", "scheduled_for")))
    print(f"ticks doubled: {doubled}")
    stop_postgres()
    return 1 if doubled or percentile(enqueue, 0.99) > 1000 else 0


if __name__ == "__main__":
    sys.exit(main())
