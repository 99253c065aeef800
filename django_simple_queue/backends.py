"""A backend for Django's Tasks API: ``@task`` functions run on this queue by ``task_worker``.

``enqueue`` writes a Task row (``backend`` set to the alias) through ``enqueue.insert``, in the
caller's transaction; the worker calls ``prepare_call`` for such rows and ``lifecycle.finish``
calls ``send_finished``.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.module_loading import import_string

from django_simple_queue import callables, conf, db, enqueue, signals
from django_simple_queue._compat import (
    BaseTaskBackend,
    InvalidTask,
    InvalidTaskBackend,
    Task,
    TaskContext,
    TaskError,
    TaskResult,
    TaskResultDoesNotExist,
    TaskResultStatus,
    normalize_json,
    task_backends,
    task_enqueued,
    task_finished,
    task_started,
)
from django_simple_queue.exceptions import (
    InvalidTaskArguments,
    InvalidTaskPath,
    TaskNotAllowedError,
)
from django_simple_queue.models import Task as TaskRow

STATUSES = {
    TaskRow.QUEUED: TaskResultStatus.READY,
    TaskRow.PROGRESS: TaskResultStatus.RUNNING,
    TaskRow.COMPLETED: TaskResultStatus.SUCCESSFUL,
    TaskRow.FAILED: TaskResultStatus.FAILED,
    TaskRow.CANCELLED: TaskResultStatus.FAILED,
    TaskRow.WAITING: TaskResultStatus.READY,
}


class TaskCancelled(Exception):
    """The class reported in ``TaskResult.errors`` for a task cancelled by staff."""


class WorkerLost(Exception):
    """The class reported for an attempt whose process died or whose worker was lost."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DatabaseTask(Task):
    """A ``Task`` that also carries this queue's ``max_attempts``, ``timeout`` (seconds) and queue
    controls (docs/queues.md): ``@task(concurrency_key="api", concurrency_limit=2)``, or per call
    ``send_report.keyed(unique_key=f"report:{month}").enqueue(month=month)``."""

    max_attempts: int | None = None
    timeout: int | None = None
    unique_key: str | None = None
    concurrency_key: str | None = None
    concurrency_limit: int | None = None

    def keyed(
        self,
        *,
        unique_key: str | None = None,
        concurrency_key: str | None = None,
        concurrency_limit: int | None = None,
    ) -> DatabaseTask:
        """This task with queue-control keys for the next ``enqueue``."""
        return dataclasses.replace(
            self,
            unique_key=unique_key,
            concurrency_key=concurrency_key or self.concurrency_key,
            concurrency_limit=concurrency_limit or self.concurrency_limit,
        )


def class_path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def json_safe(value: Any, what: str) -> Any:
    """``value`` as JSON gives it back (tuples become lists …); TypeError if it has no JSON form."""
    try:
        return json.loads(json.dumps(normalize_json(value)))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} must be JSON-serialisable: {exc}") from exc


class DatabaseBackend(BaseTaskBackend):
    """Stores Django tasks as django-simple-queue rows, run by ``manage.py task_worker``."""

    task_class = DatabaseTask
    supports_defer = True
    supports_priority = True
    supports_get_result = True
    supports_async_task = True

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        # On Django versions whose @task cannot pass extra fields, OPTIONS give the defaults.
        self.max_attempts = int(self.options.get("MAX_ATTEMPTS") or conf.get("MAX_ATTEMPTS"))
        timeout = self.options.get("TIMEOUT")
        self.timeout = int(timeout) if timeout else None

    def validate_task(self, task: Task) -> None:
        super().validate_task(task)
        attempts = getattr(task, "max_attempts", None)
        if attempts is not None and int(attempts) < 1:
            raise InvalidTask(f"max_attempts must be at least 1, not {attempts}.")
        timeout = getattr(task, "timeout", None)
        if timeout is not None and int(timeout) < 1:
            raise InvalidTask(f"timeout must be a positive number of seconds, not {timeout}.")
        if len(task.module_path) > TaskRow._meta.get_field("task").max_length:  # type: ignore[operator]
            raise InvalidTask(f"Task path '{task.module_path}' is longer than 127 characters.")

    def enqueue(self, task: Task, args: Iterable[Any], kwargs: Mapping[str, Any]) -> TaskResult:
        """Insert a queued row in the current transaction and wake the workers on commit."""
        self.validate_task(task)
        # The worker finds the task again by this path, so it must lead back to this function.
        try:
            found = getattr(_import_task(task.module_path), "func", None)
        except InvalidTaskPath:
            found = None
        if found is not task.func:
            raise InvalidTask(f"'{task.module_path}' must name this @task at module level.")
        positional = json_safe(list(args), "Task arguments")
        kwargs = json_safe(dict(kwargs), "Task keyword arguments")
        try:
            row = enqueue.build_task(
                task.module_path,
                kwargs,
                positional_args=positional,
                backend=self.alias,
                queue=task.queue_name,
                priority=task.priority,
                run_after=task.run_after,
                max_attempts=getattr(task, "max_attempts", None) or self.max_attempts,
                timeout=getattr(task, "timeout", None) or self.timeout,
                enqueued_by=f"tasks:{self.alias}",
                unique_key=getattr(task, "unique_key", None),
                concurrency_key=getattr(task, "concurrency_key", None),
                concurrency_limit=getattr(task, "concurrency_limit", None),
            )
        except (InvalidTaskArguments, ValueError) as exc:
            raise InvalidTask(str(exc)) from exc
        task_id = enqueue.insert(row)
        if task_id != row.id:  # its unique key is held: the result is the holder's
            row = TaskRow.objects.using(db.alias()).get(id=task_id)
        result = build_result(row, task)
        task_enqueued.send(type(self), task_result=result)
        return result

    def get_result(self, result_id: str) -> TaskResult:
        """The result of a task this backend enqueued; TaskResultDoesNotExist for any other id."""
        try:
            row = TaskRow.objects.get(id=uuid.UUID(str(result_id)), backend=self.alias)
        except (ValueError, ValidationError, TaskRow.DoesNotExist) as exc:
            raise TaskResultDoesNotExist(result_id) from exc
        try:
            task = load_task(row)
        except (InvalidTaskPath, TaskNotAllowedError) as exc:
            raise TaskResultDoesNotExist(f"{result_id}: {exc}") from exc
        return build_result(row, task)


