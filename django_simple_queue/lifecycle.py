"""Every change of a task's state, in one place.

The worker, the admin actions, the Tasks backend and the management commands call these
functions; none of them writes ``status`` by hand. Each change is a guarded ``UPDATE … WHERE
status=…`` (and, for a worker's claim, ``AND claim_token=…``), so concurrent actors cannot undo
each other's work.
"""

from __future__ import annotations

import enum
import random
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q, TextField, Value
from django.db.models.functions import Coalesce, Concat

from django_simple_queue import callables, causes, conf, db, enqueue, postgres, signals, workflows
from django_simple_queue.exceptions import TaskError
from django_simple_queue.models import Dependency, Task
from django_simple_queue.output import truncate
from django_simple_queue.queues import LIMITED_CLAIM_LOCK, Controls


class Ending(enum.Enum):
    """How an attempt ended: one of these, never two.

    FAILED and TIMED_OUT are retried while attempts remain; REFUSED is a failure that no other
    attempt can fix (task not allowed, poison arguments), never retried.
    """

    COMPLETED = "completed"
    FAILED = "failed"
    TIMED_OUT = "timed out"
    REFUSED = "refused"
    CANCELLED = "cancelled"


@dataclass
class Outcome:
    """What one attempt produced, as reported by whoever ran it."""

    ending: Ending
    output: str | None = None
    error: str | None = None
    log: str | None = None
    return_value: Any = None
    exception: BaseException | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.ending is Ending.COMPLETED

    @property
    def exception_type(self) -> str:
        """The cause recorded in ``Task.exception_type``: "" unless the attempt failed."""
        if self.ending in (Ending.COMPLETED, Ending.CANCELLED):
            return ""
        if self.ending is Ending.TIMED_OUT and self.exception is None:
            return causes.TIMEOUT
        return causes.of_exception(self.exception)


def claim(
    worker_id: str,
    *,
    limit: int = 1,
    queues: Sequence[str] | None = None,
    pid: int | None = None,
    controls: Controls | None = None,
    limited_limit: int | None = None,
) -> list[Task]:
    """Claim up to ``limit`` ready tasks for ``worker_id``; return them marked In progress.

    ``controls`` (read now if not given) names the paused and capped queues and whether tasks with
    a concurrency key wait. Those limited tasks are claimed only under LIMITED_CLAIM_LOCK, by one
    worker at a time, at most ``limited_limit`` of them (the worker's idle children: a worker never
    holds a limited task it cannot start); other tasks as many as ``limit`` allows.
    """
    using = db.alias()
    controls = controls if controls is not None else Controls.read(using)
    now = db.now(using)
    token = uuid.uuid4()
    changes = _claim_changes(token, worker_id, pid, now)
    no_room = limited_limit is not None and limited_limit <= 0
    if not controls.limited or no_room:
        return _claim(using, changes, now, limit, queues, controls, limited=False)
    limited = False
    try:
        with transaction.atomic(using=using):
            limited = _limited_claim_lock(using)
            return _claim(
                using, changes, now, limit, queues, controls, limited=limited, room=limited_limit
            )
    finally:
        if limited:
            _limited_claim_unlock(using)


def _claim(
    using: str,
    changes: dict[str, Any],
    now: datetime,
    limit: int,
    queues: Sequence[str] | None,
    controls: Controls,
    *,
    limited: bool,
    room: int | None = None,
) -> list[Task]:
    if db.connection(using).vendor == "postgresql":
        known = dict(changes)
        del known["attempts"]  # the one change computed by the database
        return postgres.claim(
            using,
            known,
            now=now,
            limit=limit,
            queues=queues,
            controls=controls,
            limited=limited,
            room=room,
        )
    tasks = Task.objects.using(using)
    with transaction.atomic(using=using):
        ready = tasks.ready(now)
        if queues:
            ready = ready.filter(queue__in=queues)
        if controls.paused:
            ready = ready.exclude(queue__in=controls.paused)
        if not limited:
            ready = ready.filter(concurrency_key__isnull=True).exclude(queue__in=controls.caps)
        if db.connection(using).features.has_select_for_update_skip_locked:
            ready = ready.select_for_update(skip_locked=True)
        if limited:
            ids = _within_limits(ready, controls, limit, limit if room is None else room, using)
        else:
            ids = list(ready.values_list("id", flat=True)[:limit])
        if not ids:
            return []
        tasks.filter(id__in=ids, status=Task.QUEUED).update(**changes)
    token = changes["claim_token"]
    return list(tasks.filter(id__in=ids, claim_token=token).order_by("-priority", "created"))


