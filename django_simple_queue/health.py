"""A JSON health report of the queue for staff and monitoring: ``/django_simple_queue/health``.

``health_report()`` computes it (call it from a view of your own to expose it another way);
``view_health`` serves it to active staff users. The queue and worker figures, and what "waiting"
means, are ``stats``'s, shared with the admin's dashboard.
Nothing here imports the admin: the lean worker settings can serve it too.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.apps import apps
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from django_simple_queue import conf, db, stats
from django_simple_queue.models import Task


def _seconds(delta: timedelta | None) -> float | None:
    return None if delta is None else round(max(delta.total_seconds(), 0.0), 3)


def queue_report(now: datetime) -> list[dict[str, Any]]:
    """Per queue: queued tasks, how many may start now, and how long the oldest ready one waits."""
    return [
        {
            "queue": row["queue"],
            "depth": row["depth"],
            "ready": row["ready"],
            "deferred": row["deferred"],
            "oldest_ready_age": _seconds(now - row["waiting_since"])
            if row["waiting_since"]
            else None,
        }
        for row in stats.queues(now)
    ]


def worker_report(now: datetime) -> list[dict[str, Any]]:
    """Every worker (``stats.workers``): its state, running tasks, and the age of its last
    heartbeat."""
    return [
        {
            "worker": row["name"],
            "state": row["state"],
            "live": row["live"],
            "running": row["running"],
            "done": row["done"],
            "queues": row["queues"],
            "host": row["host"],
            "pid": row["pid"],
            "version": row["version"],
            "last_heartbeat_age": _seconds(now - row["last_seen"]) if row["last_seen"] else None,
        }
        for row in stats.workers(now)
    ]


def _served(queue: str, workers: list[dict[str, Any]]) -> bool:
    """Whether a live worker takes tasks of ``queue`` (one with no ``--queue`` takes all)."""
    return any(w["live"] and (not w["queues"] or queue in w["queues"]) for w in workers)


def health_report(now: datetime | None = None) -> dict[str, Any]:
    """The queue's health as a JSON-ready dict (see docs/deployment.md, "Monitoring")."""
    now = now or db.now()
    stale_after = float(conf.get("STALE_AFTER"))
    queues = queue_report(now)
    workers = worker_report(now)
    hour_ago = now - timedelta(hours=1)
    finished = Task.objects.filter(
        finished_at__gte=hour_ago, status__in=(Task.COMPLETED, Task.FAILED)
    ).aggregate(
        completed=Count("id", filter=Q(status=Task.COMPLETED)),
        failed=Count("id", filter=Q(status=Task.FAILED)),
    )
    ages = [q["oldest_ready_age"] for q in queues if q["oldest_ready_age"] is not None]
    oldest = max(ages, default=None)
    stale = Task.objects.stale(now).count()
    live = [w for w in workers if w["live"]]
    problems = []
    if stale:
        problems.append(
            f"{stale} running task(s) without a heartbeat for more than {stale_after:g}s: "
            "their worker is lost; a live worker will rescue them."
        )
    # A queue without a live worker is only a problem once a ready task has waited for one.
    unserved = [
        q
        for q in queues
        if (q["oldest_ready_age"] or 0) > stale_after and not _served(q["queue"], workers)
    ]
    for q in unserved:
        problems.append(
            f"A ready task of queue {q['queue']!r} has waited {q['oldest_ready_age']:g}s and no "
            "live worker serves that queue: is a worker running for it?"
        )
    return {
        "status": "ok" if not problems else "problem",
        "problems": problems,
        "time": now.isoformat(),
        "queued": sum(q["depth"] for q in queues),
        "oldest_ready_age": oldest,
        "queues": queues,
        "running": sum(w["running"] for w in workers),
        "stale": stale,
        "live_workers": len(live),
        "workers": workers,
        "completed_last_hour": finished["completed"],
        "failed_last_hour": finished["failed"],
    }


@never_cache
@require_safe
def view_health(request: HttpRequest) -> JsonResponse:
    """The health report for active staff users: 200 when healthy, 503 when there are problems."""
    if not apps.is_installed("django.contrib.auth"):
        # Without users there is nobody to trust with the report.
        raise Http404("The health report needs django.contrib.auth.")
    user = getattr(request, "user", None)
    if user is None or not (user.is_active and user.is_staff):
        return JsonResponse({"detail": "Staff only: log in as a staff user."}, status=403)
    report = health_report()
    return JsonResponse(report, status=200 if report["status"] == "ok" else 503)
