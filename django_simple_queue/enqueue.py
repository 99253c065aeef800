"""The one insert path: every new task is checked here, then written and announced to the workers.

Code (``create_task``, ``create_tasks``; ``utils`` re-exports them under the original's import
path), the Tasks backend, the admin's enqueue form and CSV import, and ``lifecycle.requeue_copies``
all build their rows with ``build_task`` (or ``checked_values``) and write them with ``insert`` or
``create_tasks``. The checks, in this order, before anything is written:

1. the task may be enqueued: its path is in ALLOWED_TASKS and imports to a callable. A row of
   Django's Tasks API (``backend`` set) names a ``@task`` that its backend has checked instead:
   ALLOWED_TASKS does not apply to those (docs/tasks-api.md);
2. the keyword arguments are a dict (TypeError otherwise, as in the original) that binds to the
   function's signature, with values that fit its type hints (``hints``) (Tasks API rows are bound by Django when called), and their JSON, with any
   positional arguments, fits MAX_ARGS_SIZE;
3. ``max_attempts`` and ``timeout`` are positive.

Inside the caller's ``transaction.atomic()`` a task becomes visible, and wakes the workers, on commit.
Every statement goes to the queue's database, ``db.alias()``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from django.db import transaction

from django_simple_queue import callables, conf, db, notify, postgres, tracing
from django_simple_queue.exceptions import TaskNotAllowedError
from django_simple_queue.models import Task

__all__ = [
    "TaskNotAllowedError",
    "build_task",
    "checked_values",
    "create_task",
    "create_tasks",
    "insert",
]

# Rows per INSERT: large batches keep round trips few; PostgreSQL takes up to 65,535 parameters.
BATCH_SIZE = 1000

# The callables of (path, argument names) pairs found allowed, importable and matching the
# signature; the values of each call are still checked against the type hints.
Checked = dict[tuple[str, tuple[str, ...]], Callable[..., Any]]


def checked_values(
    task: str,
    args: Mapping[str, Any],
    *,
    queue: str = "default",
    priority: int = 0,
    run_after: datetime | None = None,
    max_attempts: int | None = None,
    timeout: int | None = None,
    enqueued_by: str = "",
    backend: str = "",
    positional_args: Sequence[Any] = (),
    checked: Checked | None = None,
) -> dict[str, Any]:
    """The checked column values of a new task; raises before anything is written.

    ``checked`` remembers the kinds of call already checked, so that a bulk enqueue imports and
    binds each once (and checks every call's values).
    """
    if not isinstance(args, dict):
        raise TypeError("args should be of type dict.")
    key = (task, tuple(args))
    if not backend and checked is not None and key in checked:
        callables.check_types(checked[key], args)
    elif not backend:
        func = callables.resolve(task)
        callables.bind(func, args)
        if checked is not None:
            checked[key] = func
    text = callables.dump_args(args)
    values: dict[str, Any] = {}
    if backend:
        positional = list(positional_args)
        callables.check_size(text + json.dumps(positional))
        values = {"backend": backend, "positional_args": positional}
    attempts = conf.get("MAX_ATTEMPTS") if max_attempts is None else max_attempts
    if int(attempts) < 1:
        raise ValueError(f"max_attempts must be at least 1, not {attempts}.")
    if timeout is not None and int(timeout) < 1:
        raise ValueError(f"timeout must be a positive number of seconds, not {timeout}.")
    return {
        "task": task,
        "args": text,
        "queue": queue,
        "priority": priority,
        "run_after": run_after,
        "max_attempts": int(attempts),
        "timeout": timeout,
        "enqueued_by": enqueued_by,
        "trace_context": tracing.current_context(),
        **values,
    }


def build_task(
    task: str,
    args: Mapping[str, Any],
    *,
    queue: str = "default",
    priority: int = 0,
    run_after: datetime | None = None,
    max_attempts: int | None = None,
    timeout: int | None = None,
    enqueued_by: str = "",
    backend: str = "",
    positional_args: Sequence[Any] = (),
) -> Task:
    """Check everything about a task and return it unsaved; raise before anything is written."""
    return Task(
        **checked_values(
            task,
            args,
            queue=queue,
            priority=priority,
            run_after=run_after,
            max_attempts=max_attempts,
            timeout=timeout,
            enqueued_by=enqueued_by,
            backend=backend,
            positional_args=positional_args,
        )
    )


def insert(obj: Task) -> uuid.UUID:
    """Write one task made by ``build_task`` and wake the workers of its queue."""
    using = db.alias()
    obj.save(force_insert=True, using=using)
    notify.task_enqueued(obj.queue, using)
    return obj.id


def create_task(
    task: str,
    args: Mapping[str, Any],
    *,
    queue: str = "default",
    priority: int = 0,
    run_after: datetime | None = None,
    max_attempts: int | None = None,
    timeout: int | None = None,
    enqueued_by: str = "",
) -> uuid.UUID:
    """Queue ``task(**args)`` and return the new task's id.

    Inside ``transaction.atomic()`` the task becomes visible (and workers are woken) on commit.
    """
    values = checked_values(
        task,
        args,
        queue=queue,
        priority=priority,
        run_after=run_after,
        max_attempts=max_attempts,
        timeout=timeout,
        enqueued_by=enqueued_by,
    )
    using = db.alias()
    if postgres.applies(using):
        return postgres.insert_one(values, using)
    return insert(Task(**values))


def create_tasks(tasks: Iterable[Task | Mapping[str, Any]]) -> list[uuid.UUID]:
    """Queue many tasks at once (COPY on PostgreSQL, INSERTs of 1,000 rows elsewhere); each item is a
    Task from ``build_task`` or a dict of ``create_task``'s arguments. Nothing is written if any item
    is invalid."""
    using = db.alias()
    if postgres.applies(using):
        # Dicts become rows without a model instance in between: most of the cost at this scale.
        checked: Checked = {}
        built = [
            item if isinstance(item, Task) else checked_values(**item, checked=checked)
            for item in tasks
        ]
        with transaction.atomic(using=using):
            ids = postgres.copy_many(built, using)
            for queue in {
                item.queue if isinstance(item, Task) else item["queue"] for item in built
            }:
                notify.task_enqueued(queue, using)
        return ids
    objs = [item if isinstance(item, Task) else build_task(**item) for item in tasks]
    with transaction.atomic(using=using):
        Task.objects.using(using).bulk_create(objs, batch_size=BATCH_SIZE)
        for queue in {obj.queue for obj in objs}:
            notify.task_enqueued(queue, using)
    return [obj.id for obj in objs]