def _within_limits(ready: Any, controls: Controls, limit: int, room: int, using: str) -> list[Any]:
    """The ids of the best ready tasks that fit their concurrency key's and queue's limits, counted
    from what runs now (SQLite and MySQL; PostgreSQL does this in its claim statement)."""
    candidates = list(
        ready.values_list("id", "queue", "concurrency_key", "concurrency_limit")[: limit * 4]
    )
    running = Task.objects.using(using).filter(status=Task.PROGRESS)
    keys = {c[2] for c in candidates if c[2] is not None}
    by_key = Counter(
        running.filter(concurrency_key__in=keys).values_list("concurrency_key", flat=True)
    )
    by_queue = Counter(running.filter(queue__in=controls.caps).values_list("queue", flat=True))
    ids = []
    for task_id, queue, key, key_limit in candidates:
        if key is not None and by_key[key] >= (key_limit or 1):
            continue
        if queue in controls.caps and by_queue[queue] >= controls.caps[queue]:
            continue
        if key is not None or queue in controls.caps:
            if room <= 0:
                continue
            room -= 1
        ids.append(task_id)
        by_key[key] += 1
        by_queue[queue] += 1
        if len(ids) == limit:
            break
    return ids


_MYSQL_LOCK_NAME = f"dsq-{LIMITED_CLAIM_LOCK}"


def _limited_claim_lock(using: str) -> bool:
    """LIMITED_CLAIM_LOCK for this transaction (PostgreSQL) or until released (MySQL). SQLite's
    writers take turns anyway (``transaction_mode`` IMMEDIATE)."""
    vendor = db.connection(using).vendor
    if vendor == "postgresql":
        return postgres.limited_claim_lock(using)
    if vendor == "mysql":
        with db.connection(using).cursor() as cursor:
            cursor.execute("SELECT GET_LOCK(%s, 0)", [_MYSQL_LOCK_NAME])
            row = cursor.fetchone()
        return bool(row and row[0] == 1)
    return True


def _limited_claim_unlock(using: str) -> None:
    if db.connection(using).vendor == "mysql":
        with db.connection(using).cursor() as cursor:
            cursor.execute("SELECT RELEASE_LOCK(%s)", [_MYSQL_LOCK_NAME])


def _claim_changes(
    token: uuid.UUID, worker_id: str, pid: int | None, now: datetime
) -> dict[str, Any]:
    return {
        "status": Task.PROGRESS,
        "claim_token": token,
        "worker_id": worker_id,
        "worker_pid": pid,
        "attempts": F("attempts") + 1,
        "started_at": now,
        "heartbeat_at": now,
        "finished_at": None,
        "cancel_requested": False,
        "progress": None,
        "progress_message": "",
        "output": None,
        "log": None,
        "modified": now,
    }


def claim_one(task: Task, worker_id: str, *, pid: int | None = None) -> bool:
    """Claim this queued (or, as the original allowed, running) task for the calling process."""
    now = db.now()
    token = uuid.uuid4()
    claimed = Task.objects.filter(id=task.id, status=task.status).update(
        **_claim_changes(token, worker_id, pid, now)
    )
    if not claimed:
        return False  # taken meanwhile: the instance keeps no one else's claim token
    task.refresh_from_db()
    task.claim_token = token  # ours, even if someone has claimed it again since
    return True


def _claimed(task: Task) -> Any:
    return Task.objects.filter(id=task.id, claim_token=task.claim_token, status=Task.PROGRESS)


def append_output(
    task: Task, text: str, *, progress: float | None = None, message: str | None = None
) -> bool:
    """Append streamed output (and progress) of a running task; False if the claim was lost."""
    changes: dict[str, Any] = {"modified": db.now()}
    if text:
        changes["output"] = Concat(
            Coalesce(F("output"), Value(""), output_field=TextField()),
            Value(text),
            output_field=TextField(),
        )
    if progress is not None:
        changes["progress"] = progress
    if message is not None:
        changes["progress_message"] = message[:255]
    return bool(_claimed(task).update(**changes))


# A task back in the queue shows no progress: the report was its last attempt's.
_NO_PROGRESS: dict[str, Any] = {"progress": None, "progress_message": ""}


