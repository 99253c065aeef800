"""The claim bookkeeping behind crash safety, called directly (any database)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from django_simple_queue import lifecycle
from django_simple_queue.lifecycle import Ending, Outcome
from django_simple_queue.models import Task
from tests.factories import TaskFactory

pytestmark = pytest.mark.django_db


def test_held_claims_reports_cancel_requests_and_leaves_out_lost_claims():
    kept = TaskFactory(running=True)
    cancelled = TaskFactory(running=True, cancel_requested=True)
    rescued = TaskFactory(
        running=True, max_attempts=2, heartbeat_at=timezone.now() - timedelta(hours=1)
    )
    stale_copy = Task.objects.get(id=rescued.id)
    assert [t.id for t in lifecycle.rescue_stale()] == [rescued.id]
    held = lifecycle.held_claims([kept, cancelled, stale_copy])
    assert held == {kept.id: False, cancelled.id: True}
    assert lifecycle.held_claims([]) == {}


def test_held_claims_tells_tasks_of_one_claim_apart():
    """One claim gives its token to every task it takes: a cancel or a rescue is about one task."""
    token = uuid.uuid4()
    running = TaskFactory(running=True, claim_token=token)
    cancelled = TaskFactory(running=True, claim_token=token, cancel_requested=True)
    lost = TaskFactory(running=True, claim_token=token, max_attempts=2)
    stale_copy = Task.objects.get(id=lost.id)
    lifecycle.finish(lost, Outcome(Ending.FAILED, error="rescued"))  # back in the queue
    assert lifecycle.held_claims([running, cancelled, stale_copy]) == {
        running.id: False,
        cancelled.id: True,
    }


def test_release_unknown_returns_only_claims_the_worker_does_not_know():
    known = TaskFactory(running=True, worker_id="box:1")
    unknown = TaskFactory(running=True, worker_id="box:1", attempts=1)
    other = TaskFactory(running=True, worker_id="box:2")
    assert lifecycle.release_unknown("box:1", [known]) == 1
    for task in (known, unknown, other):
        task.refresh_from_db()
    assert known.status == other.status == Task.PROGRESS
    assert unknown.status == Task.QUEUED
    assert unknown.attempts == 0, "it never started: the attempt is not counted"
    assert unknown.claim_token is None


def test_release_unknown_leaves_a_worker_whose_name_differs_only_in_case_alone():
    # Under MySQL's usual collations "Box:1" = "box:1 ": its running task would be put back.
    TaskFactory(running=True, worker_id="Box:1")
    TaskFactory(running=True, worker_id="box:1 ")
    assert lifecycle.release_unknown("box:1", []) == 0
    assert Task.objects.running().count() == 2


def test_rescue_counts_the_attempt_and_says_when_and_where():
    beat = timezone.now() - timedelta(minutes=1)
    task = TaskFactory(
        running=True, worker_id="box:7", max_attempts=2, attempts=2, heartbeat_at=beat
    )
    (rescued,) = lifecycle.rescue_stale()
    rescued.refresh_from_db()
    assert rescued.status == Task.FAILED, "two attempts used: no third"
    assert rescued.error.startswith("Worker box:7 was lost: no heartbeat since ")
    assert beat.isoformat() in rescued.error
    assert rescued.attempt_log[-1]["worker"] == "box:7"
    assert lifecycle.finish(task, Outcome(Ending.COMPLETED, output="late")) is None, "fenced"
