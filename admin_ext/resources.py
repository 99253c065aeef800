"""CSV export of task history and CSV import as bulk enqueue (django-import-export)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from import_export import fields, resources, widgets

from admin_ext.forms import EnqueueForm
from django_simple_queue import enqueue
from django_simple_queue.models import Task


def error_summary(error: str | None) -> str:
    """The last non-empty line of a traceback: the exception and its message."""
    lines = [line.strip() for line in (error or "").splitlines() if line.strip()]
    return lines[-1][:500] if lines else ""


class Timestamp(widgets.Widget):
    """A datetime as ISO 8601, to the microsecond and with its time zone: alike in every column."""

    def render(self, value: Any, obj: Any = None, **kwargs: Any) -> str:
        return "" if value is None else value.isoformat()


class TaskResource(resources.ModelResource):
    """Task history for export: one row per task, arguments redacted."""

    status = fields.Field(attribute="status", column_name="status")
    args = fields.Field(attribute="args", column_name="arguments")
    created = fields.Field(attribute="created", column_name="created", widget=Timestamp())
    started = fields.Field(attribute="started_at", column_name="started", widget=Timestamp())
    finished = fields.Field(attribute="finished_at", column_name="finished", widget=Timestamp())
    duration = fields.Field(column_name="duration_seconds")
    worker = fields.Field(attribute="worker_id", column_name="worker")
    error = fields.Field(attribute="error", column_name="error_summary")

    class Meta:
        model = Task
        fields = (
            "id",
            "task",
            "queue",
            "status",
            "args",
            "attempts",
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
    confirmed."""

    class Meta:
        model = Task
        fields = ("task", "args", "queue", "priority", "max_attempts", "timeout")
        import_id_fields = ("task",)
        skip_diff = False
        use_bulk = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.username = ""

    def before_import(self, dataset: Any, **kwargs: Any) -> None:
        user = kwargs.get("user")
        self.username = user.get_username() if user is not None else ""

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
        form = EnqueueForm(data=data)
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
        # The preview's inserts (and their NOTIFYs) are rolled back with its transaction.
        enqueue.insert(instance)