def retry_delay(attempt: int) -> timedelta:
    """Exponential backoff with full jitter: up to RETRY_BACKOFF * 2 ** (attempt - 1) seconds."""
    base = float(conf.get("RETRY_BACKOFF")) * 2 ** max(attempt - 1, 0)
    return timedelta(seconds=base * random.uniform(0.5, 1.0))


def _history(
    task: Task, attempt: int, now: datetime, label: str, outcome: Outcome
) -> list[dict[str, Any]]:
    exc = outcome.exception
    entry = {
        "attempt": attempt,
        "worker": task.worker_id,
        "started": task.started_at.isoformat() if task.started_at else None,
        "finished": now.isoformat(),
        "outcome": label,
        "error": outcome.error,
        # Django's Tasks API reports the class of each attempt's exception.
        "exception_class": causes.of_exception(exc) if exc is not None else None,
    }
    return [*list(task.attempt_log or []), entry]


def _decide(task: Task, outcome: Outcome, now: datetime) -> tuple[int, dict[str, Any]]:
    """The status and the column changes that record ``outcome`` for ``task``'s attempt."""
    # A task that ran has had an attempt, counted or not: rows that 0.1.x left In progress, or
    # that were made so by hand, have none.
    attempts = max(task.attempts, 1)
    ending = outcome.ending
    if ending is Ending.COMPLETED:
        status, label = Task.COMPLETED, ending.value
    elif ending is Ending.CANCELLED:
        status, label = Task.CANCELLED, ending.value
    elif ending is not Ending.REFUSED and attempts < task.max_attempts:
        status, label = Task.QUEUED, "retrying"
    else:
        status, label = Task.FAILED, "timed out" if ending is Ending.TIMED_OUT else "failed"
    changes: dict[str, Any] = {
        "status": status,
        "modified": now,
        "heartbeat_at": None,
        "worker_pid": None,
        "attempt_log": _history(task, attempts, now, label, outcome),
        # Written with ``error``, of which it is the cause: the failures page groups by it.
        "exception_type": outcome.exception_type,
    }
    if attempts != task.attempts:  # never for a worker's claims: finish_many need not write it
        changes["attempts"] = attempts
    if status == Task.QUEUED:
        changes.update(
            claim_token=None,
            run_after=now + retry_delay(attempts),
            error=outcome.error,
            **_NO_PROGRESS,
        )
    else:
        changes.update(finished_at=now, error=outcome.error, return_value=outcome.return_value)
        if outcome.ok:
            changes["progress"] = 1.0
    if outcome.output is not None:
        changes["output"] = truncate(outcome.output, conf.get_max_output_size())
    if outcome.log is not None:
        changes["log"] = outcome.log
    return status, changes


def _recorded(task: Task, status: int, changes: dict[str, Any], outcome: Outcome) -> None:
    """Update the instance to match its row; tell the receivers once the change is committed."""
    for name, value in changes.items():
        setattr(task, name, value)

    def announce() -> None:  # not a partial: Django names the callback by its __qualname__
        if status == Task.COMPLETED:
            signals.send_robustly(signals.on_success, "on_success", task.id, Task, task=task)
        elif status != Task.CANCELLED:
            signals.send_robustly(
                signals.on_failure, "on_failure", task.id, Task, task=task, error=outcome.exception
            )
        if task.backend:
            _send_tasks_finished(task)

    # Never inside the writer's transaction: a receiver that raises there would roll back a whole
    # rescue. robust: whatever fails while telling them, the caller's bookkeeping goes on.
    transaction.on_commit(announce, using=db.alias(), robust=True)


def finish(task: Task, outcome: Outcome, *, now: datetime | None = None) -> int | None:
    """Record the outcome of ``task``'s current attempt, fenced by its claim token.

    Returns the new status, or None when the claim was lost (the task was rescued and belongs to
    someone else now), in which case nothing is written.
    """
    using = db.alias()
    now = now or db.now(using)
    status, changes = _decide(task, outcome, now)
    with transaction.atomic(using=using, savepoint=False):
        if not _claimed(task).update(**changes):
            return None
        _recorded(task, status, changes, outcome)
        if status in Task.FINISHED:
            _settle({task.id: status}, [task.batch_id], using, now)
    return status


def _settle(
    ended: dict[uuid.UUID, int], batches: Iterable[uuid.UUID | None], using: str, now: datetime
) -> None:
    """What ending ``ended`` means for the tasks waiting on them and for their ``batches``
    (``workflows.settle``); waiting tasks it stops are announced as any other ending."""
    _settled(workflows.settle(ended, {b for b in batches if b is not None}, using, now))


