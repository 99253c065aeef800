"""Scenario 4: a task that fails every time ends Failed after max_attempts, costing others little."""

from __future__ import annotations

import pytest

from django_simple_queue.models import Task
from django_simple_queue.utils import build_task, create_tasks
from tests.chaos.conftest import executions, report, size
from tests.models import Execution

pytestmark = [pytest.mark.server_db, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ATTEMPTS = 3


def normal_tasks(queue: str, count: int) -> list:
    return [
        build_task("tests.tasks.mark", {"key": f"{queue}{i}", "seconds": 0.02}, queue=queue)
        for i in range(count)
    ]


def span(prefix: str) -> float:
    """Seconds from the first to the last execution of the normal tasks named ``prefix…``."""
    times = list(Execution.objects.filter(key__startswith=prefix).values_list("at", flat=True))
    return (max(times) - min(times)).total_seconds()


def test_poison_tasks_fail_after_max_attempts_and_others_keep_their_pace(fleet):
    count = size(200, 2000)
    poisons = [
        build_task(
            "tests.tasks.poison",
            {"key": f"{how}{i}", "how": how},
            queue="mixed",
            max_attempts=ATTEMPTS,
        )
        for i in range(size(5, 20))
        for how in ("raise", "exit")
    ]
    mixed = normal_tasks("mixed", count)
    # Interleaved, so the poison keeps coming back while the normal tasks run.
    step = max(len(mixed) // len(poisons), 1)
    for n, poison in enumerate(poisons):
        mixed.insert(n * (step + 1), poison)
    create_tasks(normal_tasks("clean", count) + mixed)
    # The baseline runs at the same time, on the same machine, as the poisoned queue.
    workers = [
        fleet.start("--burst", "--queue", queue, concurrency=2) for queue in ("clean", "mixed")
    ]
    for worker in workers:
        assert worker.wait(180) == 0, worker.output()[-2000:]

    runs = executions()
    for poison in poisons:
        task = Task.objects.get(id=poison.id)
        assert task.status == Task.FAILED
        assert task.attempts == ATTEMPTS
        assert runs[poison.kwargs["key"]] == ATTEMPTS
        expected = "exited with code 1" if poison.kwargs["how"] == "exit" else "RuntimeError"
        assert expected in task.error
    assert Task.objects.filter(status=Task.COMPLETED).count() == 2 * count
    baseline, with_poison = span("clean"), span("mixed")
    share = baseline / with_poison
    assert share > 0.5, f"normal tasks ran at {share:.0%} of their pace without poison"
    report(
        "4 poison",
        normal_tasks=count,
        poison_tasks=len(poisons),
        poison_executions=sum(runs[p.kwargs["key"]] for p in poisons),
        baseline_seconds=round(baseline, 2),
        with_poison_seconds=round(with_poison, 2),
        throughput_share=round(share, 2),
    )
