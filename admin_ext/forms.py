"""The enqueue form (the admin's add page) and the form for editing a queued task."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from admin_ext.widgets import JSONEditorWidget
from django_simple_queue import callables, conf, enqueue
from django_simple_queue.exceptions import (
    InvalidTaskArguments,
    InvalidTaskPath,
    TaskNotAllowedError,
)
from django_simple_queue.models import Task

# Characters of a task's label in the select: a long docstring line would widen it past the form.
LABEL_LIMIT = 80

NOT_CONFIGURED = _(
    "No task can be enqueued here because DJANGO_SIMPLE_QUEUE_ALLOWED_TASKS is not set. "
    "Add the dotted paths of your task functions to settings.py, e.g. "
    'DJANGO_SIMPLE_QUEUE_ALLOWED_TASKS = {"myapp.tasks.send_email"}.'
)


def task_descriptions() -> dict[str, dict[str, Any]]:
    """Signature, docstring and defaults of every allowed task that can be imported."""
    allowed = conf.get_allowed_tasks()
    if not allowed:
        return {}
    described = {}
    for path in sorted(allowed):
        try:
            described[path] = callables.describe(path)
        except InvalidTaskPath:
            continue
    return described


def choice_label(info: dict[str, Any], limit: int = LABEL_LIMIT) -> str:
    """The task select's text: the function's name and its docstring's first line, cut short."""
    name = info["path"].rpartition(".")[2]
    first = info["doc"].splitlines()[0] if info["doc"] else ""
    label = f"{name} — {first}" if first else name
    return label if len(label) <= limit else label[: limit - 1].rstrip() + "…"


