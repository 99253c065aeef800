"""Batch state changes: the one-statement claim and ``finish_many``, and the worker paths using them."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from django_simple_queue import lifecycle, signals
from django_simple_queue.lifecycle import Ending, Outcome
from django_simple_queue.models import Task
from django_simple_queue.utils import create_task, create_tasks
from django_simple_queue.worker.recorder import Recorder
from tests import backend_tasks
from tests.factories import TaskFactory
from tests.models import Execution


@pytest.mark.django_db
def test_claim_returns_full_instances_in_priority_then_age_order():
    old = TaskFactory(priority=0, attempt_log=[{"attempt": 0, "outcome": "imported"}])
    urgent = TaskFactory(priority=5)
    TaskFactory(priority=0, run_after=timezone.now() + timedelta(hours=1))
    claimed = lifecycle.claim("w:1", limit=10, pid=42)
    assert [task.id for task in claimed] == [urgent.id, old.id]
    first_old = claimed[1]
    # JSON columns come back decoded, as the ORM would give them.
    assert first_old.attempt_log == [{"attempt": 0, "outcome": "imported"}]
    assert first_old.positional_args == []
    assert (first_old.worker_id, first_old.worker_pid, first_old.attempts) == ("w:1", 42, 1)
    assert first_old.claim_token == claimed[0].claim_token
    assert not first_old._state.adding


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_never_share_a_task():
    create_tasks([{"task": "tests.tasks.add", "args": {"a": i}} for i in range(60)])
    seen: list[list[str]] = [[], [], []]

    def claim_all(slot: int) -> None:
        try:
            while batch := lifecycle.claim(f"w:{slot}", limit=4):
                seen[slot] += [str(task.id) for task in batch]
        finally:
            connection.close()

    threads = [threading.Thread(target=claim_all, args=(slot,)) for slot in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everyone = [task_id for ids in seen for task_id in ids]
    assert len(everyone) == 60
    assert len(set(everyone)) == 60
    assert Task.objects.filter(attempts=1, status=Task.PROGRESS).count() == 60


@pytest.mark.django_db
def test_finish_many_records_each_outcome_in_one_call():
    TaskFactory.create_batch(3, max_attempts=2)
    TaskFactory(max_attempts=1)
    ok, retry, cancelled, failed = lifecycle.claim("w", limit=4)
    boom = ValueError("boom")
    statuses = lifecycle.finish_many(
        [
            (
                ok,
                Outcome(Ending.COMPLETED, output="42", log="said hello\n", return_value={"n": 42}),
            ),
            (retry, Outcome(Ending.FAILED, error="first try", exception=boom)),
            (cancelled, Outcome(Ending.CANCELLED, error="Cancelled while running.")),
            (failed, Outcome(Ending.FAILED, error="last try", exception=boom)),
        ]
    )
    assert statuses == [Task.COMPLETED, Task.QUEUED, Task.CANCELLED, Task.FAILED]
    rows = {task.id: task for task in Task.objects.all()}
    done = rows[ok.id]
    assert (done.output, done.log, done.return_value, done.progress) == (
        "42",
        "said hello\n",
        {"n": 42},
        1.0,
    )
    assert done.finished_at is not None and done.heartbeat_at is None and done.worker_pid is None
    assert done.attempt_log[-1]["outcome"] == "completed"
    again = rows[retry.id]
    assert again.claim_token is None and again.run_after is not None and again.finished_at is None
    assert again.error == "first try"
    assert again.attempt_log[-1]["exception_class"] == "builtins.ValueError"
    assert rows[cancelled.id].attempt_log[-1]["outcome"] == "cancelled"
    assert rows[failed.id].finished_at is not None
    # The instances match their rows, for the receivers and the caller.
    assert ok.status == Task.COMPLETED and retry.status == Task.QUEUED


@pytest.mark.django_db
def test_finish_many_leaves_output_and_log_alone_when_not_given():
    TaskFactory()
    (task,) = lifecycle.claim("w")
    lifecycle.append_output(task, "streamed;")
    assert lifecycle.finish_many([(task, Outcome(Ending.COMPLETED))]) == [Task.COMPLETED]
    task.refresh_from_db()
    assert task.output == "streamed;"
    assert task.log is None


@pytest.mark.django_db
def test_finish_many_is_fenced_per_task_by_its_claim_token():
    TaskFactory.create_batch(2, max_attempts=3)
    kept, lost = lifecycle.claim("w1", limit=2)
    # ``lost`` was rescued and claimed again by another worker meanwhile.
    lifecycle.finish(Task.objects.get(id=lost.id), Outcome(Ending.FAILED, error="rescued"))
    Task.objects.filter(id=lost.id).update(run_after=None)
    (reclaimed,) = lifecycle.claim("w2")
    assert reclaimed.id == lost.id
    statuses = lifecycle.finish_many(
        [
            (kept, Outcome(Ending.COMPLETED, output="a")),
            (lost, Outcome(Ending.COMPLETED, output="b")),
        ]
    )
    assert statuses == [Task.COMPLETED, None]
    row = Task.objects.get(id=lost.id)
    assert (row.status, row.worker_id, row.output) == (Task.PROGRESS, "w2", None)


@pytest.mark.django_db(transaction=True)
def test_finish_many_sends_the_signals_of_each_task():
    TaskFactory.create_batch(2)
    first, second = lifecycle.claim("w", limit=2)
    heard: list[tuple[str, object]] = []

    def success(sender, task, **kwargs):
        heard.append(("success", task.id))

    def failure(sender, task, error, **kwargs):
        heard.append(("failure", task.id, error))

    signals.on_success.connect(success)
    signals.on_failure.connect(failure)
    boom = RuntimeError("x")
    try:
        lifecycle.finish_many(
            [
                (first, Outcome(Ending.COMPLETED)),
                (second, Outcome(Ending.FAILED, error="x", exception=boom)),
            ]
        )
    finally:
        signals.on_success.disconnect(success)
        signals.on_failure.disconnect(failure)
    assert heard == [("success", first.id), ("failure", second.id, boom)]


@pytest.mark.django_db(transaction=True)
def test_a_raising_receiver_stops_no_outcome_of_a_batch(caplog):
    TaskFactory.create_batch(2)
    result = backend_tasks.add.enqueue(1, 2)  # Django's task_finished, sent after ours
    tasks = lifecycle.claim("w", limit=3)
    heard: list[tuple[str, object]] = []

    def broken(sender, task, **kwargs):
        heard.append(("broken", task.id))
        raise RuntimeError("receiver bug")

    def other(sender, task, **kwargs):
        heard.append(("other", task.id))

    signals.on_success.connect(broken)
    signals.on_success.connect(other)
    lines: list[str] = []
    recorder = Recorder(say=lines.append)
    try:
        for task in tasks:
            recorder.track(task)
            recorder.outcome(task, Outcome(Ending.COMPLETED, return_value=3), 0.1)
        recorder.write()
    finally:
        signals.on_success.disconnect(broken)
        signals.on_success.disconnect(other)
    assert recorder.pending == 0 and recorder.finished == 3
    assert set(Task.objects.values_list("status", flat=True)) == {Task.COMPLETED}
    assert heard == [(kind, task.id) for task in tasks for kind in ("broken", "other")]
    assert all(line.endswith("Completed in 0.10s") for line in lines), lines
    assert Execution.objects.filter(key=f"finished:{result.id}:SUCCESSFUL").exists()
    errors = [r for r in caplog.records if r.name == "django_simple_queue"]
    assert len(errors) == 3
    assert all("on_success receiver" in r.getMessage() and r.exc_info for r in errors)


def test_finish_many_of_nothing_writes_nothing():
    assert lifecycle.finish_many([]) == []


@pytest.mark.django_db(transaction=True)
def test_short_tasks_in_batches_each_run_exactly_once(run_worker):
    # Enough short tasks for the worker to prefetch and queue several per child.
    ids = create_tasks(
        [{"task": "tests.tasks.record", "args": {"key": f"k{i}"}} for i in range(120)]
    )
    run_worker("--concurrency", "2", timeout=120)
    assert Task.objects.filter(id__in=ids, status=Task.COMPLETED).count() == 120
    assert Execution.objects.count() == 120
    assert len(set(Execution.objects.values_list("key", flat=True))) == 120
    assert sorted(Task.objects.values_list("attempts", flat=True).distinct()) == [1]


@pytest.mark.django_db(transaction=True)
def test_a_child_lost_in_a_batch_costs_only_its_own_task(run_worker):
    before = create_tasks(
        [{"task": "tests.tasks.record", "args": {"key": f"a{i}"}} for i in range(40)]
    )
    killed = create_task("tests.tasks.kill_self", {})
    after = create_tasks(
        [{"task": "tests.tasks.record", "args": {"key": f"b{i}"}} for i in range(40)]
    )
    run_worker("--concurrency", "1", timeout=120)
    assert Task.objects.get(id=killed).status == Task.FAILED
    assert "killed by SIGKILL" in Task.objects.get(id=killed).error
    # The tasks queued behind it in the same child ran elsewhere, once each.
    assert Task.objects.filter(id__in=before + after, status=Task.COMPLETED).count() == 80
    assert Execution.objects.count() == 80


def test_streamed_output_cut_at_the_limit_names_the_limit(settings):
    settings.DJANGO_SIMPLE_QUEUE_MAX_OUTPUT_SIZE = 100
    recorder = Recorder()
    task = TaskFactory.build()
    recorder.track(task)
    recorder.output(task, "a" * 60)
    recorder.output(task, "b" * 60)
    recorder.output(task, "c" * 60)
    text = "".join(payload for _, payload in recorder.buffers[task.id])
    assert text == "a" * 60 + "b" * 40 + "\n… [truncated: more than 100 bytes]"
