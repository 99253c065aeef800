"""Scenario 5: the database goes away under running workers (dropped connections, a restart)."""

from __future__ import annotations

import re
import signal
import time

import pytest

from django_simple_queue.models import Task
from django_simple_queue.utils import build_task, create_task, create_tasks
from tests.chaos.conftest import (
    executions,
    postgres,
    report,
    size,
    terminate_connections,
    unfinished,
)
from tests.conftest import wait_for
from tests.models import Execution

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

LOST_LINE = re.compile(r"^database unavailable \(", re.MULTILINE)
BACK_LINE = re.compile(r"^database back after ", re.MULTILINE)
TASK_SECONDS = 0.05


def test_outcome_finished_while_the_database_is_down_is_written_when_it_is_back(fleet):
    task_id = create_task("tests.tasks.mark", {"key": "outage", "seconds": 1.5})
    worker = fleet.start()
    wait_for(lambda: Execution.objects.filter(key="outage").exists(), timeout=30)
    postgres("stop")
    time.sleep(3)  # The task finishes meanwhile; its outcome has nowhere to go.
    postgres("start")
    wait_for(lambda: Task.objects.filter(id=task_id, status=Task.COMPLETED).exists(), timeout=30)
    task = Task.objects.get(id=task_id)
    assert task.attempts == 1, "kept in memory and written, not rescued and rerun"
    assert executions() == {"outage": 1}
    out = worker.output()
    assert len(LOST_LINE.findall(out)) == 1, out
    assert "1 outcomes written" in out
    assert "Traceback" not in out
    assert worker.alive()
    worker.signal_group(signal.SIGTERM)
    assert worker.wait(30) == 0


class Feeder:
    """Keeps the queue from running dry, so that throughput measures the workers."""

    def __init__(self) -> None:
        self.enqueued = 0

    def top_up(self, low: int = 300, batch: int = 600) -> None:
        if Task.objects.filter(status=Task.QUEUED).count() >= low:
            return
        tasks = [
            build_task(
                "tests.tasks.mark",
                {"key": f"c{self.enqueued + i}", "seconds": TASK_SECONDS},
                max_attempts=5,
            )
            for i in range(batch)
        ]
        create_tasks(tasks)
        self.enqueued += batch


def run_for(seconds: float, feeder: Feeder, *, terminate_every: float | None = None) -> tuple:
    """Feed the workers for ``seconds`` (terminating their connections meanwhile, if asked);
    return (executions per second, connections terminated)."""
    before = Execution.objects.count()
    started = time.monotonic()
    next_kill = started
    terminated = 0
    while (now := time.monotonic()) - started < seconds:
        feeder.top_up()
        if terminate_every is not None and now >= next_kill:
            terminated += terminate_connections()
            next_kill += terminate_every
        time.sleep(0.05)
    return (Execution.objects.count() - before) / (time.monotonic() - started), terminated


def test_workers_ride_out_terminated_connections_and_a_restart(fleet):
    workers = [fleet.start(concurrency=4) for _ in range(2)]
    feeder = Feeder()
    feeder.top_up()
    wait_for(lambda: Execution.objects.count() > 50, timeout=60)
    baseline, _ = run_for(size(6, 30), feeder)

    chaos_seconds = size(30, 120)
    during, terminated = run_for(chaos_seconds, feeder, terminate_every=1.0)

    # One restart, down for longer than STALE_AFTER: a worker back first must not take its
    # peers' claims for lost before they had a chance to heartbeat.
    before_restart = Execution.objects.count()
    stopped = postgres("stop")
    time.sleep(size(4, 10))
    postgres("start")
    restarted_at = time.monotonic()
    wait_for(lambda: Execution.objects.count() > before_restart + 20, timeout=60, interval=0.05)
    back_after = time.monotonic() - restarted_at
    run_for(2, feeder)

    # The end: no more tasks; everything enqueued finishes, nothing stays In progress.
    wait_for(lambda: unfinished() == 0, timeout=size(90, 300), interval=0.2)
    runs = executions()
    completed = Task.objects.filter(status=Task.COMPLETED).count()
    assert completed == feeder.enqueued, "0 lost: every task completed"
    assert len(runs) == feeder.enqueued
    logs = [worker.output() for worker in workers]
    for worker, out in zip(workers, logs, strict=True):
        assert worker.alive(), out[-3000:]
        assert "Traceback" not in out, out[-3000:]
        assert "worker error" not in out
        # One line per outage, each followed by its recovery.
        assert 0 < len(LOST_LINE.findall(out)) == len(BACK_LINE.findall(out))
        worker.signal_group(signal.SIGTERM)
    for worker in workers:
        assert worker.wait(30) == 0
    share = during / baseline
    assert share > 0.25, f"throughput under chaos was {share:.0%} of the baseline"
    report(
        "5 database chaos",
        tasks=feeder.enqueued,
        executions=sum(runs.values()),
        duplicates=sum(n - 1 for n in runs.values()),
        lost=feeder.enqueued - completed,
        stuck=unfinished(),
        baseline_per_second=round(baseline, 1),
        chaos_per_second=round(during, 1),
        throughput_share=round(share, 2),
        chaos_seconds=chaos_seconds,
        connections_terminated=terminated,
        outages_logged=[len(LOST_LINE.findall(out)) for out in logs],
        restart_stop_seconds=round(stopped, 2),
        back_after_restart_seconds=round(back_after, 2),
    )
