"""Queue figures shared by the admin's dashboard, the health report and the metrics.

Each is a grouped query on an indexed status (queued and running rows have partial indexes), so it
stays cheap on a large table; finished rows are counted up to ``EXACT_BELOW`` and estimated by
PostgreSQL's planner beyond (``estimate``). "Waiting" means ready and not yet claimed: a queued task waits from
the moment it became ready, the later of its ``created`` and its ``run_after``; a deferred task
whose ``run_after`` is still ahead does not wait yet. So a task enqueued an hour ago to run a minute
ago has waited one minute, and one deferred by an hour an hour ago has waited since it was due.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from django.db import connections
from django.db.models import Case, Count, F, Max, Min, Q, QuerySet, When
from django.db.models.functions import Greatest

from django_simple_queue import conf
from django_simple_queue.models import Schedule, Task, Worker

# Up to this many rows a count is exact; beyond it, on PostgreSQL, it is the planner's estimate.
EXACT_BELOW = 10_000

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
    """Every worker, in name order, with its ``state``: ``idle``, ``busy`` (it holds claims) or
    ``lost`` (not seen within STALE_AFTER), and ``live`` (not lost).

    A worker's own row says it is there, idle or not; claim holders without a row (a worker of an
    older version, ``execute_task`` in a process of its own) are listed from their claims'
    heartbeats. ``running`` counts the tasks in progress under its name, ``last_seen`` is its
    row's last heartbeat (else its claims' latest).
    """
    cutoff = now - timedelta(seconds=float(conf.get("STALE_AFTER")))
    claims = {
        row["worker_id"]: row
        for row in Task.objects.running()
        .exclude(worker_id="")
        .values("worker_id")
        .annotate(running=Count("id"), last_beat=Max("heartbeat_at"))
        .order_by()
    }
    rows = []
    for worker in Worker.objects.order_by("name"):
        held = claims.pop(worker.name, None)
        running = held["running"] if held else 0
        rows.append(
            {
                "name": worker.name,
                "host": worker.host,
                "pid": worker.pid,
                "queues": list(worker.queues or []),
                "concurrency": worker.concurrency,
                "version": worker.version,
                "started": worker.started,
                "last_seen": worker.last_seen,
                "running": running,
                "done": worker.tasks_done,
                **_state(worker.last_seen, cutoff, running),
            }
        )
    for name, held in claims.items():
        rows.append(
            {
                "name": name,
                "host": "",
                "pid": None,
                "queues": [],
                "concurrency": None,
                "version": "",
                "started": None,
                "last_seen": held["last_beat"],
                "running": held["running"],
                "done": None,
                **_state(held["last_beat"], cutoff, held["running"]),
            }
        )
    return sorted(rows, key=lambda row: row["name"])


def _state(last_seen: datetime | None, cutoff: datetime, running: int) -> dict[str, Any]:
    live = last_seen is not None and last_seen >= cutoff
    state = "lost" if not live else "busy" if running else "idle"
    return {"state": state, "live": live}


def estimate(queryset: QuerySet[Any]) -> tuple[int, bool]:
    """(number of rows, exact?) of ``queryset``: counted up to EXACT_BELOW, estimated beyond."""
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return queryset.count(), True
    # A count that stops at EXACT_BELOW rows is cheap and stays right when the planner's
    # statistics are stale (a table just emptied, or just filled in bulk).
    bounded = queryset.order_by()[:EXACT_BELOW].count()
    if bounded < EXACT_BELOW:
        return bounded, True
    sql, params = queryset.values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return max(int(plan[0]["Plan"]["Plan Rows"]), EXACT_BELOW), False


def task_counts() -> dict[tuple[str, int], int]:
    """Tasks per (queue, status). Queued and running rows are counted; waiting ones and each
    finished status are counted by queue while they are fewer than EXACT_BELOW rows, else estimated
    for each queue known from the queued and running rows and the workers' queues (a queue with only
    old finished tasks is then left out)."""
    counts: dict[tuple[str, int], int] = {}
    unfinished = (
        Task.objects.filter(status__in=(Task.QUEUED, Task.PROGRESS))
        .values("queue", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in unfinished:
        counts[row["queue"], row["status"]] = row["n"]
    known = {queue for queue, _ in counts} | {"default"}
    for queues in Worker.objects.values_list("queues", flat=True):
        known.update(queues or [])
    for status in (Task.WAITING, *Task.FINISHED):
        rows = Task.objects.filter(status=status)
        if estimate(rows)[1]:
            for queue, n in rows.values_list("queue").annotate(n=Count("id")).order_by():
                counts[queue, status] = n
        else:
            for queue in sorted(known):
                counts[queue, status] = estimate(rows.filter(queue=queue))[0]
    return counts


def schedule_lateness(now: datetime) -> dict[str, float]:
    """Seconds each enabled schedule is overdue (0 when its next run is still ahead)."""
    rows = Schedule.objects.enabled().exclude(next_run_at=None).order_by("name")
    return {
        name: max((now - at).total_seconds(), 0.0)
        for name, at in rows.values_list("name", "next_run_at")
        if at is not None
    }
