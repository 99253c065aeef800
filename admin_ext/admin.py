"""The staff admin for django-simple-queue's Task model."""

from __future__ import annotations

import contextlib
import json
import uuid
from typing import Any

from django.apps import apps
from django.contrib import admin, messages
from django.contrib.admin.options import IS_POPUP_VAR
from django.contrib.admin.templatetags.admin_urls import add_preserved_filters
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from admin_ext import actions, dashboard, failures, filters, hierarchy
from admin_ext.batches import BatchAdmin
from admin_ext.display import (
    badge,
    dotted,
    enqueued_message,
    human_duration,
    moment,
    pre,
    progress_bar,
    short_moment,
    status_url,
    timeline,
)
from admin_ext.filters import (
    BatchFilter,
    ExceptionTypeFilter,
    QueueFilter,
    TaskPathFilter,
    UniqueKeyFilter,
    WaitedOnByFilter,
    WaitsForFilter,
)
from admin_ext.forms import EnqueueForm, QueuedTaskForm, task_descriptions
from admin_ext.schedules import ScheduleAdmin
from admin_ext.task_csv import TaskCsv
from admin_ext.task_workflow import TaskWorkflowFields
from admin_ext.workers import WorkerAdmin
from django_simple_queue import enqueue, lifecycle, queues
from django_simple_queue.models import Batch, Schedule, Task, Worker

HAS_IMPORT_EXPORT = apps.is_installed("import_export")

if HAS_IMPORT_EXPORT:
    from import_export.admin import ImportExportActionModelAdmin as BaseAdmin

    from admin_ext.resources import TaskResource
else:  # pragma: no cover - exercised by a settings override in the tests
    BaseAdmin = admin.ModelAdmin

ADD_FIELDS = ["task", *Task.EDITABLE_FIELDS]
# A task not yet claimed can be edited (lifecycle.edit_queued) and cancelled at once.
NOT_CLAIMED = (Task.QUEUED, Task.WAITING)
DETAIL_FIELDSETS: list[tuple[Any, dict[str, Any]]] = [
    (
        None,
        {
            "fields": [
                "task",
                "status_badge",
                "progress_display",
                "status_page_link",
                "requeued_from",
                "schedule_link",
                "enqueued_by",
                ("created", "modified"),
            ]
        },
    ),
    (
        _("Scheduling"),
        {
            "fields": [
                ("queue", "priority"),
                "run_after",
                ("attempts", "max_attempts"),
                "timeout",
                "unique_key",
                ("concurrency_key", "concurrency_limit"),
            ]
        },
    ),
    (
        _("Execution"),
        {
            "fields": [
                ("started_at", "finished_at"),
                "duration_display",
                "worker_id",
                "heartbeat_at",
                "cancel_display",
            ]
        },
    ),
    (_("Arguments"), {"fields": ["args_display"]}),
    (_("Result"), {"fields": ["output_display", "log_display", "error_display"]}),
    (_("Attempts"), {"fields": ["attempts_timeline"]}),
]


