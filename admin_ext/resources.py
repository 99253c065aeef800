"""CSV export of task history and CSV import as bulk enqueue (django-import-export)."""

from __future__ import annotations

import os
from typing import Any

from django.core.exceptions import ValidationError
from import_export import fields, resources, widgets

from admin_ext.forms import ImportedTaskForm
from django_simple_queue import callables, conf, enqueue
from django_simple_queue.models import Schedule, Task
from django_simple_queue.output import error_summary

# What makes a spreadsheet read a cell as a formula (OWASP "CSV injection"). import-export's own
# IMPORT_EXPORT_ESCAPE_FORMULAE_ON_EXPORT (4.4) only deletes a leading "=", which loses data and
# leaves "+", "-", "@", tab and CR, and turns every cell into text, numbers too.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def defuse(text: str) -> str:
    """``text`` as a cell a spreadsheet shows as text: a leading ``'`` where it would start a
    formula. A text already made of ``'`` and such a start gets one more, so ``restore`` is exact."""
    return "'" + text if text.lstrip("'").startswith(FORMULA_START) else text


def restore(text: str) -> str:
    """The value ``defuse`` was given: one leading ``'`` less, only where ``defuse`` added one."""
    return text[1:] if text.startswith("'") and defuse(text[1:]) == text else text


class Timestamp(widgets.Widget):
    """A datetime as ISO 8601, to the microsecond and with its time zone: alike in every column."""

    def render(self, value: Any, obj: Any = None, **kwargs: Any) -> str:
        return "" if value is None else value.isoformat()


class DefusedExport(resources.ModelResource):
    """An export whose text cells are defused (ESCAPE_FORMULAE); numeric columns stay numbers."""

    def export_field(self, field: fields.Field, instance: Any, **kwargs: Any) -> Any:
        value = super().export_field(field, instance, **kwargs)
        numeric = isinstance(field.widget, widgets.NumberWidget)
        if isinstance(value, str) and not numeric and conf.get("ESCAPE_FORMULAE"):
            return defuse(value)
        return value


class TaskResource(DefusedExport):
    """Task history for export: one row per task, arguments redacted, text cells defused."""

    status = fields.Field(attribute="status", column_name="status")
    args = fields.Field(attribute="args", column_name="args")
    created = fields.Field(attribute="created", column_name="created", widget=Timestamp())
    started = fields.Field(attribute="started_at", column_name="started", widget=Timestamp())
    finished = fields.Field(attribute="finished_at", column_name="finished", widget=Timestamp())
    duration = fields.Field(column_name="duration_seconds", widget=widgets.FloatWidget())
    worker = fields.Field(attribute="worker_id", column_name="worker")
    error = fields.Field(attribute="error", column_name="error_summary")

    class Meta:
        model = Task
        fields = (
            "id",
            "task",
            "queue",
            "priority",
            "status",
            "args",
            "attempts",
            "max_attempts",
            "timeout",
            "created",
            "started",
            "finished",
            "duration",
            "worker",
            "error",
        )
        export_order = fields

    def dehydrate_status(self, task: Task) -> str:
        return str(task.get_status_display())

    def dehydrate_args(self, task: Task) -> str:
        return task.redacted_args or ""

    def dehydrate_duration(self, task: Task) -> str:
        if task.started_at is None or task.finished_at is None:
            return ""
        return f"{(task.finished_at - task.started_at).total_seconds():.3f}"

    def dehydrate_error(self, task: Task) -> str:
        return error_summary(task.error)


class TaskImportResource(resources.ModelResource):
    """Bulk enqueue: rows of ``task`` and ``args`` (optionally queue, priority, max_attempts,
    timeout), each validated like the enqueue form; nothing is queued until the preview is
    confirmed. The columns are the export's, so an exported file imports back. A file's tasks are
    queued together, as one batch named after the file, once every row is valid."""

    class Meta:
        model = Task
        fields = ("task", "args", "queue", "priority", "max_attempts", "timeout")
        import_id_fields = ("task",)
        skip_diff = False
        use_bulk = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.username = ""
        self.pending: list[Task] = []

    def before_import(self, dataset: Any, **kwargs: Any) -> None:
        user = kwargs.get("user")
        self.username = user.get_username() if user is not None else ""
        self.pending = []

    def before_import_row(self, row: dict[str, Any], **kwargs: Any) -> None:
        # Undo what the export did to the cells (the ' before a formula start).
        if conf.get("ESCAPE_FORMULAE"):
            for column, value in row.items():
                if isinstance(value, str):
                    row[column] = restore(value)

    def get_instance(self, instance_loader: Any, row: Any) -> None:
        # Every row is a new task: an import never changes existing ones.
        return None

    def validate_instance(
        self,
        instance: Task,
        import_validation_errors: dict[str, Any] | None = None,
        validate_unique: bool = True,
    ) -> None:
        data = {
            "task": instance.task,
            "args": instance.args or "",
            "queue": instance.queue or "default",
            "priority": instance.priority or 0,
            "max_attempts": instance.max_attempts or "",
            "timeout": instance.timeout or "",
        }
        form = ImportedTaskForm(data=data)
        if not form.is_valid():
            raise ValidationError(
                {
                    field: [str(message) for message in messages]
                    for field, messages in form.errors.items()
                }
            )
        assert form.built is not None
        for name in ("args", "queue", "priority", "max_attempts", "timeout"):
            setattr(instance, name, getattr(form.built, name))
        instance.enqueued_by = self.username

    def do_instance_save(self, instance: Task, is_create: bool) -> None:
        # Checked (validate_instance), written with the others by after_import.
        self.pending.append(instance)

    def after_import(self, dataset: Any, result: Any, **kwargs: Any) -> None:
        """Queue the file's tasks as one batch named after it, unless a row is not valid. The
        preview's batch (and its NOTIFYs) is rolled back with its transaction."""
        if not self.pending or result.has_errors() or result.has_validation_errors():
            return
        name = os.path.basename(str(kwargs.get("file_name") or ""))
        enqueue.create_batch(self.pending, name=name[:255], enqueued_by=self.username)


class ScheduleResource(DefusedExport):
    """Schedules for export: arguments redacted, text cells defused."""

    args = fields.Field(attribute="args", column_name="args")
    next_run_at = fields.Field(
        attribute="next_run_at", column_name="next_run_at", widget=Timestamp()
    )
    last_run_at = fields.Field(
        attribute="last_run_at", column_name="last_run_at", widget=Timestamp()
    )

    class Meta:
        model = Schedule
        fields = (
            "name",
            "task",
            "args",
            "cron",
            "interval",
            "timezone",
            "enabled",
            "queue",
            "priority",
            "max_attempts",
            "timeout",
            "misfire",
            "next_run_at",
            "last_run_at",
            "last_error",
            "source",
        )
        export_order = fields

    def dehydrate_args(self, schedule: Schedule) -> str:
        return callables.redacted_text(schedule.args) or ""