def task_choices(descriptions: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    """The task select's options, for the enqueue form and the schedule form."""
    return [("", "---------")] + [(path, choice_label(info)) for path, info in descriptions.items()]


def parse_args(text: str | None) -> dict[str, Any]:
    """The JSON object typed into an arguments field; ValidationError saying what is wrong."""
    text = (text or "").strip()
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise forms.ValidationError(
            _("Arguments are not valid JSON: %(error)s"), code="json", params={"error": exc}
        ) from exc
    if not isinstance(value, dict):
        raise forms.ValidationError(
            _(
                'Arguments must be a JSON object of keyword arguments such as {"a": 1}, not %(type)s.'
            ),
            code="not_object",
            params={"type": type(value).__name__},
        )
    return value


def restore_redacted(args: Any, stored: Any) -> Any:
    """``args`` with each REDACTED marker left at a redacted key put back to ``stored``'s value.

    The edit form shows the arguments through ``callables.redact``; this walks them the same way,
    so a secret nobody retyped is kept, and one typed anew replaces it.
    """
    if isinstance(args, dict):
        stored = stored if isinstance(stored, dict) else {}
        keys = conf.get_redact_keys()
        restored: dict[Any, Any] = {}
        for key, value in args.items():
            if value == conf.REDACTED and str(key).lower() in keys:
                if key not in stored:
                    raise forms.ValidationError(
                        _(
                            "'%(key)s' is %(marker)s, the mark of a hidden value, but the task has "
                            "no value there to keep: type the value."
                        ),
                        code="redacted",
                        params={"key": key, "marker": conf.REDACTED},
                    )
                restored[key] = stored[key]
            else:
                restored[key] = restore_redacted(value, stored.get(key))
        return restored
    if isinstance(args, list):
        stored = stored if isinstance(stored, list) else []
        return [
            restore_redacted(value, stored[i] if i < len(stored) else None)
            for i, value in enumerate(args)
        ]
    return args


def edited_args(text: str | None, stored_text: str | None) -> dict[str, Any]:
    """Arguments typed over a redacted view of ``stored_text``: each hidden value left as it was
    shown comes back from the stored ones."""
    try:
        stored = callables.load_args(stored_text)
    except InvalidTaskArguments:
        stored = {}
    return restore_redacted(parse_args(text), stored)


class TaskArgsMixin(forms.ModelForm):
    """Builds the task through ``enqueue.build_task``: allowed, importable, JSON, size, signature."""

    built: Task | None = None

    def check_task(self, path: str, kwargs: dict[str, Any]) -> Task | None:
        data = self.cleaned_data
        options: dict[str, Any] = {
            "queue": data.get("queue") or "default",
            "priority": data.get("priority") or 0,
            "run_after": data.get("run_after"),
            "max_attempts": data.get("max_attempts"),
            "timeout": data.get("timeout"),
        }
        try:
            return enqueue.build_task(path, kwargs, **options)
        except (TaskNotAllowedError, InvalidTaskPath) as exc:
            # The edit form has no task field: the error is then about the whole task.
            self.add_error("task" if "task" in self.fields else None, str(exc))
        except InvalidTaskArguments as exc:
            self.add_error("args", str(exc))
        except ValueError as exc:
            field = "timeout" if "timeout" in str(exc) else "max_attempts"
            self.add_error(field, str(exc))
        return None


class EnqueueForm(TaskArgsMixin):
    """Enqueue one allowed task with arguments checked against its signature."""

    task = forms.ChoiceField(label=_("Task"))
    args = forms.CharField(
        label=_("Arguments"),
        required=False,
        widget=JSONEditorWidget(),
        help_text=_(
            "A JSON object of keyword arguments, checked against the task's signature and type "
            "hints; pre-filled with the parameters' defaults."
        ),
    )
    queue = forms.CharField(label=_("Queue"), required=False, initial="default", max_length=64)
    priority = forms.IntegerField(
        label=_("Priority"), required=False, initial=0, help_text=_("Higher runs first.")
    )
    max_attempts = forms.IntegerField(
        label=_("Max attempts"),
        required=False,
        min_value=1,
        help_text=_("Empty uses DJANGO_SIMPLE_QUEUE_MAX_ATTEMPTS."),
    )
    timeout = forms.IntegerField(
        label=_("Timeout"),
        required=False,
        min_value=1,
        help_text=_("Seconds; empty uses DJANGO_SIMPLE_QUEUE_TASK_TIMEOUT."),
    )

    class Meta:
        model = Task
        fields = ("task", *Task.EDITABLE_FIELDS)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.descriptions = task_descriptions()
        field = self.fields["task"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = task_choices(self.descriptions)
        field.help_text = "" if self.descriptions else NOT_CONFIGURED
        self.fields["args"].widget.attrs["data-descriptions-id"] = "dsq-task-descriptions"

    def clean_args(self) -> dict[str, Any]:
        return parse_args(self.cleaned_data.get("args"))

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if not self.descriptions:
            raise forms.ValidationError(NOT_CONFIGURED, code="not_configured")
        path, kwargs = data.get("task"), data.get("args")
        if path and kwargs is not None and not self.errors:
            self.built = self.check_task(path, kwargs)
        return data

    def _post_clean(self) -> None:
        # The model instance is the one build_task made; Task.clean() would re-import it.
        if self.built is not None:
            self.instance = self.built


class ImportedTaskForm(EnqueueForm):
    """A row of a CSV import: the enqueue form, refusing the marks an export left for hidden
    values (a task would otherwise run with ``•••`` as its password)."""

    def clean_args(self) -> dict[str, Any]:
        return restore_redacted(parse_args(self.cleaned_data.get("args")), {})


class QueuedTaskForm(TaskArgsMixin):
    """Edit a queued task's arguments and scheduling, with the enqueue form's checks."""

    args = forms.CharField(label=_("Arguments"), required=False, widget=JSONEditorWidget())

    class Meta:
        model = Task
        fields = Task.EDITABLE_FIELDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The raw arguments would put REDACT_KEYS' values in the page; clean_args() restores them.
        self.initial["args"] = self.instance.redacted_args

    def clean_args(self) -> dict[str, Any]:
        return edited_args(self.cleaned_data.get("args"), self.instance.args)

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        kwargs = data.get("args")
        if kwargs is not None and not self.errors:
            built = self.check_task(self.instance.task, kwargs)
            if built is not None:
                self.built = built
        return data

    def _post_clean(self) -> None:
        if self.built is not None:
            for name in Task.EDITABLE_FIELDS:
                setattr(self.instance, name, getattr(self.built, name))

    def changes(self) -> dict[str, Any]:
        assert self.built is not None
        return {name: getattr(self.built, name) for name in Task.EDITABLE_FIELDS}
