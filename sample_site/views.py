"""The landing page: one button per demo task, and the latest tasks with their status pages."""

from __future__ import annotations

from django.db.models import Count
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_POST, require_safe

from django_simple_queue.models import Task
from django_simple_queue.utils import create_task
from sample_site.tasks import DEMOS

RECENT = 15


def status_url(task_id: object) -> str:
    return f"{reverse('django_simple_queue:task')}?{urlencode({'task_id': str(task_id)})}"


@require_safe
def index(request: HttpRequest) -> HttpResponse:
    recent = [
        (task, status_url(task.id), DEMOS_BY_PATH.get(task.task, task.task))
        for task in Task.objects.order_by("-created")[:RECENT]
    ]
    context = {"demos": DEMOS, "recent": recent, "counts": counts()}
    return render(request, "index.html", context)


@require_POST
def enqueue(request: HttpRequest) -> HttpResponse:
    """Queue the demo named by the ``demo`` field and show its status page."""
    demo = DEMOS.get(request.POST.get("demo", ""))
    if demo is None:
        return HttpResponseBadRequest(
            f"Unknown demo; choose one of: {', '.join(DEMOS)}.", content_type="text/plain"
        )
    task_id = create_task(demo.task, demo.make_args(), enqueued_by="landing page", **demo.options)
    return HttpResponseRedirect(status_url(task_id), status=303)


def counts() -> list[tuple[str, int]]:
    """How many tasks have each status, in the order of the statuses."""
    per_status = dict(Task.objects.values_list("status").annotate(n=Count("id")).order_by())
    return [(str(label), per_status.get(status, 0)) for status, label in Task.STATUS_CHOICES]


DEMOS_BY_PATH = {demo.task: demo.title for demo in DEMOS.values()}
