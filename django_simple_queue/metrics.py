"""Queue state for Prometheus: ``/django_simple_queue/metrics``, from the web process.

Every scrape runs the cheap queries of ``stats`` (the dashboard's) into a registry of its own, so
nothing is kept between scrapes and nothing joins the process's global registry. Readable with
``Authorization: Bearer <METRICS_TOKEN>`` or by staff; see docs/observability.md.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_safe

from django_simple_queue import conf, db, stats
from django_simple_queue.models import Task
from django_simple_queue.views import is_staff

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

PREFIX = "django_simple_queue_"
STATUS_NAMES = {
    Task.QUEUED: "queued",
    Task.PROGRESS: "in_progress",
    Task.COMPLETED: "completed",
    Task.FAILED: "failed",
    Task.CANCELLED: "cancelled",
    Task.WAITING: "waiting",
}
WORKER_STATES = ("idle", "busy", "lost")
MISSING = (
    "The metrics need prometheus-client: pip install 'django-simple-queue[metrics]' "
    "(docs/observability.md).\n"
)


class QueueCollector:
    """The gauges of one scrape, computed when the registry collects them."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        tasks = GaugeMetricFamily(
            PREFIX + "tasks",
            "Tasks by queue and status; finished ones are estimated on large PostgreSQL tables.",
            labels=["queue", "status"],
        )
        counts = stats.task_counts()
        for (queue, status), n in sorted(counts.items()):
            tasks.add_metric([queue, STATUS_NAMES[status]], n)
        yield tasks
        oldest = GaugeMetricFamily(
            PREFIX + "oldest_queued_seconds",
            "Seconds the oldest ready task of each queue has waited (0 when none is ready).",
            labels=["queue"],
        )
        for row in stats.queues(self.now):
            since = row["waiting_since"]
            oldest.add_metric([row["queue"]], (self.now - since).total_seconds() if since else 0.0)
        yield oldest
        workers = GaugeMetricFamily(
            PREFIX + "workers", "Workers by state: idle, busy or lost.", labels=["state"]
        )
        states = dict.fromkeys(WORKER_STATES, 0)
        for row in stats.workers(self.now):
            states[row["state"]] += 1
        for state, n in states.items():
            workers.add_metric([state], n)
        yield workers
        lateness = GaugeMetricFamily(
            PREFIX + "schedule_lateness_seconds",
            "Seconds an enabled schedule's next run is overdue (0 when it is not).",
            labels=["schedule"],
        )
        for name, seconds in stats.schedule_lateness(self.now).items():
            lateness.add_metric([name], seconds)
        yield lateness


def exposition(now: datetime) -> tuple[bytes, str]:
    """(body, content type) of one scrape."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(QueueCollector(now))
    return generate_latest(registry), CONTENT_TYPE_LATEST


def access(request: HttpRequest) -> int:
    """200 when ``request`` may read the metrics, else the status to answer with."""
    token = conf.get("METRICS_TOKEN")
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if token and scheme.lower() == "bearer":
        return 200 if hmac.compare_digest(given.strip().encode(), token.encode()) else 403
    if is_staff(request):
        return 200
    if not token:
        # Without a token the page is for staff only, and does not say that it exists.
        return 404
    user = getattr(request, "user", None)
    return 403 if header or (user and user.is_authenticated) else 401


@require_safe
def view_metrics(request: HttpRequest) -> HttpResponse:
    status = access(request)
    if status != 200:
        response = HttpResponse(status=status, content_type="text/plain")
        if status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="django_simple_queue"'
        return response
    try:
        body, content_type = exposition(db.now())
    except ModuleNotFoundError as exc:
        if exc.name != "prometheus_client":
            raise
        return HttpResponse(MISSING, status=501, content_type="text/plain")
    return HttpResponse(body, content_type=content_type)
