"""Queue figures shared by the admin's dashboard and the health report (and, later, metrics).

Each is a grouped query on an indexed status (queued and running rows have partial indexes), so it
stays cheap on a large table. "Waiting" means ready and not yet claimed: a queued task waits from
the moment it became ready, the later of its ``created`` and its ``run_after``; a deferred task
whose ``run_after`` is still ahead does not wait yet. So a task enqueued an hour ago to run a minute
ago has waited one minute, and one deferred by an hour an hour ago has waited since it was due.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import Case, Count, F, Max, Min, Q, When
from django.db.models.functions import Greatest

from django_simple_queue import conf
from django_simple_queue.models import Task

# When a queued task became ready (Greatest would be NULL on SQLite and MariaDB for a NULL run_after).
WAITING_SINCE = Case(
    When(run_after__isnull=True, then=F("created")),
    default=Greatest("created", "run_after"),
)


def queues(now: datetime) -> list[dict[str, Any]]:
    """Per queue, in name order: queued tasks (``depth``), how many may start now (``ready``), how
    many wait for their ``run_after`` (``deferred``) and since when the oldest ready one waits
    (``waiting_since``, None when none is ready)."""
    ready = Q(run_after__isnull=True) | Q(run_after__lte=now)
    rows = (
        Task.objects.queued()
        .values("queue")
        .annotate(
            depth=Count("id"),
            ready=Count("id", filter=ready),
            waiting_since=Min(WAITING_SINCE, filter=ready),
        )
        .order_by("queue")
    )
    return [{**row, "deferred": row["depth"] - row["ready"]} for row in rows]


def workers(now: datetime) -> list[dict[str, Any]]:
    """Workers holding claims, in name order: ``worker_id``, how many tasks each runs, its last
    heartbeat (``last_beat``) and whether that is within STALE_AFTER (``live``)."""
    cutoff = now - timedelta(seconds=float(conf.get("STALE_AFTER")))
    rows = (
        Task.objects.running()
        .exclude(worker_id="")
        .values("worker_id")
        .annotate(running=Count("id"), last_beat=Max("heartbeat_at"))
        .order_by("worker_id")
    )
    return [
        {**row, "live": row["last_beat"] is not None and row["last_beat"] >= cutoff} for row in rows
    ]