class TaskAdmin(TaskWorkflowFields, TaskCsv, BaseAdmin):
    list_display = (
        "short_id",
        "task_column",
        "queue",
        "status_column",
        "attempts",
        "created_column",
        "started_column",
        "duration_column",
    )
    list_display_links = ("short_id",)
    list_filter = (
        "status",
        QueueFilter,
        TaskPathFilter,
        ExceptionTypeFilter,
        UniqueKeyFilter,
        # Shown only when a link uses them: a batch's tasks, a task's dependants or dependencies.
        BatchFilter,
        WaitsForFilter,
        WaitedOnByFilter,
    )
    date_hierarchy = "created"
    search_fields = ("task", "output", "error")  # and the id: get_search_results()
    search_help_text = _("Search by exact id, task path, output or error.")
    ordering = ("-created",)
    list_per_page = 50
    # A table of millions: no COUNT(*) of the whole table, no per-filter counts (facets).
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = dashboard.EstimatedCountPaginator
    actions = [actions.enqueue_tasks, actions.requeue_tasks, actions.cancel_tasks]
    change_list_template = "admin/django_simple_queue/task/change_list.html"
    change_form_template = "admin/django_simple_queue/task/change_form.html"
    show_change_form_export = False
    if HAS_IMPORT_EXPORT:
        resource_classes = [TaskResource]
        # Export of the filtered list (button) as well as of selected rows (action).
        import_export_change_list_template = (
            "admin/django_simple_queue/task/change_list_import_export.html"
        )
        # Each invalid row's errors in the table, and why nothing was queued.
        import_template_name = "admin/django_simple_queue/task/import.html"

    class Media:
        css = {"all": ("django_simple_queue/admin/admin.css",)}

    # Forms and fields.
    def get_form(
        self, request: HttpRequest, obj: Task | None = None, change: bool = False, **kwargs: Any
    ) -> type[ModelForm[Task]]:
        if obj is None:
            kwargs["form"] = EnqueueForm
        elif self._editable(request, obj):
            kwargs["form"] = QueuedTaskForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fieldsets(
        self, request: HttpRequest, obj: Task | None = None
    ) -> list[tuple[Any, dict[str, Any]]]:
        if obj is None:
            return [(None, {"fields": ADD_FIELDS})]
        fieldsets = [
            (name, {**options, "fields": list(options["fields"])})
            for name, options in DETAIL_FIELDSETS
        ]
        if self._editable(request, obj):
            fieldsets[3] = (_("Arguments"), {"fields": ["args"]})
        workflow = self.workflow_fields(obj)
        if workflow:
            fieldsets.insert(1, (_("Workflow"), {"fields": workflow}))
        return fieldsets

    def _editable(self, request: HttpRequest, obj: Task) -> bool:
        return obj.status in NOT_CLAIMED and self.has_change_permission(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: Task | None = None) -> list[str]:
        if obj is None:
            return []
        names = [field.name for field in Task._meta.fields if field.name != "id"]
        names += [
            "status_badge",
            "progress_display",
            "status_page_link",
            "duration_display",
            "args_display",
            "output_display",
            "log_display",
            "error_display",
            "attempts_timeline",
            "cancel_display",
            "schedule_link",
            *TaskWorkflowFields.FIELDS,
        ]
        if self._editable(request, obj):
            names = [name for name in names if name not in Task.EDITABLE_FIELDS]
        return names

    def save_model(self, request: HttpRequest, obj: Task, form: Any, change: bool) -> None:
        if not change:
            # The form's task came from enqueue.build_task: checked, not yet written.
            obj.enqueued_by = request.user.get_username()
            enqueue.insert(obj)
            return
        edited = isinstance(form, QueuedTaskForm) and form.built is not None
        if edited and not lifecycle.edit_queued(obj, **form.changes()):
            self.message_user(
                request,
                _(
                    "The task was claimed by a worker before your change "
                    "was saved; nothing was changed."
                ),
                messages.ERROR,
            )

    def has_requeue_permission(self, request: HttpRequest) -> bool:
        """Add and change: a copy is a new task. (An action's list of permissions needs only one.)"""
        return self.has_add_permission(request) and self.has_change_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Task | None = None) -> bool:
        # A running task is deleted only after it stops: its worker still writes to the row.
        if obj is not None and obj.status == Task.PROGRESS:
            return False
        return super().has_delete_permission(request, obj)

    # A worker may claim a queued task between the confirmation page and the delete: keep it then.
    def delete_model(self, request: HttpRequest, obj: Task) -> None:
        self.delete_queryset(request, Task.objects.filter(pk=obj.pk))

    # And what waits for a queued task ends as if it was cancelled (lifecycle.delete).
    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Task]) -> None:
        lifecycle.delete(queryset)

    # Columns.
    @admin.display(description=_("ID"), ordering="id")
    def short_id(self, obj: Task) -> str:
        return str(obj.id)[:8]

    @admin.display(description=_("Task"), ordering="task")
    def task_column(self, obj: Task) -> str:
        return dotted(obj.task)

    @admin.display(description=_("Schedule"))
    def schedule_link(self, obj: Task) -> str:
        if obj.schedule_id is None:
            return "—"
        url = reverse(
            f"{self.admin_site.name}:django_simple_queue_schedule_change", args=[obj.schedule_id]
        )
        return format_html(
            '<a href="{}">{}</a> · {} {}',
            url,
            obj.schedule,
            _("the run of"),
            moment(obj.scheduled_for),
        )

    @admin.display(description=_("Cancel requested"))
    def cancel_display(self, obj: Task) -> str:
        if not obj.cancel_requested:
            return str(_("No"))
        if obj.status == Task.PROGRESS:
            return str(_("Yes: its worker stops it within a heartbeat"))
        return str(_("Yes"))

    @admin.display(description=_("Status"), ordering="status")
    def status_badge(self, obj: Task) -> str:
        return badge(obj)

    @admin.display(description=_("Status"), ordering="status")
    def status_column(self, obj: Task) -> str:
        if obj.status != Task.PROGRESS or obj.progress is None:
            return badge(obj)
        return format_html(
            '{}<div class="dsq-progress-line">{}</div>', badge(obj), progress_bar(obj)
        )

    @admin.display(description=_("Created"), ordering="created")
    def created_column(self, obj: Task) -> str:
        return short_moment(obj.created, timezone.now())

    @admin.display(description=_("Started"), ordering="started_at")
    def started_column(self, obj: Task) -> str:
        return short_moment(obj.started_at, timezone.now())

    @admin.display(description=_("Progress"))
    def progress_display(self, obj: Task) -> str:
        if obj.progress is None:
            return "—"
        return format_html("{} {}", progress_bar(obj), obj.progress_message)

    @admin.display(description=_("Duration"))
    def duration_column(self, obj: Task) -> str:
        return human_duration(obj.duration)

    @admin.display(description=_("Duration"))
    def duration_display(self, obj: Task) -> str:
        return human_duration(obj.duration)

    @admin.display(description=_("Public status page"))
    def status_page_link(self, obj: Task) -> str:
        url = status_url(obj)
        if url is None:
            return str(
                _("(not available: include django_simple_queue.urls in the project's URLconf)")
            )
        return format_html('<a href="{}" target="_blank" rel="noopener">{}</a>', url, _("Open"))

    @admin.display(description=_("Arguments"))
    def args_display(self, obj: Task) -> str:
        text = obj.redacted_args
        with contextlib.suppress(ValueError):
            text = json.dumps(json.loads(text or "{}"), indent=2, ensure_ascii=False)
        return pre(text)

    @admin.display(description=_("Output"))
    def output_display(self, obj: Task) -> str:
        return pre(obj.output)

    @admin.display(description=_("Log"))
    def log_display(self, obj: Task) -> str:
        return pre(obj.log)

    @admin.display(description=_("Error"))
    def error_display(self, obj: Task) -> str:
        return pre(obj.error)

    @admin.display(description=_("Timeline"))
    def attempts_timeline(self, obj: Task) -> str:
        return timeline(obj)

    # Pages.
    def get_urls(self) -> list[URLPattern]:
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        wrap = self.admin_site.admin_view
        custom = [
            path("apply/<str:action>/", wrap(self.apply_all_view), name=f"{prefix}_apply_all"),
            path("queue-control/", wrap(self.queue_control_view), name=f"{prefix}_queue_control"),
            path("failures/", wrap(self.failures_view), name=f"{prefix}_failures"),
            path(
                "failures/<str:action>/",
                wrap(self.failures_apply_view),
                name=f"{prefix}_failures_apply",
            ),
            path("<path:object_id>/requeue/", wrap(self.requeue_view), name=f"{prefix}_requeue"),
            path("<path:object_id>/cancel/", wrap(self.cancel_view), name=f"{prefix}_cancel"),
        ]
        return custom + super().get_urls()

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        context = getattr(response, "context_data", None)
        if context and "cl" in context:
            # Only for a page being rendered: an action's POST redirects and needs none of it.
            available = self.get_actions(request)  # empty in a popup and for view-only staff
            query = request.GET.urlencode()
            context["dashboard"] = dashboard.context(site=self.admin_site.name)
            if self.has_change_permission(request) and not getattr(request, "is_popup", False):
                context["dashboard"]["queue_control_url"] = reverse(
                    f"{self.admin_site.name}:django_simple_queue_task_queue_control"
                )
            context["apply_all"] = [
                (self._apply_url(name, query), actions.ALL_MATCHING_LABELS[name])
                for name in actions.ACTIONS
                if name in available
            ]
            context["dsq_date_hierarchy"] = hierarchy.date_hierarchy(context["cl"])
        return response

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Task], search_term: str
    ) -> tuple[QuerySet[Task], bool]:
        """A task id finds that task through the primary key; other text searches the fields."""
        try:
            task_id = uuid.UUID(search_term.strip())
        except ValueError:
            return super().get_search_results(request, queryset, search_term)
        return queryset.filter(pk=task_id), False

    def _apply_url(self, action: str, query: str) -> str:
        url = reverse(f"{self.admin_site.name}:django_simple_queue_task_apply_all", args=[action])
        return f"{url}?{query}" if query else url

    def get_actions(self, request: HttpRequest, action_location: Any = None) -> dict[str, Any]:
        """The change list's actions. Django 6.1 also asks for the change form's: there are none,
        the task page has its own buttons."""
        if getattr(action_location, "name", None) == "CHANGE_FORM":
            return {}
        # import-export's get_actions() takes no location; it adds its export action.
        return super().get_actions(request)

    def _check_action(self, request: HttpRequest, action: str) -> None:
        """PermissionDenied unless ``action`` is one of ours and ``request.user`` may run it."""
        # get_actions() keeps only the actions whose ``allowed_permissions`` the user holds.
        if action not in actions.ACTIONS or action not in self.get_actions(request):
            raise PermissionDenied

    def apply_all_view(self, request: HttpRequest, action: str) -> HttpResponse:
        """Confirm, then apply an action to every task matching the list's filters (capped)."""
        self._check_action(request, action)
        changelist = self.get_changelist_instance(request)
        queryset, count, more = actions.capped(changelist.get_queryset(request))
        changelist_url = reverse(f"{self.admin_site.name}:django_simple_queue_task_changelist")
        if request.GET:
            changelist_url += "?" + request.GET.urlencode()
        func = actions.ACTIONS[action]
        if request.method == "POST" and request.POST.get("confirm") == "yes":
            func(self, request, queryset)
            return HttpResponseRedirect(changelist_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Are you sure?"),
            "action_label": actions.ALL_MATCHING_LABELS[action],
            "count": count,
            "more": more,
            "cap": actions.APPLY_ALL_CAP,
            "filters": filters.describe(changelist),
            "changelist_url": changelist_url,
            "preview": list(queryset.order_by("-created")[:20]),
        }
        return TemplateResponse(
            request, "admin/django_simple_queue/task/apply_all_confirmation.html", context
        )

    def failures_view(self, request: HttpRequest) -> HttpResponse:
        return failures.page_view(self, request)

    def failures_apply_view(self, request: HttpRequest, action: str) -> HttpResponse:
        return failures.apply_view(self, request, action)

    def _single(self, request: HttpRequest, object_id: str, action: str) -> HttpResponse:
        self._check_action(request, action)
        obj = get_object_or_404(self.get_queryset(request), pk=object_id)
        if not self.has_change_permission(request, obj):
            raise PermissionDenied
        actions.ACTIONS[action](self, request, Task.objects.filter(pk=obj.pk))
        if action == "requeue_tasks":
            copy = obj.requeues.order_by("-created").first()
            if copy is not None:
                return HttpResponseRedirect(
                    reverse(
                        f"{self.admin_site.name}:django_simple_queue_task_change", args=[copy.pk]
                    )
                )
        return HttpResponseRedirect(
            reverse(f"{self.admin_site.name}:django_simple_queue_task_change", args=[obj.pk])
        )

    def queue_control_view(self, request: HttpRequest) -> HttpResponse:
        """Pause or resume a queue from the dashboard (change permission, POST)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_change_permission(request):
            raise PermissionDenied
        name, action = request.POST.get("queue", ""), request.POST.get("action")
        if not name or action not in ("pause", "resume"):
            return HttpResponseBadRequest("Name a queue and pause or resume.")
        if action == "pause":
            done = queues.pause(name)
            text = (
                _("Queue %s paused: workers take no new task from it.")
                if done
                else _("Queue %s was already paused.")
            )
        else:
            done = queues.resume(name)
            text = _("Queue %s resumed.") if done else _("Queue %s was not paused.")
        self.message_user(request, text % name, messages.SUCCESS if done else messages.INFO)
        return HttpResponseRedirect(
            reverse(f"{self.admin_site.name}:django_simple_queue_task_changelist")
        )

    def requeue_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return require_POST(self._single)(request, object_id, "requeue_tasks")

    def cancel_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return require_POST(self._single)(request, object_id, "cancel_tasks")

    def response_add(
        self, request: HttpRequest, obj: Task, post_url_continue: str | None = None
    ) -> HttpResponse:
        """Say that the task was enqueued, with links to its admin page and its status page."""
        if IS_POPUP_VAR in request.POST:
            return super().response_add(request, obj, post_url_continue)
        self.message_user(request, enqueued_message(obj, self.admin_site.name), messages.SUCCESS)
        if "_addanother" in request.POST:
            context = {"preserved_filters": self.get_preserved_filters(request), "opts": self.opts}
            return HttpResponseRedirect(add_preserved_filters(context, request.path))
        return self.response_post_save_add(request, obj)

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra_context = extra_context or {}
        extra_context["task_descriptions"] = task_descriptions()
        return super().add_view(request, form_url, extra_context)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        extra_context = extra_context or {}
        obj = self.get_object(request, object_id)
        if obj is not None:
            extra_context["dsq_task"] = obj
            extra_context["can_act"] = self.has_change_permission(request, obj)
            extra_context["can_cancel"] = obj.status in Task.UNFINISHED and not obj.cancel_requested
            extra_context["can_requeue"] = (
                obj.status in Task.FINISHED and self.has_requeue_permission(request)
            )
            extra_context["dsq_status_url"] = status_url(obj)
            if not self._editable(request, obj):
                # Nothing on the page can change: no save buttons (Delete stays where allowed).
                extra_context["show_save"] = False
                extra_context["show_save_and_continue"] = False
                extra_context["show_save_and_add_another"] = False
            if obj.status in NOT_CLAIMED:
                describe = task_descriptions()
                extra_context["task_descriptions"] = {
                    k: v for k, v in describe.items() if k == obj.task
                }
        return super().change_view(request, object_id, form_url, extra_context)


def register(site: admin.AdminSite = admin.site) -> None:
    """Register the Task, Schedule and Worker admins on ``site`` unless the project has its own."""
    if not site.is_registered(Task):
        site.register(Task, TaskAdmin)
    if not site.is_registered(Schedule):
        site.register(Schedule, ScheduleAdmin)
    if not site.is_registered(Worker):
        site.register(Worker, WorkerAdmin)
    if not site.is_registered(Batch):
        site.register(Batch, BatchAdmin)


__all__ = ["BatchAdmin", "ScheduleAdmin", "TaskAdmin", "register"]
