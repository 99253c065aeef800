"""Workflows under kill -9: chains keep their order and every batch calls back exactly once while
workers are killed mid-task and mid-finish (an ending and what it settles are one transaction)."""

from __future__ import annotations

import itertools
import random
import signal
import time

import pytest
from django.db.models import F

from django_simple_queue.enqueue import create_batch
from django_simple_queue.models import Batch, Task
from tests.chaos.conftest import report, size
from tests.conftest import wait_for
from tests.models import Execution

pytestmark = [pytest.mark.server_db, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CHAIN = 3  # steps per batch that wait for each other, after two that do not


def batch_items(b: int) -> list[dict[str, object]]:
    """Two free tasks and a chain of CHAIN steps, each a short task that records its runs."""
    items: list[dict[str, object]] = [
        {"task": "tests.tasks.mark", "args": {"key": f"{b}:free{i}", "seconds": 0.3}}
        for i in range(2)
    ]
    for step in range(CHAIN):
        item: dict[str, object] = {
            "task": "tests.tasks.mark",
            "args": {"key": f"{b}:step{step}", "seconds": 0.3},
        }
        if step:
            item["depends_on"] = [len(items) - 1]
        items.append(item)
    for item in items:
        item.setdefault("max_attempts", 5)
    return items


def test_kill_9_keeps_chains_in_order_and_calls_each_batch_back_once(fleet):
    count = size(60, 300)
    batches = [
        create_batch(batch_items(b), on_complete={"task": "tests.tasks.batch_done"})
        for b in range(count)
    ]
    workers = [fleet.start(concurrency=2) for _ in range(3)]
    rng = random.Random(19)
    kills = 0
    deadline = time.monotonic() + size(15, 120)
    while time.monotonic() < deadline:
        time.sleep(rng.uniform(0.3, 1.2))
        victim = rng.randrange(len(workers))
        workers[victim].signal_group(signal.SIGKILL)
        workers[victim].wait(10)
        kills += 1
        workers[victim] = fleet.start(concurrency=2)
    # Killed claims come back after STALE_AFTER; then everything ends.
    wait_for(lambda: not Batch.objects.filter(finished_at=None).exists(), timeout=180)
    wait_for(lambda: not Task.objects.filter(status__in=Task.UNFINISHED).exists(), timeout=120)
    for worker in workers:
        worker.signal_group(signal.SIGTERM)
    for worker in workers:
        worker.wait(60)

    runs = list(Execution.objects.order_by("id").values_list("key", flat=True))
    positions: dict[str, list[int]] = {}
    for i, key in enumerate(runs):
        positions.setdefault(key, []).append(i)
    out_of_order = early_callbacks = 0
    for b, batch_id in enumerate(batches):
        steps = [positions.get(f"{b}:step{s}", []) for s in range(CHAIN)]
        for before, after in itertools.pairwise(steps):
            # A step starts only after the one before it has completed: after its every run.
            if after and (not before or min(after) < max(before)):
                out_of_order += 1
        members = [
            i for key, runs_of in positions.items() if key.startswith(f"{b}:") for i in runs_of
        ]
        called = positions.get(f"batch:{batch_id}", [])
        if not called or min(called) < max(members):
            early_callbacks += 1
    assert out_of_order == 0
    assert early_callbacks == 0, "each callback ran, and only after its batch's last task"
    callbacks = Task.objects.filter(completes_batch__isnull=False)
    # Queued once each: one row per batch, whose runs are its attempts (a kill may repeat one).
    assert callbacks.count() == count
    assert all(
        len(positions[f"batch:{task.batch_id_of}"]) == task.attempts
        for task in callbacks.annotate(batch_id_of=F("completes_batch"))
    )
    tasks = [key for key in runs if not key.startswith("batch:")]
    report(
        "workflows under kill -9",
        batches=count,
        tasks=count * (2 + CHAIN),
        kills=kills,
        task_runs=len(tasks),
        reruns=len(tasks) - len(set(tasks)),
        failed=Task.objects.filter(status=Task.FAILED).count(),
        cancelled=Task.objects.filter(status=Task.CANCELLED).count(),
        out_of_order=out_of_order,
    )
