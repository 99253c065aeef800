from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from django_simple_queue import lifecycle, signals
from django_simple_queue.lifecycle import Ending, Outcome
from django_simple_queue.models import Task
from tests.factories import TaskFactory

pytestmark = pytest.mark.django_db


def test_claim_marks_tasks_in_progress_with_a_token_and_counts_the_attempt():
    TaskFactory.create_batch(3)
    claimed = lifecycle.claim("host:1", limit=2, pid=1)
    assert len(claimed) == 2
    for task in claimed:
        assert task.status == Task.PROGRESS
        assert task.attempts == 1
        assert task.claim_token is not None
        assert task.worker_id == "host:1"
        assert task.heartbeat_at is not None
    assert Task.objects.queued().count() == 1


def test_claim_skips_deferred_and_other_queues():
    TaskFactory(run_after=timezone.now() + timedelta(minutes=1))
    TaskFactory(queue="other")
    assert lifecycle.claim("w", queues=["default"]) == []
    assert [t.queue for t in lifecycle.claim("w")] == ["other"]


def test_claim_tells_queues_apart_by_case_and_trailing_spaces():
    # MySQL's usual collations would take "Emails" and "emails " for "emails".
    TaskFactory(queue="Emails")
    TaskFactory(queue="emails ")
    assert lifecycle.claim("w", queues=["emails"]) == []
    assert [t.queue for t in lifecycle.claim("w", queues=["Emails"])] == ["Emails"]


def test_finish_is_fenced_by_the_claim_token():
    TaskFactory(max_attempts=2)
    (task,) = lifecycle.claim("w")
    stale_copy = Task.objects.get(id=task.id)
    # Another worker rescued and re-claimed it: the first worker's outcome must not land.
    Task.objects.filter(id=task.id).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    assert lifecycle.rescue_stale()
    (reclaimed,) = lifecycle.claim("w2")
    assert lifecycle.finish(stale_copy, Outcome(Ending.COMPLETED, output="late")) is None
    assert lifecycle.finish(reclaimed, Outcome(Ending.COMPLETED, output="fresh")) == Task.COMPLETED
    task.refresh_from_db()
    assert task.output == "fresh"


def test_failure_retries_while_attempts_remain_with_backoff(settings):
    settings.DJANGO_SIMPLE_QUEUE_RETRY_BACKOFF = 10
    TaskFactory(max_attempts=2)
    (task,) = lifecycle.claim("w")
    before = timezone.now()
    assert lifecycle.finish(task, Outcome(Ending.FAILED, error="first")) == Task.QUEUED
    task.refresh_from_db()
    assert before + timedelta(seconds=5) <= task.run_after <= before + timedelta(seconds=11)
    assert task.error == "first"
    Task.objects.filter(id=task.id).update(run_after=None)
    (task,) = lifecycle.claim("w")
    assert lifecycle.finish(task, Outcome(Ending.FAILED, error="second")) == Task.FAILED
    task.refresh_from_db()
    assert [entry["error"] for entry in task.attempt_log] == ["first", "second"]
    assert task.finished_at is not None


def test_permanent_failure_is_not_retried():
    TaskFactory(max_attempts=5)
    (task,) = lifecycle.claim("w")
    assert lifecycle.finish(task, Outcome(Ending.REFUSED, error="bad row")) == Task.FAILED


@pytest.mark.django_db(transaction=True)
def test_signals_fire_once_with_the_final_state():
    seen = []

    def success(sender, task, **kwargs):
        seen.append(("success", task.status))

    def failure(sender, task, error, **kwargs):
        seen.append(("failure", task.status, error))

    signals.on_success.connect(success)
    signals.on_failure.connect(failure)
    try:
        TaskFactory.create_batch(2)
        first, second = lifecycle.claim("w", limit=2)
        lifecycle.finish(first, Outcome(Ending.COMPLETED, output="1"))
        boom = ValueError("x")
        lifecycle.finish(second, Outcome(Ending.FAILED, error="x", exception=boom))
    finally:
        signals.on_success.disconnect(success)
        signals.on_failure.disconnect(failure)
    assert seen == [("success", Task.COMPLETED), ("failure", Task.FAILED, boom)]


