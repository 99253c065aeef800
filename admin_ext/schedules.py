"""The staff admin for schedules: the list in words, run now, enable, disable, and a form that
checks the timing, the task and its arguments as the enqueue form does."""

from __future__ import annotations

from typing import Any

from django import forms
from django.apps import apps
from django.contrib import admin, messages
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.timesince import timeuntil
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from admin_ext.display import dotted, moment
from admin_ext.forms import edited_args, task_choices, task_descriptions
from admin_ext.widgets import JSONEditorWidget
from django_simple_queue import callables, db, scheduler, schedules
from django_simple_queue.exceptions import InvalidTaskArguments
from django_simple_queue.models import Schedule, Task

HAS_IMPORT_EXPORT = apps.is_installed("import_export")

if HAS_IMPORT_EXPORT:
    from import_export.admin import ExportMixin

    from admin_ext.resources import ScheduleResource

    class BaseAdmin(ExportMixin, admin.ModelAdmin):
        pass

else:  # pragma: no cover - exercised by a settings override in the tests
    BaseAdmin = admin.ModelAdmin  # type: ignore[misc, assignment]

FORM_FIELDS = (
    "name",
    "task",
    "args",
    "cron",
    "interval",
    "timezone",
    "misfire",
    "queue",
    "priority",
    "max_attempts",
    "timeout",
    "enabled",
)
# Which field an InvalidSchedule is about, by a word of its message.
TIMING_FIELDS = (
    ("either", "cron"),
    ("timezone", "timezone"),
    ("interval", "interval"),
    ("misfire", "misfire"),
)


class ScheduleForm(forms.ModelForm):
    """A schedule: the enqueue form's task select and argument editor, and its timing."""

    task = forms.ChoiceField(label=_("Task"))
    args = forms.CharField(label=_("Arguments"), required=False, widget=JSONEditorWidget())

    class Meta:
        model = Schedule
        fields = FORM_FIELDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.descriptions = task_descriptions()
        if "task" in self.fields:
            field = self.fields["task"]
            assert isinstance(field, forms.ChoiceField)
            field.choices = task_choices(self.descriptions)
            self.fields["args"].widget.attrs["data-descriptions-id"] = "dsq-task-descriptions"
        if self.instance.pk and "args" in self.fields:
            self.initial["args"] = callables.redacted_text(self.instance.args)

    def clean_args(self) -> dict[str, Any]:
        stored = self.instance.args if self.instance.pk else None
        return edited_args(self.cleaned_data.get("args"), stored)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        candidate = Schedule(
            **{
                name: data.get(name, getattr(self.instance, name))
                for name in FORM_FIELDS
                if name != "args"
            }
        )
        candidate.cron = (candidate.cron or "").strip()
        try:
            candidate.args = callables.dump_args(data.get("args", self.instance.kwargs))
            scheduler.check(candidate)
        except schedules.InvalidSchedule as exc:
            message = str(exc)
            field = next((f for word, f in TIMING_FIELDS if word in message.lower()), "cron")
            self.add_error(field if field in self.fields else None, message)
        except (InvalidTaskArguments, TypeError) as exc:
            self.add_error("args" if "args" in self.fields else None, str(exc))
        except scheduler.ENQUEUE_ERRORS as exc:
            self.add_error("task" if "task" in self.fields else None, str(exc))
        else:
            # Saved as the JSON text the worker reads, not the dict the field cleaned.
            data["cron"], data["args"] = candidate.cron, candidate.args
        return data


@admin.action(description=_("Run selected schedules now"), permissions=["run"])
def run_schedules_now(
    modeladmin: ScheduleAdmin, request: HttpRequest, queryset: QuerySet[Schedule]
) -> None:
    made, refused = scheduler.run_now(queryset)
    modeladmin.message_user(
        request,
        ngettext("%d task was enqueued.", "%d tasks were enqueued.", len(made)) % len(made),
        messages.SUCCESS,
    )
    for schedule, reason in refused:
        modeladmin.message_user(
            request,
            _("%(name)s was not run: %(reason)s") % {"name": schedule.name, "reason": reason},
            messages.ERROR,
        )


@admin.action(description=_("Enable selected schedules"), permissions=["change"])
def enable_schedules(
    modeladmin: ScheduleAdmin, request: HttpRequest, queryset: QuerySet[Schedule]
) -> None:
    count = scheduler.set_enabled(queryset, True)
    modeladmin.message_user(
        request,
        ngettext("%d schedule was enabled.", "%d schedules were enabled.", count) % count,
        messages.SUCCESS,
    )


@admin.action(description=_("Disable selected schedules"), permissions=["change"])
def disable_schedules(
    modeladmin: ScheduleAdmin, request: HttpRequest, queryset: QuerySet[Schedule]
) -> None:
    count = scheduler.set_enabled(queryset, False)
    modeladmin.message_user(
        request,
        ngettext("%d schedule was disabled.", "%d schedules were disabled.", count) % count,
        messages.SUCCESS,
    )


