"""The failures page: failed tasks grouped by task path and cause (``Task.exception_type``).

One GROUP BY over the partial index on failed rows (count, first and last seen), then one query for
the latest error of each group shown. A group's buttons requeue a copy of it or delete it, through
a confirmation page and the permissions of the list's actions, ``APPLY_ALL_CAP`` tasks at a time.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import connections
from django.db.models import Count, F, Max, Min, QuerySet
from django.db.models.functions import Right
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from admin_ext import actions
from admin_ext.display import dotted
from django_simple_queue.models import Task
from django_simple_queue.output import error_summary

if TYPE_CHECKING:
    from admin_ext.admin import TaskAdmin

# The page shows this many groups, the most recent (or the largest) first.
GROUP_LIMIT = 100
# A traceback's last line is in its tail: only this many characters of an error are read.
ERROR_TAIL = 2_000
ORDERS = {"last": F("last_seen").desc(nulls_last=True), "count": F("count").desc()}


@dataclass
class Group:
    """Failed tasks of one task path and one cause."""

    task: str
    exception_type: str
    count: int
    first_seen: datetime | None
    last_seen: datetime | None
    message: str = ""

    @property
    def query(self) -> str:
        """The group as the task list's filter (and the confirmation page's)."""
        return urlencode(
            {
                "status__exact": str(Task.FAILED),
                "task": self.task,
                "exception_type": self.exception_type,
            }
        )

    @property
    def task_display(self) -> str:
        return dotted(self.task)

    @property
    def exception_display(self) -> str:
        return dotted(self.exception_type)


def failed_group(task: str, exception_type: str) -> QuerySet[Task]:
    return Task.objects.failed().filter(task=task, exception_type=exception_type)


def groups(limit: int = GROUP_LIMIT, order: str = "last") -> tuple[list[Group], bool]:
    """The first ``limit`` groups in ``order`` ("last" seen or "count"), and whether more exist."""
    rows = (
        Task.objects.failed()
        .values("task", "exception_type")
        .annotate(count=Count("*"), first_seen=Min("finished_at"), last_seen=Max("finished_at"))
        .order_by(ORDERS.get(order, ORDERS["last"]), "task", "exception_type")[: limit + 1]
    )
    found = [Group(**row) for row in rows]
    shown = found[:limit]
    add_latest_messages(shown)
    return shown, len(found) > limit


def add_latest_messages(groups: Sequence[Group]) -> None:
    """Set each group's message to the last line of its latest error: one query for them all
    (where the database allows a LIMIT in each part of a UNION)."""
    if not groups:
        return
    # Each part reads one row backwards through the index (task, exception_type, finished_at).
    parts = [
        failed_group(group.task, group.exception_type)
        .order_by("-finished_at")
        .annotate(tail=Right("error", ERROR_TAIL))
        .values_list("task", "exception_type", "tail")[:1]
        for group in groups
    ]
    if connections[parts[0].db].features.supports_slicing_ordering_in_compound:
        rows: Iterable[tuple[str, str, str | None]] = parts[0].union(*parts[1:], all=True)
    else:  # SQLite: one indexed look-up per group, in-process
        rows = itertools.chain.from_iterable(parts)
    latest = {(task, cause): tail for task, cause, tail in rows}
    for group in groups:
        group.message = error_summary(latest.get((group.task, group.exception_type)))


# Group actions: the list's action that does it, the permission check, the confirmation's label.


def delete_tasks(modeladmin: TaskAdmin, request: HttpRequest, queryset: QuerySet[Task]) -> None:
    """Delete the tasks (running ones are kept), logged as the admin's own delete is."""
    count = queryset.exclude(status=Task.PROGRESS).count()
    modeladmin.log_deletions(request, queryset.exclude(status=Task.PROGRESS))
    modeladmin.delete_queryset(request, queryset)
    modeladmin.message_user(
        request,
        ngettext("%d task was deleted.", "%d tasks were deleted.", count) % count,
        messages.SUCCESS,
    )


@dataclass(frozen=True)
class GroupAction:
    run: Callable[..., None]
    label: Any
    allowed: Callable[[TaskAdmin, HttpRequest], bool]


GROUP_ACTIONS = {
    "requeue": GroupAction(
        actions.requeue_tasks,
        _("Requeue a copy of every task of this group"),
        # As the list's action: get_actions() keeps the actions the user holds permissions for.
        lambda admin, request: "requeue_tasks" in admin.get_actions(request),
    ),
    "delete": GroupAction(
        delete_tasks,
        _("Delete every task of this group"),
        lambda admin, request: admin.has_delete_permission(request),
    ),
}


def _url(modeladmin: TaskAdmin, name: str, *args: str) -> str:
    return reverse(f"{modeladmin.admin_site.name}:django_simple_queue_task_{name}", args=args)


def page_view(modeladmin: TaskAdmin, request: HttpRequest) -> HttpResponse:
    """The failures page."""
    if not modeladmin.has_view_or_change_permission(request):
        raise PermissionDenied
    order = "count" if request.GET.get("o") == "count" else "last"
    shown, more = groups(order=order)
    allowed = [
        name for name, action in GROUP_ACTIONS.items() if action.allowed(modeladmin, request)
    ]
    context = {
        **modeladmin.admin_site.each_context(request),
        "opts": modeladmin.opts,
        "title": _("Failures by cause"),
        "groups": shown,
        "more": more,
        "limit": GROUP_LIMIT,
        "order": order,
        "changelist_url": _url(modeladmin, "changelist"),
        "group_actions": [
            (name, GROUP_ACTIONS[name].label, _url(modeladmin, "failures_apply", name))
            for name in allowed
        ],
    }
    return TemplateResponse(request, "admin/django_simple_queue/task/failures.html", context)


def apply_view(modeladmin: TaskAdmin, request: HttpRequest, action: str) -> HttpResponse:
    """Confirm, then requeue or delete one group (``?task=…&exception_type=…``), capped."""
    group_action = GROUP_ACTIONS.get(action)
    if group_action is None:
        raise Http404
    if not group_action.allowed(modeladmin, request):
        raise PermissionDenied
    task = request.GET.get("task")
    exception_type = request.GET.get("exception_type")
    if task is None or exception_type is None:
        raise Http404
    queryset, count, more = actions.capped(failed_group(task, exception_type))
    failures_url = _url(modeladmin, "failures")
    if request.method == "POST" and request.POST.get("confirm") == "yes":
        group_action.run(modeladmin, request, queryset)
        return HttpResponseRedirect(failures_url)
    context = {
        **modeladmin.admin_site.each_context(request),
        "opts": modeladmin.opts,
        "title": _("Are you sure?"),
        "action_label": group_action.label,
        "count": count,
        "more": more,
        "cap": actions.APPLY_ALL_CAP,
        "filters": [
            (_("Status"), _("Failed")),
            (_("Task"), dotted(task)),
            (_("Exception type"), exception_type),
        ],
        "changelist_url": _url(modeladmin, "changelist"),
        "failures_url": failures_url,
        "back_url": failures_url,
        "preview": list(queryset.order_by("-created")[:20]),
    }
    return TemplateResponse(
        request, "admin/django_simple_queue/task/apply_all_confirmation.html", context
    )