def test_output_is_truncated_with_a_visible_marker(settings):
    settings.DJANGO_SIMPLE_QUEUE_MAX_OUTPUT_SIZE = 10
    TaskFactory()
    (task,) = lifecycle.claim("w")
    lifecycle.finish(task, Outcome(Ending.COMPLETED, output="é" * 20))
    task.refresh_from_db()
    assert task.output.startswith("ééééé\n… [truncated: more than 10 bytes]")


def test_rescue_fails_a_task_without_attempts_left_saying_where_it_ran():
    TaskFactory(
        running=True, worker_id="box:42", heartbeat_at=timezone.now() - timedelta(minutes=5)
    )
    (rescued,) = lifecycle.rescue_stale()
    rescued.refresh_from_db()
    assert rescued.status == Task.FAILED
    assert "Worker box:42 was lost" in rescued.error
    assert "no heartbeat since" in rescued.error


def test_rescue_takes_legacy_running_rows_stale_since_their_last_change():
    """Rows 0.1.x left In progress have no heartbeat: their last change says how old they are."""
    old = TaskFactory(legacy_running=True, worker_id="")
    recent = TaskFactory(legacy_running=True, worker_id="")
    Task.objects.filter(id=old.id).update(modified=timezone.now() - timedelta(minutes=5))
    assert [t.id for t in lifecycle.rescue_stale()] == [old.id]
    old.refresh_from_db()
    recent.refresh_from_db()
    assert old.status == Task.FAILED and old.attempts == 1
    assert recent.status == Task.PROGRESS


@pytest.mark.django_db(transaction=True)
def test_a_raising_receiver_neither_undoes_nor_stops_a_rescue(caplog):
    lost = timezone.now() - timedelta(minutes=5)
    stale = TaskFactory.create_batch(2, running=True, heartbeat_at=lost)
    heard = []

    def broken(sender, task, error, **kwargs):
        # After the commit: outside the rescue's transaction, with the row already Failed.
        status = Task.objects.get(id=task.id).status
        heard.append((task.id, connection.in_atomic_block, status))
        raise RuntimeError("receiver bug")

    signals.on_failure.connect(broken)
    try:
        rescued = lifecycle.rescue_stale()
    finally:
        signals.on_failure.disconnect(broken)
    assert {task.id for task in rescued} == {task.id for task in stale}
    assert set(Task.objects.values_list("status", flat=True)) == {Task.FAILED}
    assert sorted(heard) == sorted((task.id, False, Task.FAILED) for task in stale)
    errors = [r for r in caplog.records if r.name == "django_simple_queue"]
    assert len(errors) == 2
    assert all("on_failure receiver" in r.getMessage() for r in errors)
    assert all(isinstance(r.exc_info[1], RuntimeError) for r in errors)


def test_rescue_requeues_a_task_with_attempts_left_and_leaves_fresh_claims():
    stale = TaskFactory(
        running=True, max_attempts=3, heartbeat_at=timezone.now() - timedelta(minutes=5)
    )
    fresh = TaskFactory(running=True)
    assert [t.id for t in lifecycle.rescue_stale()] == [stale.id]
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert stale.status == Task.QUEUED
    assert stale.attempts == 1
    assert fresh.status == Task.PROGRESS


def test_cancel_queued_at_once_and_running_by_request():
    queued = TaskFactory()
    running = TaskFactory(running=True)
    done = TaskFactory(completed=True)
    assert lifecycle.cancel(Task.objects.all()) == (1, 1)
    queued.refresh_from_db()
    running.refresh_from_db()
    done.refresh_from_db()
    assert queued.status == Task.CANCELLED
    assert [entry["outcome"] for entry in queued.attempt_log] == ["cancelled"]
    assert running.status == Task.PROGRESS and running.cancel_requested
    assert done.status == Task.COMPLETED