def last_tasks() -> Any:
    return Task.objects.filter(schedule=OuterRef("pk")).order_by("-scheduled_for")


class ScheduleAdmin(BaseAdmin):
    form = ScheduleForm
    list_display = ("name", "task_column", "when", "next_run", "last_run", "enabled")
    list_filter = ("enabled", "source", "queue")
    search_fields = ("name", "task")
    actions = [run_schedules_now, enable_schedules, disable_schedules]
    change_form_template = "admin/django_simple_queue/schedule/change_form.html"
    fieldsets = [
        (None, {"fields": ["name", "task", "args"]}),
        (
            _("When"),
            {"fields": ["cron", "interval", "timezone", "misfire", "upcoming", "enabled"]},
        ),
        (_("Its tasks"), {"fields": [("queue", "priority"), ("max_attempts", "timeout")]}),
        (
            _("Runs"),
            {"fields": ["next_run", "last_run", "last_error", "source"]},
        ),
    ]
    if HAS_IMPORT_EXPORT:
        resource_classes = [ScheduleResource]

    class Media:
        css = {"all": ("django_simple_queue/admin/admin.css",)}

    def has_export_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def has_run_permission(self, request: HttpRequest) -> bool:
        """Running a schedule enqueues a task: change the schedule, and add tasks."""
        return self.has_change_permission(request) and request.user.has_perm(
            f"{Task._meta.app_label}.add_task"
        )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Schedule]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                last_task_id=Subquery(last_tasks().values("id")[:1]),
                last_task_status=Subquery(last_tasks().values("status")[:1]),
            )
        )

    def get_readonly_fields(self, request: HttpRequest, obj: Schedule | None = None) -> list[str]:
        names = ["upcoming", "next_run", "last_run", "last_error", "source"]
        if obj is not None and obj.source == Schedule.SETTINGS:
            # Declared in code: edited there. Staff may still turn it off (or on).
            names += [name for name in FORM_FIELDS if name != "enabled"]
        return names

    def save_model(self, request: HttpRequest, obj: Schedule, form: Any, change: bool) -> None:
        timing_changed = "enabled" in form.changed_data or any(
            name in form.changed_data for name in ("cron", "interval", "timezone")
        )
        if not change or timing_changed or obj.next_run_at is None:
            scheduler.plan(obj)
        super().save_model(request, obj, form, change)

    def render_change_form(
        self, request: HttpRequest, context: dict[str, Any], *args: Any, **kwargs: Any
    ) -> Any:
        context["task_descriptions"] = task_descriptions()
        return super().render_change_form(request, context, *args, **kwargs)

    @admin.display(description=_("Task"), ordering="task")
    def task_column(self, obj: Schedule) -> str:
        return dotted(obj.task)

    @admin.display(description=_("When"))
    def when(self, obj: Schedule) -> str:
        words = schedules.describe(obj.timing)
        if obj.cron:
            return format_html('{} <code class="dsq-quiet">{}</code>', words, obj.cron)
        return words

    @admin.display(description=_("Next run"), ordering="next_run_at")
    def next_run(self, obj: Schedule) -> str:
        if not obj.enabled or obj.next_run_at is None:
            return "—"
        zone = obj.timing.zone()
        local = obj.next_run_at.astimezone(zone)
        now = db.now()
        relative = (
            _("in %(time)s") % {"time": timeuntil(obj.next_run_at, now)}
            if obj.next_run_at > now
            else _("due")
        )
        return format_html(
            '{} {} <span class="dsq-quiet">({})</span>',
            moment(local, zone=zone),
            local.tzname(),
            relative,
        )

    @admin.display(description=_("Last run"))
    def last_run(self, obj: Schedule) -> str:
        task_id = getattr(obj, "last_task_id", None)
        if task_id is None:  # never run, or its task was deleted since
            return moment(obj.last_run_at) if obj.last_run_at else "—"
        status = getattr(obj, "last_task_status", Task.QUEUED)
        label = dict(Task.STATUS_CHOICES).get(status, "")
        url = reverse("admin:django_simple_queue_task_change", args=[task_id])
        when = moment(obj.last_run_at) if obj.last_run_at else ""
        return format_html(
            '{} <a href="{}"><span class="dsq-badge dsq-status-{}">{}</span></a>',
            when,
            url,
            status,
            label,
        )

    @admin.display(description=_("Next five runs"))
    def upcoming(self, obj: Schedule) -> str:
        if obj.pk is None:
            return str(_("Shown once the schedule is saved."))
        try:
            runs = obj.timing.upcoming(timezone.now(), 5)
        except schedules.InvalidSchedule as exc:
            return str(exc)
        zone = obj.timing.zone()
        return format_html(
            '<ol class="dsq-upcoming">{}</ol>',
            format_html_join(
                "", "<li>{} {}</li>", ((moment(r, zone=zone), r.tzname()) for r in runs)
            ),
        )
