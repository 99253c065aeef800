"""The public status page of one task: ``/django_simple_queue/task?task_id=<uuid>[&type=json]``."""

from __future__ import annotations

import uuid
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import render
from django.utils.module_loading import import_string
from django.views.decorators.http import require_safe

from django_simple_queue import conf
from django_simple_queue.models import Task

REFRESH_SECONDS = 2


def can_view(request: HttpRequest, task: Task) -> bool:
    """Apply DJANGO_SIMPLE_QUEUE_STATUS_VIEW: public, authenticated, staff, or a callable's say."""
    rule = conf.get("STATUS_VIEW")
    if rule == "public":
        return True
    user = getattr(request, "user", None)
    if rule == "authenticated":
        return bool(user and user.is_authenticated)
    if rule == "staff":
        return bool(user and user.is_active and user.is_staff)
    check = import_string(rule) if isinstance(rule, str) else rule
    return bool(check(request, task))


def public_dict(task: Task) -> dict[str, Any]:
    """What the page shows: the original's ``as_dict`` with redacted arguments, plus ours."""
    data = task.as_dict
    data["args"] = task.redacted_args
    data.update(
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


@require_safe
def view_task_status(request: HttpRequest) -> HttpResponse:
    raw_id = request.GET.get("task_id", "").strip()
    if not raw_id:
        return HttpResponseBadRequest("Missing task_id parameter.", content_type="text/plain")
    try:
        task_id = uuid.UUID(raw_id)
    except ValueError:
        return HttpResponseBadRequest("Invalid task_id format.", content_type="text/plain")
    task = Task.objects.filter(id=task_id).first()
    if task is None or not can_view(request, task):
        # The same answer for a task that exists but may not be seen: ids are not confirmed.
        return HttpResponseBadRequest("Task not found.", content_type="text/plain")
    data = public_dict(task)
    if request.GET.get("type") == "json":
        return JsonResponse(data)
    context = {
        "task": task,
        "data": data,
        "refresh": None if task.is_finished else REFRESH_SECONDS,
        "progress_percent": None if task.progress is None else round(task.progress * 100),
    }
    return render(request, "django_simple_queue/task_status.html", context)
