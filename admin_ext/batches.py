"""The staff admin for batches: read-only pages of tasks enqueued together (``create_batch``, a
CSV import), their progress and counts by status, and two actions on their tasks."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from admin_ext.actions import report_cancel
from admin_ext.display import STATUS_LABELS, STATUS_ORDER, bar, dotted, short_moment, status_badge
from django_simple_queue import lifecycle, notify, workflows
from django_simple_queue.models import Batch, Task

TASK_PERMISSION = f"{Task._meta.app_label}.%s_{Task._meta.model_name}"
# The attribute of a listed batch that holds its counts by status.
COUNTS = "dsq_counts"


class BatchChangeList(ChangeList):
    """The batch list, whose rows carry their counts (COUNTS), fetched for the page at once."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        counts = workflows.counts_by_batch(batch.pk for batch in self.result_list)
        for batch in self.result_list:
            setattr(batch, COUNTS, counts[batch.pk])


class StateFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("open", _("Open")), ("finished", _("Finished"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Batch]) -> QuerySet[Batch]:
        if self.value() in ("open", "finished"):
            return queryset.filter(finished_at__isnull=self.value() == "open")
        return queryset


def batch_tasks(batches: QuerySet[Batch]) -> QuerySet[Task]:
    """The tasks of ``batches`` and their callbacks (which are not members)."""
    callbacks = batches.exclude(callback=None).values("callback")
    return Task.objects.filter(Q(batch__in=batches.values("pk")) | Q(pk__in=callbacks))


# "task_change" is BatchAdmin.has_task_change_permission: these change tasks, not batches.
@admin.action(description=_("Cancel selected batches"), permissions=["task_change"])
def cancel_batches(modeladmin: BatchAdmin, request: HttpRequest, queryset: QuerySet[Batch]) -> None:
    report_cancel(modeladmin, request, *lifecycle.cancel(batch_tasks(queryset)))


@admin.action(
    description=_("Requeue the failed tasks of selected batches"), permissions=["task_change"]
)
def requeue_failed(modeladmin: BatchAdmin, request: HttpRequest, queryset: QuerySet[Batch]) -> None:
    failed = Task.objects.filter(batch__in=queryset.values("pk"), status=Task.FAILED)
    queues = set(failed.values_list("queue", flat=True).distinct())
    count = failed.count()
    stopped = lifecycle.enqueue_again(failed) - count
    for queue in queues:
        notify.task_enqueued(queue)
    modeladmin.message_user(
        request,
        ngettext(
            "%d failed task was enqueued again.", "%d failed tasks were enqueued again.", count
        )
        % count,
        messages.SUCCESS,
    )
    if stopped > 0:
        modeladmin.message_user(
            request,
            ngettext(
                "%d task they had stopped waits for them again.",
                "%d tasks they had stopped wait for them again.",
                stopped,
            )
            % stopped,
            messages.SUCCESS,
        )


BUTTONS = {"cancel": cancel_batches, "requeue-failed": requeue_failed}


