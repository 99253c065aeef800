"""Django's Tasks API on this queue: enqueue → real ``task_worker`` → ``get_result``."""

from __future__ import annotations

import asyncio
import importlib.util
import uuid
from datetime import timedelta

import pytest

if not (importlib.util.find_spec("django.tasks") or importlib.util.find_spec("django_tasks")):
    pytest.skip(
        "Django's Tasks API is not installed: needs Django 6.0+ or the django-tasks backport",
        allow_module_level=True,
    )

from asgiref.sync import sync_to_async
from django.db import connections, transaction
from django.utils import timezone

from django_simple_queue._compat import (
    InvalidTask,
    TaskResultDoesNotExist,
    TaskResultStatus,
    task_backends,
)
from django_simple_queue.backends import DatabaseBackend, TaskCancelled, WorkerLost
from django_simple_queue.lifecycle import cancel
from django_simple_queue.models import Task
from tests import backend_tasks
from tests.models import Execution

pytestmark = pytest.mark.django_db(transaction=True)


def run_async(coro):
    """Run ``coro``, then close the connection that sync_to_async's thread opened (PostgreSQL
    would not drop the test database while it is open)."""

    async def main():
        try:
            return await coro
        finally:
            await sync_to_async(connections.close_all)()

    return asyncio.run(main())


def backend() -> DatabaseBackend:
    return task_backends["default"]


def test_backend_declares_what_it_supports():
    b = backend()
    assert isinstance(b, DatabaseBackend)
    assert (
        b.supports_defer and b.supports_priority and b.supports_get_result and b.supports_async_task
    )


def test_enqueue_stores_a_row_and_returns_a_ready_result():
    result = backend_tasks.pair.enqueue((1, 2), label="x")
    assert result.status == TaskResultStatus.READY
    assert result.args == [[1, 2]]
    assert result.kwargs == {"label": "x"}
    row = Task.objects.get(id=result.id)
    assert row.task == "tests.backend_tasks.pair"
    assert row.backend == "default"
    assert row.positional_args == [[1, 2]]
    assert row.kwargs == {"label": "x"}
    assert (row.queue, row.priority, row.status) == ("other", 5, Task.QUEUED)
    assert Execution.objects.filter(key=f"enqueued:{result.id}:READY").exists()


def test_enqueue_joins_the_callers_transaction():
    with pytest.raises(RuntimeError), transaction.atomic():
        result = backend_tasks.add.enqueue(1)
        assert Task.objects.filter(id=result.id).exists()
        raise RuntimeError("roll back")
    assert not Task.objects.filter(id=result.id).exists()


def test_enqueue_validates_the_task():
    with pytest.raises(InvalidTask):
        backend_tasks.add.using(queue_name="nope").enqueue(1)
    with pytest.raises(InvalidTask):
        backend_tasks.add.using(run_after=timezone.now().replace(tzinfo=None)).enqueue(1)
    with pytest.raises(TypeError, match="JSON-serialisable"):
        backend_tasks.add.enqueue(object())
    assert not Task.objects.exists()


def test_success_round_trip(run_worker):
    result = backend_tasks.pair.enqueue(7)
    out = run_worker("--queue", "other")
    assert f"finished {result.id}" in out
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL, result.errors
    assert result.return_value == ["pair", 7, {"nested": [1, 2]}]
    assert result.errors == []
    assert len(result.worker_ids) == 1 and result.attempts == 1
    assert result.started_at <= result.finished_at
    assert Task.objects.get(id=result.id).return_value == ["pair", 7, {"nested": [1, 2]}]
    fresh = backend_tasks.pair.get_result(result.id)
    assert fresh.return_value == result.return_value


def test_started_and_finished_signals_come_from_the_worker(run_worker):
    result = backend_tasks.add.enqueue(1, b=2)
    run_worker()
    started = Execution.objects.get(key=f"started:{result.id}:RUNNING")
    finished = Execution.objects.get(key=f"finished:{result.id}:SUCCESSFUL")
    enqueued = Execution.objects.get(key=f"enqueued:{result.id}:READY")
    # started in the child that ran it, finished in the supervisor that recorded it.
    assert len({enqueued.pid, started.pid, finished.pid}) == 3
    assert backend().get_result(result.id).return_value == 3


def test_failure_reports_exception_class_and_traceback(run_worker):
    result = backend_tasks.fail.enqueue("kaput")
    run_worker()
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    with pytest.raises(ValueError, match="failed"):
        result.return_value  # noqa: B018
    [error] = result.errors
    assert error.exception_class is ValueError
    assert "kaput" in error.traceback and "Traceback" in error.traceback
    assert Execution.objects.filter(key=f"finished:{result.id}:FAILED").exists()


def test_retry_with_context_records_every_attempt(run_worker):
    result = backend_tasks.flaky.enqueue(fail_until=3)
    assert Task.objects.get(id=result.id).max_attempts == 3
    run_worker()
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL, result.errors
    assert result.attempts == 3
    assert [e.exception_class_path for e in result.errors] == ["builtins.RuntimeError"] * 2
    assert "attempt 1 fails" in result.errors[0].traceback
    assert "attempt 2 fails" in result.errors[1].traceback
    value = result.return_value
    assert value["attempt"] == 3 and value["id"] == result.id
    assert len(value["workers"]) == 3