def _import_task(path: str) -> Any:
    try:
        return import_string(path)
    except ImportError as exc:
        raise InvalidTaskPath(f"'{path}' cannot be imported: {exc}") from exc


def load_task(row: TaskRow) -> Task:
    """The ``@task`` object a row names, refusing anything that is not a task of this backend.

    Such tasks need not be in ALLOWED_TASKS: only code can declare them, and a row that names a
    plain function (whoever wrote it) is refused.
    """
    task = _import_task(row.task)
    if not isinstance(task, Task):
        raise TaskNotAllowedError(
            f"'{row.task}' is not a Django @task, so it cannot run through a Tasks backend."
        )
    if task.backend != row.backend:
        raise TaskNotAllowedError(
            f"'{row.task}' belongs to the Tasks backend '{task.backend}', not '{row.backend}'."
        )
    try:
        backend = task_backends[row.backend]
    except InvalidTaskBackend as exc:
        raise TaskNotAllowedError(f"No Tasks backend '{row.backend}' in settings.TASKS.") from exc
    if not isinstance(backend, DatabaseBackend):
        raise TaskNotAllowedError(
            f"Tasks backend '{row.backend}' is not a django-simple-queue DatabaseBackend."
        )
    # The row may have been enqueued with .using(): report what it was enqueued with.
    return task.using(priority=row.priority, queue_name=row.queue, run_after=row.run_after)


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _errors(row: TaskRow) -> list[TaskError]:
    errors = []
    for entry in row.attempt_log or []:
        if entry.get("outcome") == "completed":
            continue
        if entry.get("outcome") == "cancelled":
            path = class_path(TaskCancelled)
        else:
            path = entry.get("exception_class") or class_path(WorkerLost)
        errors.append(TaskError(exception_class_path=path, traceback=entry.get("error") or ""))
    cancelled = class_path(TaskCancelled)
    if row.status == TaskRow.CANCELLED and all(e.exception_class_path != cancelled for e in errors):
        errors.append(
            TaskError(exception_class_path=cancelled, traceback="The task was cancelled.")
        )
    return errors


def build_result(row: TaskRow, task: Task) -> TaskResult:
    """The ``TaskResult`` that a row stands for, as of now."""
    history = list(row.attempt_log or [])
    worker_ids = [entry.get("worker") or "" for entry in history]
    if row.status == TaskRow.PROGRESS:
        worker_ids.append(row.worker_id)
    started = _parse(history[0].get("started")) if history else None
    result: TaskResult = TaskResult(
        task=task,
        id=str(row.id),
        status=STATUSES[row.status],
        enqueued_at=row.created,
        started_at=started or row.started_at,
        finished_at=row.finished_at,
        last_attempted_at=row.started_at,
        args=list(row.positional_args or []),
        kwargs=callables.load_args(row.args),
        backend=row.backend,
        errors=_errors(row),
        worker_ids=worker_ids,
    )
    if row.status == TaskRow.COMPLETED:
        object.__setattr__(result, "_return_value", row.return_value)
    return result


def prepare_call(row: TaskRow) -> tuple[Callable[..., Any], list[Any], dict[str, Any]]:
    """The worker's hook: the function to call for a row and its positional and keyword arguments.

    The function sends ``task_started`` and makes its return value JSON-safe (a value without a
    JSON form fails the attempt with a TypeError that says so).
    """
    task = load_task(row)
    kwargs = callables.load_args(row.args)
    args = list(row.positional_args or [])
    result = build_result(row, task)
    if task.takes_context:
        args.insert(0, TaskContext(task_result=result))
    sender = type(task.get_backend())
    what = f"The return value of {row.task}"

    def call(*a: Any, **kw: Any) -> Any:
        # Sent before any event loop runs, so receivers may use the ORM as with Django's backends.
        task_started.send(sender, task_result=result)
        value = task.func(*a, **kw)
        if inspect.isawaitable(value):
            return _json_safe_later(value, what)
        return json_safe(value, what)

    return call, args, kwargs


async def _json_safe_later(awaitable: Awaitable[Any], what: str) -> Any:
    return json_safe(await awaitable, what)


def send_finished(row: TaskRow) -> None:
    """Send Django's ``task_finished`` after an attempt was recorded (the supervisor calls this)."""
    try:
        task = load_task(row)
    except (InvalidTaskPath, TaskNotAllowedError):
        return
    result = build_result(row, task)
    sender = type(task.get_backend())
    signals.send_robustly(task_finished, "task_finished", row.id, sender, task_result=result)
