"""Scenario 6: a task enqueued in a transaction runs only if, and only after, it commits."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from django_simple_queue.models import Task
from django_simple_queue.utils import create_task
from tests.chaos.conftest import report
from tests.conftest import wait_for
from tests.models import Execution

pytestmark = [pytest.mark.server_db, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


class Rollback(Exception):
    pass


def test_rolled_back_enqueue_never_runs_and_committed_one_waits_for_the_commit(fleet):
    worker = fleet.start(concurrency=2)
    wait_for(lambda: "started" in worker.output(), timeout=30)
    with pytest.raises(Rollback), transaction.atomic():
        create_task("tests.tasks.mark", {"key": "rolled-back"})
        raise Rollback

    with transaction.atomic():
        task_id = create_task("tests.tasks.mark", {"key": "committed"})
        time.sleep(2)
        committed_at = timezone.now()
    wait_for(lambda: Execution.objects.filter(key="committed").exists(), timeout=30)
    ran = Execution.objects.get(key="committed")
    task = Task.objects.get(id=task_id)
    wait_for(lambda: Task.objects.filter(id=task_id, status=Task.COMPLETED).exists())
    # Give the rolled-back one every chance to show up.
    time.sleep(1)

    assert not Execution.objects.filter(key="rolled-back").exists()
    assert Task.objects.count() == 1
    # started_at is the worker's reckoning of the database clock and committed_at this process's
    # clock: they may disagree by a fraction of a millisecond. A start before the commit would be
    # up to the 2 s the transaction slept early.
    assert task.started_at >= committed_at - timedelta(milliseconds=100)
    assert ran.at >= committed_at
    report(
        "6 transactional enqueue",
        started_after_commit_ms=round((task.started_at - committed_at).total_seconds() * 1000),
    )