def test_enqueue_again_only_touches_finished_tasks():
    failed = TaskFactory(failed=True, attempts=3)
    running = TaskFactory(running=True)
    assert lifecycle.enqueue_again(Task.objects.all()) == 1
    failed.refresh_from_db()
    running.refresh_from_db()
    assert failed.status == Task.QUEUED and failed.attempts == 0
    assert running.status == Task.PROGRESS


def test_requeue_copies_keeps_the_original_as_history():
    original = TaskFactory(failed=True, queue="q", priority=3)
    (copy,) = lifecycle.requeue_copies(
        Task.objects.filter(id=original.id), enqueued_by="ann"
    ).copies
    copy.refresh_from_db()
    original.refresh_from_db()
    assert copy.status == Task.QUEUED and copy.requeued_from == original
    assert (copy.task, copy.args, copy.queue, copy.priority) == (
        original.task,
        original.args,
        "q",
        3,
    )
    assert copy.enqueued_by == "ann"
    assert original.status == Task.FAILED


def test_release_puts_a_claim_back_without_counting_the_attempt():
    TaskFactory()
    (task,) = lifecycle.claim("w")
    assert lifecycle.release([task]) == 1
    task.refresh_from_db()
    assert task.status == Task.QUEUED and task.attempts == 0 and task.claim_token is None


def test_claim_one_that_loses_the_race_holds_no_one_elses_claim():
    task = TaskFactory()
    first, second = Task.objects.get(id=task.id), Task.objects.get(id=task.id)
    assert lifecycle.claim_one(first, "a:1")
    assert not lifecycle.claim_one(second, "b:2")
    assert second.claim_token is None and second.status == Task.QUEUED
    # Only the winner's outcome is recorded.
    assert lifecycle.finish(second, Outcome(Ending.COMPLETED, output="b")) is None
    assert lifecycle.finish(first, Outcome(Ending.COMPLETED, output="a")) == Task.COMPLETED
    assert Task.objects.get(id=task.id).output == "a"


# Row locks between connections: PostgreSQL, MariaDB and MySQL (SQLite locks the whole database).


@contextlib.contextmanager
def row_locked(task_id: uuid.UUID, seconds: float = 10) -> Iterator[None]:
    """Hold a lock on one row in another connection (released after ``seconds`` at the latest,
    so that a claim which waits for it fails instead of hanging)."""
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                list(Task.objects.select_for_update().filter(id=task_id))
                locked.set()
                release.wait(seconds)
        finally:
            connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert locked.wait(10)
        yield
    finally:
        release.set()
        thread.join()


@pytest.mark.server_db
@pytest.mark.django_db(transaction=True)
def test_claim_skips_a_row_another_transaction_holds_instead_of_waiting():
    held, second, third = (TaskFactory(priority=p) for p in (3, 2, 1))
    with row_locked(held.id):
        started = time.monotonic()
        claimed = lifecycle.claim("w", limit=3)
        assert time.monotonic() - started < 5
    assert [t.id for t in claimed] == [second.id, third.id]


@pytest.mark.server_db
@pytest.mark.django_db(transaction=True)
def test_rescue_skips_a_stale_claim_another_transaction_holds():
    beat = timezone.now() - timedelta(hours=1)
    held, other = (TaskFactory(running=True, heartbeat_at=beat) for _ in range(2))
    with row_locked(held.id):
        started = time.monotonic()
        rescued = lifecycle.rescue_stale()
        assert time.monotonic() - started < 5
    assert [t.id for t in rescued] == [other.id]


@pytest.mark.server_db
@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_take_every_task_once():
    ids = {task.id for task in TaskFactory.create_batch(200)}

    def drain(worker: str) -> list[uuid.UUID]:
        claimed: list[uuid.UUID] = []
        try:
            while batch := lifecycle.claim(worker, limit=5):
                claimed += [task.id for task in batch]
        finally:
            connection.close()
        return claimed

    with ThreadPoolExecutor(4) as pool:
        runs = list(pool.map(drain, [f"w:{i}" for i in range(4)]))
    claimed = [task_id for run in runs for task_id in run]
    assert sorted(claimed) == sorted(ids), "every task claimed, none twice"
    assert Task.objects.running().filter(attempts=1).count() == len(ids)


