"""Scenario 1: without faults, every task runs exactly once."""

from __future__ import annotations

import time

import pytest

from django_simple_queue.models import Task
from django_simple_queue.utils import build_task, create_tasks
from tests.chaos.conftest import UNMEASURED, executions, report, size

pytestmark = [pytest.mark.server_db, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

WORKERS = 4
CONCURRENCY = 4


def test_every_task_runs_exactly_once(fleet):
    count = size(10_000, 50_000)
    create_tasks(build_task("tests.tasks.mark", {"key": f"t{i}"}) for i in range(count))
    started = time.monotonic()
    workers = [
        fleet.start("--burst", concurrency=CONCURRENCY, env=UNMEASURED) for _ in range(WORKERS)
    ]
    for worker in workers:
        assert worker.wait(timeout=size(150, 900)) == 0, worker.output()[-2000:]
    elapsed = time.monotonic() - started

    runs = executions()
    assert sum(runs.values()) == count, "executions = tasks"
    assert len(runs) == count, "0 lost"
    assert max(runs.values()) == 1, "no task ran twice"
    assert Task.objects.filter(status=Task.COMPLETED, attempts=1).count() == count
    per_worker = [worker.output().count(": Completed in") for worker in workers]
    assert sum(per_worker) == count
    report(
        "1 exactly-once",
        tasks=count,
        workers=f"{WORKERS}x{CONCURRENCY}",
        executions=sum(runs.values()),
        lost=count - len(runs),
        duplicates=sum(n - 1 for n in runs.values()),
        seconds=round(elapsed, 1),
        tasks_per_second=round(count / elapsed),
        per_worker=per_worker,
    )
