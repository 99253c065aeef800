"""The public status page of one task: ``/django_simple_queue/task?task_id=<uuid>[&type=json]``."""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import render
from django.utils.module_loading import import_string
from django.views.decorators.http import require_safe

from django_simple_queue import conf
from django_simple_queue.models import Task
from django_simple_queue.output import error_summary

REFRESH_SECONDS = 2


def is_staff(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    return bool(user and user.is_active and user.is_staff)


def can_view(request: HttpRequest, task: Task) -> bool:
    """Apply DJANGO_SIMPLE_QUEUE_STATUS_VIEW: public, authenticated, staff, or a callable's say."""
    rule = conf.get("STATUS_VIEW")
    if rule == "public":
        return True
    user = getattr(request, "user", None)
    if rule == "authenticated":
        return bool(user and user.is_authenticated)
    if rule == "staff":
        return is_staff(request)
    check = import_string(rule) if isinstance(rule, str) else rule
    return bool(check(request, task))


def parsed_args(text: str | None) -> Any:
    """The (redacted) arguments as a JSON value, or None when they are not JSON."""
    try:
        return json.loads(text or "{}")
    except ValueError:
        return None


def public_dict(task: Task, *, full_error: bool = False) -> dict[str, Any]:
    """What the page shows: the original's ``as_dict`` with redacted arguments, plus ours.

    Without ``full_error``, ``error`` is its last line: the exception, not the traceback's paths.
    """
    data = task.as_dict
    data["args"] = task.redacted_args
    if not full_error and task.error:
        data["error"] = error_summary(task.error)
    data.update(
        arguments=parsed_args(data["args"]),
        queue=task.queue,
        priority=task.priority,
        attempts=task.attempts,
        max_attempts=task.max_attempts,
        progress=task.progress,
        progress_message=task.progress_message,
        run_after=task.run_after.isoformat() if task.run_after else None,
        started_at=task.started_at.isoformat() if task.started_at else None,
        finished_at=task.finished_at.isoformat() if task.finished_at else None,
        finished=task.is_finished,
    )
    return data


def bad_request(message: str, as_json: bool) -> HttpResponse:
    if as_json:
        return JsonResponse({"error": message}, status=400)
    return HttpResponseBadRequest(message, content_type="text/plain")


@require_safe
def view_task_status(request: HttpRequest) -> HttpResponse:
    as_json = request.GET.get("type") == "json"
    raw_id = request.GET.get("task_id", "").strip()
    if not raw_id:
        return bad_request("Missing task_id parameter.", as_json)
    try:
        task_id = uuid.UUID(raw_id)
    except ValueError:
        return bad_request("Invalid task_id format.", as_json)
    task = Task.objects.filter(id=task_id).first()
    if task is None or not can_view(request, task):
        # The same answer for a task that exists but may not be seen: ids are not confirmed.
        return bad_request("Task not found.", as_json)
    full_error = conf.get("STATUS_FULL_ERRORS") or is_staff(request)
    data = public_dict(task, full_error=full_error)
    if as_json:
        return JsonResponse(data)
    context = {
        "task": task,
        "data": data,
        "error_is_summary": not full_error and data["error"] != task.error,
        "refresh": None if task.is_finished else REFRESH_SECONDS,
        "progress_percent": None if task.progress is None else round(task.progress * 100),
    }
    return render(request, "django_simple_queue/task_status.html", context)
