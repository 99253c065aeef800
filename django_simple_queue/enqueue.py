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

from django.db import IntegrityError, transaction

from django_simple_queue import callables, conf, db, notify, postgres, tracing, workflows
from django_simple_queue.exceptions import InvalidStateChange, TaskNotAllowedError
from django_simple_queue.models import Batch, Task

__all__ = [
    "TaskNotAllowedError",
    "add_to_batch",
    "build_task",
    "checked_values",
    "create_batch",
    "create_task",
    "create_tasks",
    "insert",
]

KEY_LENGTH = 255

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
    unique_key: str | None = None,
    concurrency_key: str | None = None,
    concurrency_limit: int | None = None,
    on_dependency_failure: str = Task.CANCEL,
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
    if unique_key is not None or concurrency_key is not None or concurrency_limit is not None:
        values.update(controls(unique_key, concurrency_key, concurrency_limit))
    if on_dependency_failure != Task.CANCEL:
        if on_dependency_failure != Task.FAIL:
            raise ValueError(
                f"on_dependency_failure must be {Task.CANCEL!r} or {Task.FAIL!r}, "
                f"not {on_dependency_failure!r}."
            )
        values["on_dependency_failure"] = on_dependency_failure
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


def controls(
    unique_key: str | None, concurrency_key: str | None, concurrency_limit: int | None
) -> dict[str, Any]:
    """The queue-control columns, checked (docs/queues.md)."""
    for name, key in (("unique_key", unique_key), ("concurrency_key", concurrency_key)):
        if key is not None and (not isinstance(key, str) or not key or len(key) > KEY_LENGTH):
            raise ValueError(f"{name} must be a non-empty text of at most {KEY_LENGTH} characters.")
    if concurrency_limit is not None:
        if concurrency_key is None:
            raise ValueError("concurrency_limit needs a concurrency_key to count tasks by.")
        if isinstance(concurrency_limit, bool) or int(concurrency_limit) < 1:
            raise ValueError(f"concurrency_limit must be at least 1, not {concurrency_limit}.")
    limit = None if concurrency_key is None else int(concurrency_limit or 1)
    return {
        "unique_key": unique_key,
        "concurrency_key": concurrency_key,
        "concurrency_limit": limit,
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
    unique_key: str | None = None,
    concurrency_key: str | None = None,
    concurrency_limit: int | None = None,
    on_dependency_failure: str = Task.CANCEL,
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
            unique_key=unique_key,
            concurrency_key=concurrency_key,
            concurrency_limit=concurrency_limit,
            on_dependency_failure=on_dependency_failure,
        )
    )


def insert(obj: Task) -> uuid.UUID:
    """Write one task made by ``build_task`` and wake the workers of its queue; with a
    ``unique_key`` held by a queued or running task, write nothing and return that task's id."""
    using = db.alias()
    if obj.unique_key is not None:
        return _insert_unique(lambda: _save(obj, using), obj.unique_key, using)
    return _save(obj, using)


def _save(obj: Task, using: str) -> uuid.UUID:
    obj.save(force_insert=True, using=using)
    notify.task_enqueued(obj.queue, using)
    return obj.id


def _insert_unique(write: Callable[[], uuid.UUID | None], key: str, using: str) -> uuid.UUID:
    """``write()`` unless an active task holds ``key``; the database refuses a second one (a
    partial unique index), so two callers at the same moment make one row. MySQL and MariaDB have
    no such index: there the key is looked up first (docs/queues.md)."""
    enforced = db.connection(using).vendor != "mysql"
    for _ in range(5):
        holder = None if enforced else _holder(key, using)
        if holder is not None:
            return holder
        try:
            with transaction.atomic(using=using):
                written = write()
        except IntegrityError:
            written = None
        if written is not None:
            return written
        holder = _holder(key, using)
        if holder is not None:
            return holder
        # The holder finished between the two statements: the key is free again.
    raise RuntimeError(f"unique_key {key!r}: no task could be written or found.")


