"""What staff (the admin, the management commands) do to tasks: cancel, delete, enqueue again
as they are or as copies, prune, edit while queued."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef, Q

from django_simple_queue import callables, db, enqueue, workflows
from django_simple_queue.exceptions import TaskError
from django_simple_queue.lifecycle.endings import (
    Ending,
    Outcome,
    attempt_history,
    recorded,
    settle_endings,
)
from django_simple_queue.models import Batch, Dependency, Task


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
                "attempt_log": attempt_history(task, task.attempts, now, "cancelled", outcome),
            }
            if Task.objects.filter(id=task.id, status=task.status).update(**changes):
                recorded(task, Task.CANCELLED, changes, outcome)
                cancelled.append(task)
        if cancelled:
            ended = {task.id: Task.CANCELLED for task in cancelled}
            settle_endings(ended, [task.batch_id for task in cancelled], using, now)
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


def emptied_batches(cutoff: datetime) -> Any:
    """Batches that finished before ``cutoff`` and have no task left (a prune took them)."""
    members = Task.objects.filter(batch=OuterRef("pk"))
    return Batch.objects.filter(finished_at__lt=cutoff).exclude(Exists(members))


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