def _settled(stopped: Iterable[Task]) -> None:
    """Announce the waiting tasks a settle stopped, as any other ending."""
    for task in stopped:
        _recorded(task, task.status, {}, Outcome(Ending.REFUSED, error=task.error))


def finish_many(
    results: Sequence[tuple[Task, Outcome]], *, now: datetime | None = None
) -> list[int | None]:
    """``finish`` for many tasks at once: one statement on PostgreSQL, one transaction elsewhere.

    Each row is still fenced by its own claim token; the list holds each task's new status, or None
    where the claim was lost.
    """
    if not results:
        return []
    using = db.alias()
    now = now or db.now(using)
    decided = [_decide(task, outcome, now) for task, outcome in results]
    if db.connection(using).vendor == "postgresql":
        # One statement; endings that something waits for are settled after it (settle_pending).
        written = postgres.finish_many(using, [task for task, _ in results], decided, now)
        statuses = _recorded_all(results, decided, written)
        pending = [task_id for task_id, pending in written.items() if pending]
        if pending:
            with transaction.atomic(using=using):
                _settled(workflows.settle_pending(pending, using, now))
        return statuses
    with transaction.atomic(using=using):
        written = {
            task.id: True
            for (task, _), (_, changes) in zip(results, decided, strict=True)
            if _claimed(task).update(**changes)
        }
        statuses = _recorded_all(results, decided, written)
        ended = {
            task.id: status
            for (task, _), status in zip(results, statuses, strict=True)
            if status in Task.FINISHED
        }
        if ended:
            batches = {task.batch_id for task, _ in results if task.id in ended}
            _settle(ended, batches, using, now)
    return statuses


def _recorded_all(
    results: Sequence[tuple[Task, Outcome]],
    decided: Sequence[tuple[int, dict[str, Any]]],
    written: Mapping[uuid.UUID, bool],
) -> list[int | None]:
    """``_recorded`` for each task whose row was ``written``: its new status, else None."""
    statuses: list[int | None] = []
    for (task, outcome), (status, changes) in zip(results, decided, strict=True):
        if task.id in written:
            _recorded(task, status, changes, outcome)
            statuses.append(status)
        else:
            statuses.append(None)
    return statuses


def settle_left() -> int:
    """Settle the endings a worker died before settling (``settle_pending``); how many."""
    using = db.alias()
    now = db.now(using)
    grace = now - timedelta(seconds=float(conf.get("STALE_AFTER")))
    left = Task.objects.using(using).filter(settle_pending=True, modified__lt=grace)
    ids = list(left.values_list("id", flat=True)[:1000])
    if ids:
        with transaction.atomic(using=using):
            _settled(workflows.settle_pending(ids, using, now))
    return len(ids)


def _send_tasks_finished(task: Task) -> None:
    """Django's ``task_finished`` for a row enqueued through its Tasks API, after each attempt."""
    try:
        from django_simple_queue.backends import send_finished
    except ImportError:
        return
    send_finished(task)


def heartbeat(tasks: Iterable[Task]) -> None:
    """Refresh the heartbeat of the claims on ``tasks`` that are still held."""
    tasks = list(tasks)
    if tasks:
        Task.objects.filter(
            id__in={task.id for task in tasks},
            claim_token__in={task.claim_token for task in tasks},
            status=Task.PROGRESS,
        ).update(heartbeat_at=db.now())


def held_claims(tasks: Iterable[Task]) -> dict[uuid.UUID, bool]:
    """Which of ``tasks`` are still held by their claim: task id → whether a cancel was requested.

    Keyed by task, not by claim token: one claim takes several tasks with one token.
    """
    tokens = {task.id: task.claim_token for task in tasks}
    if not tokens:
        return {}
    rows = Task.objects.filter(id__in=tokens, status=Task.PROGRESS)
    return {
        task_id: cancel
        for task_id, token, cancel in rows.values_list("id", "claim_token", "cancel_requested")
        if token is not None and token == tokens[task_id]
    }


def _unclaimed() -> dict[str, Any]:
    """The changes that put a claimed task back in the queue without counting the attempt."""
    return {
        "status": Task.QUEUED,
        "claim_token": None,
        "heartbeat_at": None,
        "worker_pid": None,
        "started_at": None,
        "attempts": F("attempts") - 1,
        "modified": db.now(),
        **_NO_PROGRESS,
    }