def _holder(key: str, using: str) -> uuid.UUID | None:
    """The queued or running task holding ``key``."""
    return (
        Task.objects.using(using)
        .filter(unique_key=key, status__in=(Task.QUEUED, Task.PROGRESS))
        .values_list("id", flat=True)
        .first()
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
    unique_key: str | None = None,
    concurrency_key: str | None = None,
    concurrency_limit: int | None = None,
    depends_on: Iterable[uuid.UUID | str] = (),
    on_dependency_failure: str = Task.CANCEL,
) -> uuid.UUID:
    """Queue ``task(**args)`` and return the new task's id.

    Inside ``transaction.atomic()`` the task becomes visible (and workers are woken) on commit.
    With ``unique_key``, while a task with that key is queued or running, nothing is written and
    that task's id is returned. With ``concurrency_key``, at most ``concurrency_limit`` (default 1)
    tasks of that key run at once. With ``depends_on``, it waits until those tasks have completed,
    and if one fails or is cancelled it is cancelled (or failed, with ``on_dependency_failure="fail"``)
    without running (docs/workflows.md).
    """
    if depends_on:
        # Ids only: positions mean something in a list of tasks (create_tasks) alone.
        references = workflows.parse_references(depends_on, 0)
        item = {
            "task": task,
            "args": args,
            "queue": queue,
            "priority": priority,
            "run_after": run_after,
            "max_attempts": max_attempts,
            "timeout": timeout,
            "enqueued_by": enqueued_by,
            "depends_on": references,
            "on_dependency_failure": on_dependency_failure,
        }
        if concurrency_key is not None:
            item.update(concurrency_key=concurrency_key, concurrency_limit=concurrency_limit)
        if unique_key is not None:
            item["unique_key"] = unique_key
        return create_tasks([item])[0]
    values = checked_values(
        task,
        args,
        queue=queue,
        priority=priority,
        run_after=run_after,
        max_attempts=max_attempts,
        timeout=timeout,
        enqueued_by=enqueued_by,
        unique_key=unique_key,
        concurrency_key=concurrency_key,
        concurrency_limit=concurrency_limit,
        on_dependency_failure=on_dependency_failure,
    )
    using = db.alias()
    if not postgres.applies(using):
        return insert(Task(**values))
    if unique_key is None:
        task_id = postgres.insert_one(values, using)
        assert task_id is not None  # nothing to conflict with
        return task_id
    return _insert_unique(
        lambda: postgres.insert_one(values, using, unique=True), unique_key, using
    )


# create_task's options, passed on as they are when it goes through create_tasks.
_OPTIONS = frozenset(
    {
        "queue",
        "priority",
        "run_after",
        "max_attempts",
        "timeout",
        "enqueued_by",
        "unique_key",
        "concurrency_key",
        "concurrency_limit",
        "depends_on",
        "on_dependency_failure",
    }
)


def create_tasks(
    tasks: Iterable[Task | Mapping[str, Any]], *, batch: uuid.UUID | None = None
) -> list[uuid.UUID]:
    """Queue many tasks at once (COPY on PostgreSQL, INSERTs of 1,000 rows elsewhere); each item is a
    Task from ``build_task`` or a dict of ``create_task``'s arguments. Nothing is written if any item
    is invalid. An item with a ``unique_key`` held by an active task is not written: its place in
    the returned ids holds that task's id.

    A dict's ``depends_on`` may name, besides tasks already enqueued, other items of the same list
    by their position. ``batch`` (``add_to_batch``) puts every task in that batch.
    """
    using = db.alias()
    fast = postgres.applies(using)
    items = list(tasks)
    references = [() if isinstance(item, Task) else item.get("depends_on") or () for item in items]
    # Dicts become rows without a model instance in between: most of the cost at this scale.
    checked: Checked = {}
    built: list[Task | dict[str, Any]] = []
    for item in items:
        if isinstance(item, Task):
            built.append(item)
            continue
        options = {name: value for name, value in item.items() if name != "depends_on"}
        built.append(checked_values(**options, checked=checked) if fast else build_task(**options))
    for item in built:
        if isinstance(item, Task):
            item.batch_id = batch or item.batch_id
        elif batch is not None:
            item["batch_id"] = batch
    plain = [(i, item) for i, item in enumerate(built) if _unique_key(item) is None]
    ids: list[uuid.UUID | None] = [None] * len(built)
    with transaction.atomic(using=using):
        arrangement = None
        if any(references):
            for item in built:
                if isinstance(item, dict):
                    item["id"] = uuid.uuid4()
            arrangement = workflows.arrange(built, references, using, db.now(using))
        if fast:
            written = postgres.copy_many([item for _, item in plain], using)
        else:
            objs = [item for _, item in plain if isinstance(item, Task)]
            Task.objects.using(using).bulk_create(objs, batch_size=BATCH_SIZE)
            written = [obj.id for obj in objs]
        for (i, _), task_id in zip(plain, written, strict=True):
            ids[i] = task_id
        for i, item in enumerate(built):
            if ids[i] is None:
                obj = item if isinstance(item, Task) else Task(**item)
                ids[i] = insert(obj)
        if arrangement is not None:
            workflows.write_edges(arrangement, using)
        for queue in {item.queue if isinstance(item, Task) else item["queue"] for item in built}:
            notify.task_enqueued(queue, using)
    return [task_id for task_id in ids if task_id is not None]


