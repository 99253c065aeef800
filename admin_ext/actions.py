"""Admin actions on tasks, and applying them to every task matching the current filter.

Each action narrows the queryset to where it is legal, calls one ``lifecycle`` function and
reports the count.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from django_simple_queue import lifecycle, notify
from django_simple_queue.models import Task

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin

# "Apply to all matching" acts on at most this many tasks at a time.
APPLY_ALL_CAP = 10_000


def _notify(queues: set[str]) -> None:
    for queue in queues:
        notify.task_enqueued(queue)


@admin.action(description=_("Enqueue selected tasks again (as they are)"), permissions=["change"])
def enqueue_tasks(
    modeladmin: ModelAdmin[Task], request: HttpRequest, queryset: QuerySet[Task]
) -> None:
    running = queryset.filter(status=Task.PROGRESS).count()
    queues = set(
        queryset.filter(status__in=Task.FINISHED).values_list("queue", flat=True).distinct()
    )
    count = lifecycle.enqueue_again(queryset)
    _notify(queues)
    modeladmin.message_user(
        request,
        ngettext("%d task was enqueued.", "%d tasks were enqueued.", count) % count,
        messages.SUCCESS,
    )
    if running:
        modeladmin.message_user(
            request,
            ngettext(
                "%d running task was skipped: cancel it first.",
                "%d running tasks were skipped: cancel them first.",
                running,
            )
            % running,
            messages.WARNING,
        )


# "requeue" is TaskAdmin.has_requeue_permission: a copy is a new task, so add as well as change.
@admin.action(description=_("Requeue a copy of selected tasks"), permissions=["requeue"])
def requeue_tasks(
    modeladmin: ModelAdmin[Task], request: HttpRequest, queryset: QuerySet[Task]
) -> None:
    unfinished = queryset.exclude(status__in=Task.FINISHED).count()
    requeued = lifecycle.requeue_copies(queryset, enqueued_by=request.user.get_username())
    count = len(requeued.copies)
    modeladmin.message_user(
        request,
        ngettext(
            "%d task was requeued as a new copy.", "%d tasks were requeued as new copies.", count
        )
        % count,
        messages.SUCCESS,
    )
    refusals = Counter((task.task, reason) for task, reason in requeued.refused)
    for (path, reason), refused in sorted(refusals.items()):
        modeladmin.message_user(
            request,
            ngettext(
                "%(count)d %(path)s task was not requeued: %(reason)s",
                "%(count)d %(path)s tasks were not requeued: %(reason)s",
                refused,
            )
            % {"count": refused, "path": path, "reason": reason},
            messages.ERROR,
        )
    if unfinished:
        modeladmin.message_user(
            request,
            ngettext(
                "%d queued or running task was skipped.",
                "%d queued or running tasks were skipped.",
                unfinished,
            )
            % unfinished,
            messages.WARNING,
        )


@admin.action(description=_("Cancel selected tasks"), permissions=["change"])
def cancel_tasks(
    modeladmin: ModelAdmin[Task], request: HttpRequest, queryset: QuerySet[Task]
) -> None:
    report_cancel(modeladmin, request, *lifecycle.cancel(queryset))


def report_cancel(
    modeladmin: ModelAdmin[Any], request: HttpRequest, cancelled: int, requested: int
) -> None:
    """Tell staff what ``lifecycle.cancel`` did: tasks cancelled, and running ones asked to stop."""
    modeladmin.message_user(
        request,
        ngettext(
            "%d task that had not started was cancelled.",
            "%d tasks that had not started were cancelled.",
            cancelled,
        )
        % cancelled,
        messages.SUCCESS,
    )
    if requested:
        modeladmin.message_user(
            request,
            ngettext(
                "Cancellation was requested for %d running task; its worker stops it shortly.",
                "Cancellation was requested for %d running tasks; their workers stop them shortly.",
                requested,
            )
            % requested,
            messages.SUCCESS,
        )


ACTIONS: dict[str, Callable[..., Any]] = {
    "enqueue_tasks": enqueue_tasks,
    "requeue_tasks": requeue_tasks,
    "cancel_tasks": cancel_tasks,
}
# The same actions, named for "apply to all matching" (the list's buttons and their confirmation).
ALL_MATCHING_LABELS = {
    "enqueue_tasks": _("Enqueue all matching tasks again"),
    "requeue_tasks": _("Requeue a copy of all matching tasks"),
    "cancel_tasks": _("Cancel all matching tasks"),
}


def capped(queryset: QuerySet[Task], cap: int | None = None) -> tuple[QuerySet[Task], int, bool]:
    """The first ``cap`` tasks of ``queryset`` (newest first), their number, and whether more match."""
    cap = APPLY_ALL_CAP if cap is None else cap
    ids = list(queryset.order_by("-created").values_list("pk", flat=True)[: cap + 1])
    more = len(ids) > cap
    ids = ids[:cap]
    return Task.objects.filter(pk__in=ids), len(ids), more
