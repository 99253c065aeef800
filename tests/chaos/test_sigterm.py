"""Scenario 3: SIGTERM drains (no claim after it, running tasks finish); a second one re-queues."""

from __future__ import annotations

import re
import signal
import time

import pytest

from django_simple_queue.models import Task
from django_simple_queue.utils import create_task
from tests.chaos.conftest import report
from tests.conftest import wait_for
from tests.models import Execution

pytestmark = [pytest.mark.server_db, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

GRACE = 10.0


def test_sigterm_finishes_running_tasks_within_grace_and_claims_nothing_more(fleet):
    running = [
        create_task("tests.tasks.mark", {"key": f"run{i}", "seconds": 2}, priority=1)
        for i in range(2)
    ]
    waiting = [create_task("tests.tasks.mark", {"key": f"wait{i}"}) for i in range(6)]
    worker = fleet.start(concurrency=2, env={"DSQ_SHUTDOWN_GRACE": str(GRACE)})
    wait_for(lambda: Execution.objects.count() == 2, timeout=30)
    # To the whole process group, as a service manager or Ctrl-C does: children are in groups of
    # their own, and the supervisor decides.
    signalled_at = time.monotonic()
    worker.signal_group(signal.SIGTERM)
    assert worker.wait(GRACE + 10) == 0
    took = time.monotonic() - signalled_at

    assert took < GRACE
    out = worker.output()
    after_signal = out.split("SIGTERM: no new tasks", 1)[1]
    assert not re.search(r"^claimed ", after_signal, re.MULTILINE), "no claim after the signal"
    assert Task.objects.filter(id__in=running, status=Task.COMPLETED).count() == 2
    assert Task.objects.filter(id__in=waiting, status=Task.QUEUED, attempts=0).count() == 6
    assert sorted(Execution.objects.values_list("key", flat=True)) == ["run0", "run1"]
    report("3 SIGTERM drain", exit_seconds=round(took, 2), grace=GRACE)


def test_second_signal_requeues_running_tasks_within_a_second(fleet):
    ids = [create_task("tests.tasks.mark", {"key": f"long{i}", "seconds": 60}) for i in range(2)]
    worker = fleet.start(concurrency=2, env={"DSQ_SHUTDOWN_GRACE": "60"})
    wait_for(lambda: Execution.objects.count() == 2, timeout=30)
    worker.signal_group(signal.SIGTERM)
    time.sleep(0.5)
    assert worker.alive(), "the first signal waits for running tasks"
    second_at = time.monotonic()
    worker.signal_group(signal.SIGTERM)
    wait_for(
        lambda: Task.objects.filter(id__in=ids, status=Task.QUEUED).count() == 2,
        timeout=10,
        interval=0.02,
    )
    requeued = time.monotonic() - second_at
    assert worker.wait(10) == 0
    assert requeued < 1.0
    assert Task.objects.filter(id__in=ids, attempts=0, claim_token=None).count() == 2
    report("3 second SIGTERM", requeued_seconds=round(requeued, 2))