def create_batch(
    tasks: Iterable[Task | Mapping[str, Any]],
    *,
    on_complete: Mapping[str, Any] | None = None,
    name: str = "",
    enqueued_by: str = "",
) -> uuid.UUID:
    """Queue ``tasks`` (as ``create_tasks``) as one batch and return its id.

    ``on_complete`` (a dict of ``create_task``'s arguments) is checked now, written as a waiting
    task, and queued once every task of the batch has finished, whatever the outcome, with
    ``batch_id`` added to its arguments. ``add_to_batch`` adds tasks while the batch is open.
    """
    using = db.alias()
    batch = Batch(name=name, enqueued_by=enqueued_by)
    with transaction.atomic(using=using):
        now = db.now(using)
        batch.created = now
        if on_complete is not None:
            batch.callback = _callback(on_complete, batch.id)
            insert(batch.callback)
        batch.save(force_insert=True, using=using)
        create_tasks(tasks, batch=batch.id)
        # A batch with no task to wait for (none given, or all ended at once) is finished already.
        workflows.close_finished([batch.id], using, now)
    return batch.id


def _callback(on_complete: Mapping[str, Any], batch_id: uuid.UUID) -> Task:
    if not isinstance(on_complete, Mapping) or "task" not in on_complete:
        raise TypeError('on_complete should be a dict of create_task\'s arguments, with "task".')
    options = dict(on_complete)
    args = options.pop("args", {})
    if not isinstance(args, dict):
        raise TypeError("on_complete's args should be of type dict.")
    if "batch_id" in args:
        raise ValueError("on_complete's args must not have batch_id: the batch's id is added.")
    unknown = set(options) - _OPTIONS - {"task"}
    if unknown or "depends_on" in options:
        names = ", ".join(sorted(unknown | ({"depends_on"} & set(options))))
        raise TypeError(f"on_complete cannot have {names}.")
    callback = build_task(args={**args, "batch_id": str(batch_id)}, **options)
    callback.status = Task.WAITING
    return callback


def add_to_batch(
    batch_id: uuid.UUID | str, tasks: Iterable[Task | Mapping[str, Any]]
) -> list[uuid.UUID]:
    """Queue ``tasks`` (as ``create_tasks``) in the batch ``batch_id`` while it is open; raise
    InvalidStateChange once it has finished (its callback may have run)."""
    using = db.alias()
    with transaction.atomic(using=using):
        # Locked: the batch cannot finish between this look and the insert.
        state = (
            Batch.objects.using(using)
            .select_for_update()
            .filter(id=batch_id)
            .values_list("id", "finished_at")
            .first()
        )
        if state is None:
            raise ValueError(f"No batch has the id {batch_id}.")
        if state[1] is not None:
            raise InvalidStateChange(
                f"Batch {batch_id} finished at {state[1].isoformat()}: start another batch."
            )
        return create_tasks(tasks, batch=state[0])


def _unique_key(item: Task | Mapping[str, Any]) -> str | None:
    return item.unique_key if isinstance(item, Task) else item.get("unique_key")