def test_retries_stop_at_max_attempts(run_worker):
    result = backend_tasks.flaky.enqueue(fail_until=10)
    run_worker()
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert len(result.errors) == 3 and result.attempts == 3


def test_timeout_from_task_decorator(run_worker):
    result = backend_tasks.sleepy.enqueue(30)
    assert Task.objects.get(id=result.id).timeout == 1
    run_worker()
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert result.errors[0].exception_class is TimeoutError


def test_non_json_return_value_fails_with_a_clear_error(run_worker):
    result = backend_tasks.not_json.enqueue()
    run_worker()
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert result.errors[0].exception_class is TypeError
    assert "must be JSON-serialisable" in result.errors[0].traceback


def test_defer_waits_for_run_after(run_worker):
    later = timezone.now() + timedelta(minutes=10)
    result = backend_tasks.add.using(run_after=later).enqueue(2)
    run_worker()
    result.refresh()
    assert result.status == TaskResultStatus.READY
    Task.objects.filter(id=result.id).update(run_after=timezone.now() - timedelta(seconds=1))
    run_worker()
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == 3


def test_priority_orders_the_queue(run_worker):
    low = backend_tasks.started_at.using(priority=-10).enqueue("low")
    high = backend_tasks.started_at.using(priority=50).enqueue("high")
    middle = backend_tasks.started_at.enqueue("middle")
    run_worker("--concurrency", "1")
    results = [r.task.get_result(r.id) for r in (high, middle, low)]
    assert [r.return_value[0] for r in results] == ["high", "middle", "low"]
    times = [r.return_value[1] for r in results]
    assert times == sorted(times)
    assert results[0].task.priority == 50


def test_async_task_and_async_api(run_worker):
    result = run_async(backend_tasks.async_add.aenqueue(40, 2))
    assert result.status == TaskResultStatus.READY
    run_worker()
    fetched = run_async(backend_tasks.async_add.aget_result(result.id))
    assert fetched.status == TaskResultStatus.SUCCESSFUL, fetched.errors
    assert fetched.return_value == 42
    run_async(result.arefresh())
    assert result.return_value == 42


def test_cancelled_maps_to_failed_with_a_cancel_error():
    result = backend_tasks.add.enqueue(1)
    assert cancel(Task.objects.filter(id=result.id)) == (1, 0)
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    [error] = result.errors
    assert error.exception_class is TaskCancelled
    assert "cancelled" in error.traceback


@pytest.mark.django_db(transaction=True)
def test_cancelling_a_queued_task_sends_task_finished_and_records_the_attempt():
    result = backend_tasks.add.enqueue(1)
    assert cancel(Task.objects.filter(id=result.id)) == (1, 0)
    assert Execution.objects.filter(key=f"finished:{result.id}:FAILED").exists()
    (entry,) = Task.objects.get(id=result.id).attempt_log
    assert entry["outcome"] == "cancelled" and entry["attempt"] == 0


def test_unknown_ids_raise_does_not_exist():
    for bad in (str(uuid.uuid4()), "not-a-uuid", ""):
        with pytest.raises(TaskResultDoesNotExist):
            backend().get_result(bad)
    with pytest.raises(TaskResultDoesNotExist):
        run_async(backend().aget_result(str(uuid.uuid4())))


def test_rows_of_create_task_are_not_results():
    row = Task.objects.create(task="tests.tasks.add", args='{"a": 1}')
    with pytest.raises(TaskResultDoesNotExist):
        backend().get_result(str(row.id))


def test_worker_refuses_rows_that_are_not_tasks_of_this_backend(run_worker):
    plain = Task.objects.create(
        task="tests.backend_tasks.plain_function", args="{}", backend="default"
    )
    other = Task.objects.create(
        task="tests.backend_tasks.add", args='{"a": 1}', backend="elsewhere"
    )
    os_call = Task.objects.create(task="os.getcwd", args="{}", backend="default")
    run_worker()
    for row in (plain, other, os_call):
        row.refresh_from_db()
        assert row.status == Task.FAILED
        assert row.error.startswith("TaskNotAllowedError"), row.error
        assert row.output is None


def test_lost_attempt_is_reported_as_worker_lost():
    result = backend_tasks.add.enqueue(1)
    Task.objects.filter(id=result.id).update(
        attempt_log=[
            {
                "attempt": 1,
                "worker": "w:1",
                "outcome": "failed",
                "error": "lost",
                "exception_class": None,
            }
        ]
    )
    result.refresh()
    assert result.errors[0].exception_class is WorkerLost
    assert result.worker_ids == ["w:1"]


def test_a_tasks_api_task_takes_queue_control_keys():
    first = backend_tasks.add.keyed(unique_key="sum:1").enqueue(1)
    again = backend_tasks.add.keyed(unique_key="sum:1").enqueue(2)
    assert again.id == first.id and Task.objects.count() == 1
    keyed = backend_tasks.add.keyed(concurrency_key="api", concurrency_limit=2).enqueue(3)
    row = Task.objects.get(id=keyed.id)
    assert (row.concurrency_key, row.concurrency_limit, row.unique_key) == ("api", 2, None)