class BatchAdmin(admin.ModelAdmin):
    list_display = (
        "batch_name",
        "progress",
        "counts",
        "created_column",
        "finished_column",
        "callback_link",
    )
    list_display_links = ("batch_name",)
    list_filter = (StateFilter,)
    search_fields = ("name", "enqueued_by")
    search_help_text = _("Search by name or who enqueued it.")
    ordering = ("-created",)
    list_select_related = ("callback",)
    list_per_page = 50
    actions = [cancel_batches, requeue_failed]
    fields = (
        "name",
        "id",
        "enqueued_by",
        "created",
        "finished_at",
        "progress",
        "counts",
        "callback_link",
        "tasks_link",
    )
    change_form_template = "admin/django_simple_queue/batch/change_form.html"

    class Media:
        css = {"all": ("django_simple_queue/admin/admin.css",)}

    # Read-only: batches are made by code or a CSV import. Their tasks are changed through the
    # task permissions; whoever may see tasks may see their batches.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Batch | None = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Batch | None = None) -> bool:
        user = request.user
        return super().has_view_permission(request, obj) or any(
            user.has_perm(TASK_PERMISSION % action) for action in ("view", "change")
        )

    def has_module_permission(self, request: HttpRequest) -> bool:
        return super().has_module_permission(request) or self.has_view_permission(request)

    def has_task_change_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(TASK_PERMISSION % "change")

    def has_delete_permission(self, request: HttpRequest, obj: Batch | None = None) -> bool:
        # An open batch's callback waits for it: deleting it would leave the callback waiting.
        if obj is not None and not obj.is_finished:
            return False
        return super().has_delete_permission(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: Batch | None = None) -> list[str]:
        return list(self.fields or ())

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return BatchChangeList

    def get_actions(self, request: HttpRequest, action_location: Any = None) -> dict[str, Any]:
        """The change list's actions, without ``delete_selected``. Django 6.1 also asks for the
        change form's: there are none, the batch page has its own buttons."""
        if getattr(action_location, "name", None) == "CHANGE_FORM":
            return {}
        actions = super().get_actions(request)
        # Its confirmation would count open batches that are then kept: delete from a page.
        actions.pop("delete_selected", None)
        return actions

    # Columns and fields.
    def _counts(self, obj: Batch) -> dict[int, int]:
        counts = getattr(obj, COUNTS, None)
        if counts is None:  # the batch page: one batch, counted on its own
            counts = workflows.counts(obj)
            setattr(obj, COUNTS, counts)
        return counts

    def _tasks_url(self, obj: Batch, **params: Any) -> str:
        url = reverse(f"{self.admin_site.name}:django_simple_queue_task_changelist")
        return f"{url}?{urlencode({'batch': str(obj.pk), **params})}"

    @admin.display(description=_("Batch"), ordering="name")
    def batch_name(self, obj: Batch) -> str:
        return str(obj)

    @admin.display(description=_("Progress"))
    def progress(self, obj: Batch) -> str:
        counts = self._counts(obj)
        total = sum(counts.values())
        if not total:
            return str(_("No tasks"))
        finished = sum(counts.get(status, 0) for status in Task.FINISHED)
        text = _("%(finished)d of %(total)d") % {"finished": finished, "total": total}
        return bar(finished / total, _("finished"), text)

    @admin.display(description=_("Tasks by status"))
    def counts(self, obj: Batch) -> str:
        counts = self._counts(obj)
        links = [
            (
                self._tasks_url(obj, status__exact=status),
                status_badge(status, f"{STATUS_LABELS[status]} {n}"),
            )
            for status in STATUS_ORDER
            if (n := counts.get(status, 0))
        ]
        if not links:
            return "—"
        return format_html(
            '<span class="dsq-counts">{}</span>',
            format_html_join(" ", '<a href="{}">{}</a>', links),
        )

    @admin.display(description=_("Created"), ordering="created")
    def created_column(self, obj: Batch) -> str:
        return short_moment(obj.created, timezone.now())

    @admin.display(description=_("Finished"), ordering="finished_at")
    def finished_column(self, obj: Batch) -> str:
        return short_moment(obj.finished_at, timezone.now())

    @admin.display(description=_("On complete"))
    def callback_link(self, obj: Batch) -> str:
        callback = obj.callback
        if callback is None:
            return "—"
        url = reverse(f"{self.admin_site.name}:django_simple_queue_task_change", args=[callback.pk])
        return format_html(
            '<a href="{}">{}</a> {}', url, dotted(callback.task), status_badge(callback.status)
        )

    @admin.display(description=_("Tasks"))
    def tasks_link(self, obj: Batch) -> str:
        total = sum(self._counts(obj).values())
        text = ngettext("Its %d task", "All its %d tasks", total) % total
        return format_html('<a href="{}">{}</a>', self._tasks_url(obj), text)

    # The batch page's buttons.
    def get_urls(self) -> list[URLPattern]:
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        wrap = self.admin_site.admin_view
        custom = [
            path(
                f"<path:object_id>/{name}/",
                wrap(require_POST(self._button)),
                {"button": name},
                name=f"{prefix}_{name.replace('-', '_')}",
            )
            for name in BUTTONS
        ]
        return custom + super().get_urls()

    def _button(self, request: HttpRequest, object_id: str, button: str) -> HttpResponse:
        if not self.has_task_change_permission(request):
            raise PermissionDenied
        obj = get_object_or_404(self.get_queryset(request), pk=object_id)
        BUTTONS[button](self, request, Batch.objects.filter(pk=obj.pk))
        return HttpResponseRedirect(
            reverse(f"{self.admin_site.name}:django_simple_queue_batch_change", args=[obj.pk])
        )

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        extra_context = extra_context or {}
        obj = self.get_object(request, object_id)
        if obj is not None and self.has_task_change_permission(request):
            counts = self._counts(obj)
            extra_context["dsq_batch"] = obj
            extra_context["can_cancel"] = any(counts.get(s) for s in Task.UNFINISHED) or (
                obj.callback is not None and obj.callback.status in Task.UNFINISHED
            )
            extra_context["can_requeue_failed"] = bool(counts.get(Task.FAILED))
        return super().change_view(request, object_id, form_url, extra_context)