def release_unknown(worker_id: str, known: Iterable[Task]) -> int:
    """Put back claims of ``worker_id`` other than ``known``; the attempt is not counted.

    These are claims whose commit the worker never heard of, because its connection broke first:
    their tasks never started.
    """
    tokens = {task.claim_token for task in known}
    unknown = Task.objects.running().filter(worker_id=worker_id).exclude(claim_token__in=tokens)
    return unknown.update(**_unclaimed())


def release(tasks: Iterable[Task]) -> int:
    """Put tasks a stopping worker could not finish back in the queue; the attempt is not counted."""
    released = 0
    for task in tasks:
        released += _claimed(task).update(**_unclaimed())
    return released


def rescue_stale(now: datetime | None = None) -> list[Task]:
    """Take back claims whose worker stopped heartbeating: retry while attempts remain, else fail.

    The receivers of ``on_failure`` hear of the rescued tasks once the whole batch is committed.
    """
    using = db.alias()
    now = now or db.now(using)
    rescued: list[Task] = []
    with transaction.atomic(using=using):
        stale = Task.objects.using(using).stale(now)
        if db.connection(using).features.has_select_for_update_skip_locked:
            stale = stale.select_for_update(skip_locked=True)
        for task in stale[:100]:
            beat = task.heartbeat_at.isoformat() if task.heartbeat_at else "never"
            error = (
                f"Worker {task.worker_id or '?'} was lost: no heartbeat since {beat} "
                f"(rescued at {now.isoformat()})."
            )
            if finish(task, Outcome(Ending.FAILED, error=error), now=now) is not None:
                rescued.append(task)
    return rescued


def cancel(queryset: Any) -> tuple[int, int]:
    """Cancel queued tasks at once and ask workers to stop running ones: (cancelled, requested).

    A cancelled queued task's history says so, and Django's ``task_finished`` is sent for it as
    for any other finish of a Tasks API task.
    """
    using = db.alias()
    now = db.now(using)
    cancelled: list[Task] = []
    outcome = Outcome(Ending.CANCELLED, error="The task was cancelled before it ran.")
    with transaction.atomic(using=using):
        for task in queryset.filter(status__in=(Task.QUEUED, Task.WAITING)):
            changes = {
                "status": Task.CANCELLED,
                "finished_at": now,
                "modified": now,
                "claim_token": None,
                "attempt_log": _history(task, task.attempts, now, "cancelled", outcome),
            }
            if Task.objects.filter(id=task.id, status=task.status).update(**changes):
                _recorded(task, Task.CANCELLED, changes, outcome)
                cancelled.append(task)
        if cancelled:
            ended = {task.id: Task.CANCELLED for task in cancelled}
            _settle(ended, [task.batch_id for task in cancelled], using, now)
        requested = queryset.filter(status=Task.PROGRESS, cancel_requested=False).update(
            cancel_requested=True, modified=now
        )
    return len(cancelled), requested


def delete(queryset: Any) -> int:
    """Delete the tasks of ``queryset`` that are not running; return how many. A queued or waiting
    one is cancelled first, so that tasks waiting for it end as for any cancel, and its batch
    can finish."""
    using = db.alias()
    with transaction.atomic(using=using):
        cancel(queryset.filter(status__in=(Task.QUEUED, Task.WAITING)))
        deleted = queryset.exclude(status=Task.PROGRESS).delete()[1]
    return deleted.get(Task._meta.label, 0)


def enqueue_again(queryset: Any) -> int:
    """Put finished tasks back in the queue as they are (the admin's ``enqueue_tasks``); return
    how many.

    The tasks they had stopped (dependants that never ran) come back with them, and any of these
    tasks waits again for its dependencies that have not completed (docs/workflows.md). Their
    batches open again.
    """
    using = db.alias()
    now = db.now(using)
    finished = queryset.filter(status__in=Task.FINISHED)
    with transaction.atomic(using=using):
        revived = workflows.stopped_by(
            finished.filter(waited_on=True).values_list("id", flat=True), using
        )
        dependent = Exists(Dependency.objects.filter(task=OuterRef("pk")))
        waiting = [*finished.filter(dependent).values_list("id", flat=True), *revived]
        queued_again = [
            finished,
            *(Task.objects.filter(id__in=c) for c in workflows.chunks(revived)),
        ]
        batches = {
            batch
            for tasks in queued_again
            for batch in tasks.exclude(batch=None).values_list("batch", flat=True).distinct()
        }
        workflows.reopen(batches, using)
        count = sum(
            tasks.filter(status__in=Task.FINISHED).update(**_fresh(now)) for tasks in queued_again
        )
        workflows.wait_again(waiting, using, now)
    return count


