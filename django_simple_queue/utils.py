"""Enqueueing: ``create_task`` and ``create_tasks``."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from django.db import transaction

from django_simple_queue import callables, conf, db, notify, rows
from django_simple_queue.exceptions import TaskNotAllowedError
from django_simple_queue.models import Task

__all__ = ["TaskNotAllowedError", "build_task", "create_task", "create_tasks"]

# Rows per INSERT: large batches keep round trips few; PostgreSQL takes up to 65,535 parameters.
BATCH_SIZE = 1000


def _validated(
    task: str,
    args: Mapping[str, Any],
    *,
    queue: str = "default",
    priority: int = 0,
    run_after: datetime | None = None,
    max_attempts: int | None = None,
    timeout: int | None = None,
    enqueued_by: str = "",
    checked: set[tuple[str, tuple[str, ...]]] | None = None,
) -> dict[str, Any]:
    """The checked field values of a new task; raises before anything is written.

    ``checked`` remembers (path, argument names) pairs already found allowed, importable and
    matching the signature, so that a bulk enqueue checks each kind of call once.
    """
    if not isinstance(args, dict):
        raise TypeError("args should be of type dict.")
    key = (task, tuple(args))
    if checked is None or key not in checked:
        callables.bind(callables.resolve(task), args)
        if checked is not None:
            checked.add(key)
    text = callables.dump_args(args)
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
) -> Task:
    """Validate everything about a task and return it unsaved; raise before anything is written."""
    return Task(
        **_validated(
            task,
            args,
            queue=queue,
            priority=priority,
            run_after=run_after,
            max_attempts=max_attempts,
            timeout=timeout,
            enqueued_by=enqueued_by,
        )
    )


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
    values = _validated(
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
    if rows.applies(using):
        return rows.insert_one(values, using)
    obj = Task(**values)
    obj.save(force_insert=True, using=using)
    notify.task_enqueued(obj.queue, using)
    return obj.id


def create_tasks(tasks: Iterable[Task | Mapping[str, Any]]) -> list[uuid.UUID]:
    """Queue many tasks at once (COPY on PostgreSQL, INSERTs of 1,000 rows elsewhere); each item is a
    Task from ``build_task`` or a dict of ``create_task``'s arguments. Nothing is written if any item
    is invalid."""
    using = db.alias()
    if rows.applies(using):
        # Dicts become rows without a model instance in between: most of the cost at this scale.
        checked: set[tuple[str, tuple[str, ...]]] = set()
        built = [
            item if isinstance(item, Task) else _validated(**item, checked=checked)
            for item in tasks
        ]
        with transaction.atomic(using=using):
            ids = rows.copy_many(built, using)
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
