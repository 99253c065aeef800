"""Endings: what a claimed task's attempt came to (finish, retry, release, rescue), fenced by its
claim token, and what the ending settles for the tasks waiting on it (``workflows``)."""

from __future__ import annotations

import enum
import random
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F, TextField, Value
from django.db.models.functions import Coalesce, Concat

from django_simple_queue import causes, conf, db, postgres, signals, workflows
from django_simple_queue.models import Task
from django_simple_queue.output import truncate


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


def attempt_history(
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
        "attempt_log": attempt_history(task, attempts, now, label, outcome),
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


def recorded(task: Task, status: int, changes: dict[str, Any], outcome: Outcome) -> None:
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
        recorded(task, status, changes, outcome)
        if status in Task.FINISHED:
            settle_endings({task.id: status}, [task.batch_id], using, now)
    return status


def settle_endings(
    ended: dict[uuid.UUID, int], batches: Iterable[uuid.UUID | None], using: str, now: datetime
) -> None:
    """What ending ``ended`` means for the tasks waiting on them and for their ``batches``
    (``workflows.settle``); waiting tasks it stops are announced as any other ending."""
    announce_stopped(workflows.settle(ended, {b for b in batches if b is not None}, using, now))


def announce_stopped(stopped: Iterable[Task]) -> None:
    """Announce the waiting tasks a settle stopped, as any other ending."""
    for task in stopped:
        recorded(task, task.status, {}, Outcome(Ending.REFUSED, error=task.error))


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
        statuses = recorded_all(results, decided, written)
        pending = [task_id for task_id, pending in written.items() if pending]
        if pending:
            with transaction.atomic(using=using):
                announce_stopped(workflows.settle_pending(pending, using, now))
        return statuses
    with transaction.atomic(using=using):
        written = {
            task.id: True
            for (task, _), (_, changes) in zip(results, decided, strict=True)
            if _claimed(task).update(**changes)
        }
        statuses = recorded_all(results, decided, written)
        ended = {
            task.id: status
            for (task, _), status in zip(results, statuses, strict=True)
            if status in Task.FINISHED
        }
        if ended:
            batches = {task.batch_id for task, _ in results if task.id in ended}
            settle_endings(ended, batches, using, now)
    return statuses


def recorded_all(
    results: Sequence[tuple[Task, Outcome]],
    decided: Sequence[tuple[int, dict[str, Any]]],
    written: Mapping[uuid.UUID, bool],
) -> list[int | None]:
    """``recorded`` for each task whose row was ``written``: its new status, else None."""
    statuses: list[int | None] = []
    for (task, outcome), (status, changes) in zip(results, decided, strict=True):
        if task.id in written:
            recorded(task, status, changes, outcome)
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
            announce_stopped(workflows.settle_pending(ids, using, now))
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