def _fresh(now: datetime) -> dict[str, Any]:
    """The changes that make a finished task queued as new (its history kept)."""
    return {
        "status": Task.QUEUED,
        "attempts": 0,
        "run_after": None,
        "claim_token": None,
        "cancel_requested": False,
        "started_at": None,
        "finished_at": None,
        "heartbeat_at": None,
        "worker_pid": None,
        "progress": None,
        "progress_message": "",
        "modified": now,
    }


@dataclass
class Requeued:
    """What ``requeue_copies`` did: the copies it queued, and the finished tasks it refused, with
    the reason (a task no longer allowed or importable, arguments that no longer fit)."""

    copies: list[Task]
    refused: list[tuple[Task, str]]


def requeue_copies(queryset: Any, *, enqueued_by: str = "") -> Requeued:
    """A new queued copy of each finished task, linked to its original, which is kept as history.

    Each copy passes ``enqueue``'s checks as any new task does. Queued and running tasks are left
    out: a copy of one would run the same work twice (and a second "apply to all" would copy the
    copies the first one made).
    """
    copies: list[Task] = []
    refused: list[tuple[Task, str]] = []
    checked: enqueue.Checked = {}
    for task in queryset.filter(status__in=Task.FINISHED):
        try:
            values = enqueue.checked_values(
                task.task,
                callables.load_args(task.args),
                queue=task.queue,
                priority=task.priority,
                max_attempts=task.max_attempts,
                timeout=task.timeout,
                enqueued_by=enqueued_by or task.enqueued_by,
                backend=task.backend,
                positional_args=task.positional_args or [],
                checked=checked,
            )
        except (TaskError, ValueError) as exc:
            refused.append((task, str(exc)))
            continue
        # The arguments as they were written (checked above), not as JSON would write them now.
        copies.append(Task(**{**values, "args": task.args}, requeued_from=task))
    if copies:
        enqueue.create_tasks(copies)
    return Requeued(copies, refused)


def prunable(cutoff: datetime, statuses: Sequence[int]) -> Any:
    """Finished tasks with one of ``statuses`` that finished (or, for old rows, changed) before ``cutoff``."""
    finished = Q(finished_at__lt=cutoff) | Q(finished_at__isnull=True, modified__lt=cutoff)
    return Task.objects.filter(status__in=[s for s in statuses if s in Task.FINISHED]).filter(
        finished
    )


# A prune that deletes this many rows refreshes the table's statistics: the planner must not go on
# believing in rows that are gone (nor, worse, be told by a later automatic ANALYZE at a bad moment
# that the table is empty).
ANALYZE_AFTER = 10_000


def prune(cutoff: datetime, statuses: Sequence[int], *, batch_size: int = 1000) -> int:
    """Delete what ``prunable`` selects, ``batch_size`` rows per statement; return the count."""
    deleted = 0
    while True:
        ids = list(prunable(cutoff, statuses).values_list("id", flat=True)[:batch_size])
        if not ids:
            break
        # delete(), not a raw DELETE: copies made by requeue_copies get requeued_from = NULL.
        deleted += Task.objects.filter(id__in=ids).delete()[1].get(Task._meta.label, 0)
    if deleted >= ANALYZE_AFTER:
        analyze()
    return deleted


def analyze() -> None:
    """Refresh the planner's statistics of the task table."""
    connection = db.connection()
    table = connection.ops.quote_name(Task._meta.db_table)
    statement = "ANALYZE TABLE" if connection.vendor == "mysql" else "ANALYZE"
    with connection.cursor() as cursor:
        cursor.execute(f"{statement} {table}")


def edit_queued(task: Task, **changes: Any) -> bool:
    """Change a task that is still queued (arguments, queue, priority …); False once claimed."""
    unknown = set(changes) - set(Task.EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"edit_queued cannot change {', '.join(sorted(unknown))}.")
    changes["modified"] = db.now()
    editable = Task.objects.filter(id=task.id, status__in=(Task.QUEUED, Task.WAITING))
    return bool(editable.update(**changes))