def claimed_with_progress(**fields) -> Task:
    """A task claimed by worker ``w`` that has reported progress."""
    TaskFactory(**fields)
    (task,) = lifecycle.claim("w")
    assert lifecycle.append_output(task, "", progress=0.4, message="40 of 100 rows")
    return task


def no_progress(task: Task) -> tuple[float | None, str]:
    task.refresh_from_db()
    assert task.status == Task.QUEUED
    return task.progress, task.progress_message


def test_a_released_task_goes_back_to_the_queue_without_its_progress():
    task = claimed_with_progress()
    assert lifecycle.release([task]) == 1
    assert no_progress(task) == (None, "")


def test_an_unknown_claim_goes_back_to_the_queue_without_its_progress():
    task = claimed_with_progress()
    assert lifecycle.release_unknown("w", []) == 1
    assert no_progress(task) == (None, "")


def test_a_rescued_task_goes_back_to_the_queue_without_its_progress():
    task = claimed_with_progress(max_attempts=2)
    Task.objects.filter(id=task.id).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    assert [t.id for t in lifecycle.rescue_stale()] == [task.id]
    assert no_progress(task) == (None, "")


def test_a_failed_attempt_with_another_due_goes_back_without_its_progress():
    task = claimed_with_progress(max_attempts=2)
    assert lifecycle.finish_many([(task, Outcome(Ending.FAILED, error="x"))]) == [Task.QUEUED]
    assert no_progress(task) == (None, "")


# The cause of a failure (Task.exception_type), written with its error.


def test_a_failed_attempt_records_its_exceptions_class_and_a_success_clears_it():
    TaskFactory(max_attempts=2)
    (task,) = lifecycle.claim("w")
    outcome = Outcome(Ending.FAILED, error="ValueError: bad", exception=ValueError("bad"))
    assert lifecycle.finish(task, outcome) == Task.QUEUED
    assert Task.objects.get(id=task.id).exception_type == "builtins.ValueError"
    Task.objects.filter(id=task.id).update(run_after=None)
    (task,) = lifecycle.claim("w")
    assert lifecycle.finish(task, Outcome(Ending.COMPLETED)) == Task.COMPLETED
    assert Task.objects.get(id=task.id).exception_type == ""


def test_finish_many_records_each_failures_cause():
    TaskFactory.create_batch(4)
    tasks = lifecycle.claim("w", limit=4)
    outcomes = [
        Outcome(Ending.FAILED, error="KeyError: 'x'", exception=KeyError("x")),
        Outcome(Ending.FAILED, error="The task's process was killed before the task finished."),
        Outcome(Ending.TIMED_OUT, error="Task timed out after 1 seconds"),
        Outcome(Ending.COMPLETED, output="ok"),
    ]
    statuses = lifecycle.finish_many(list(zip(tasks, outcomes, strict=True)))
    assert statuses == [Task.FAILED, Task.FAILED, Task.FAILED, Task.COMPLETED]
    causes = [Task.objects.get(id=task.id).exception_type for task in tasks]
    assert causes == [
        "builtins.KeyError",
        "django_simple_queue.backends.WorkerLost",
        "builtins.TimeoutError",
        "",
    ]
    assert [task.exception_type for task in tasks] == causes


def test_a_rescued_task_that_fails_was_lost_by_its_worker():
    TaskFactory(running=True, heartbeat_at=timezone.now() - timedelta(hours=1))
    (task,) = lifecycle.rescue_stale()
    row = Task.objects.get(id=task.id)
    assert row.status == Task.FAILED
    assert row.exception_type == "django_simple_queue.backends.WorkerLost"
