"""The dashboard above the task list, and counting that stays fast on a table of millions.

On PostgreSQL, counts stop at ``EXACT_BELOW`` rows; past that they come from the planner's
estimate (``EXPLAIN``). Nothing here runs an unbounded ``COUNT(*)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.paginator import Paginator
from django.db.models import Count, QuerySet
from django.db.models.functions import TruncHour
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.functional import cached_property

from admin_ext.display import STATUS_LABELS, STATUS_ORDER
from django_simple_queue import conf, db, queues, stats
from django_simple_queue.models import Schedule, Task

# Up to this many rows a count is exact; beyond it the planner's estimate is shown as "≈".
EXACT_BELOW = stats.EXACT_BELOW
estimate = stats.estimate
CHART_HOURS = 24
CHART_WIDTH, CHART_HEIGHT, CHART_PAD = 720, 160, 28


class EstimatedCountPaginator(Paginator):
    """A paginator whose count is the planner's estimate on large PostgreSQL result sets."""

    @cached_property
    def count(self) -> int:
        if isinstance(self.object_list, QuerySet):
            return estimate(self.object_list)[0]
        return len(self.object_list)


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    count: int
    label: str
    kind: str


def hourly_chart(now: datetime | None = None) -> dict[str, Any]:
    """Completed and failed tasks per hour for the last 24 hours, laid out as SVG rectangles."""
    now = now or db.now()
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    start = end - timedelta(hours=CHART_HOURS)
    rows = (
        Task.objects.filter(finished_at__gte=start, status__in=(Task.COMPLETED, Task.FAILED))
        .annotate(hour=TruncHour("finished_at"))
        .values("hour", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    counts: dict[tuple[int, int], int] = {}
    for row in rows:
        index = int((row["hour"] - start).total_seconds() // 3600)
        if 0 <= index < CHART_HOURS:
            counts[index, row["status"]] = counts.get((index, row["status"]), 0) + row["n"]
    peak = max(counts.values(), default=0)
    plot_w = CHART_WIDTH - 2 * CHART_PAD
    plot_h = CHART_HEIGHT - 2 * CHART_PAD
    slot = plot_w / CHART_HOURS
    bar_w = max(slot / 2 - 2, 1)
    bars: list[Bar] = []
    labels = []
    for index in range(CHART_HOURS):
        hour = timezone.localtime(start + timedelta(hours=index))
        x = CHART_PAD + index * slot
        if index % 3 == 0:
            labels.append({"x": x + slot / 2, "text": hour.strftime("%H:00")})
        for offset, (status, kind) in enumerate(
            ((Task.COMPLETED, "completed"), (Task.FAILED, "failed"))
        ):
            n = counts.get((index, status), 0)
            height = (n / peak * plot_h) if peak else 0
            bars.append(
                Bar(
                    x=round(x + 1 + offset * (bar_w + 1), 1),
                    y=round(CHART_PAD + plot_h - height, 1),
                    width=round(bar_w, 1),
                    height=round(height, 1),
                    count=n,
                    label=f"{hour:%H:00}: {n} {kind}",
                    kind=kind,
                )
            )
    return {
        "bars": bars,
        "labels": labels,
        "peak": peak,
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "baseline": CHART_PAD + plot_h,
        "left": CHART_PAD,
        "right": CHART_WIDTH - CHART_PAD,
        "top": CHART_PAD,
        "label_y": CHART_HEIGHT - 8,
        "total_completed": sum(n for (_, s), n in counts.items() if s == Task.COMPLETED),
        "total_failed": sum(n for (_, s), n in counts.items() if s == Task.FAILED),
    }


def status_counts() -> list[dict[str, Any]]:
    """Tasks per status, in the order a task goes through them; large numbers are estimates."""
    result = []
    for value in STATUS_ORDER:
        count, exact = estimate(Task.objects.filter(status=value))
        label = STATUS_LABELS[value]
        result.append({"status": value, "label": label, "count": count, "exact": exact})
    return result


def queue_depths(now: datetime | None = None) -> list[dict[str, Any]]:
    """Queued tasks per queue, since when the oldest ready one waits (``stats.queues``), and its
    controls: paused, max_running (queues with controls are listed even when empty)."""
    now = now or db.now()
    rows = {
        row["queue"]: {**row, "age": now - row["waiting_since"] if row["waiting_since"] else None}
        for row in stats.queues(now)
    }
    return queues.with_controls(rows, {"depth": 0, "waiting_since": None, "age": None})


def workers(now: datetime | None = None) -> list[dict[str, Any]]:
    """Every worker, idle, busy or lost (``stats.workers``), with how long ago it was last seen."""
    now = now or db.now()
    return [
        {**row, "ago": now - row["last_seen"] if row["last_seen"] else None}
        for row in stats.workers(now)
    ]


def next_runs(now: datetime, site: str = "admin", count: int = 5) -> list[dict[str, Any]]:
    """The next runs of enabled schedules, soonest first, each linked to its schedule's page."""
    upcoming = Schedule.objects.enabled().filter(next_run_at__isnull=False).order_by("next_run_at")
    rows = []
    for schedule in upcoming[:count]:
        try:
            url = reverse(f"{site}:django_simple_queue_schedule_change", args=[schedule.pk])
        except NoReverseMatch:  # a project's own admin site without the schedule admin
            url = ""
        at = schedule.next_run_at
        rows.append({"schedule": schedule, "at": at, "due": at is None or at <= now, "url": url})
    return rows


def context(now: datetime | None = None, site: str = "admin") -> dict[str, Any]:
    """Everything the dashboard template shows."""
    now = now or db.now()
    return {
        "statuses": status_counts(),
        "queues": queue_depths(now),
        "workers": workers(now),
        "next_runs": next_runs(now, site),
        "chart": hourly_chart(now),
        "stale_after": conf.get("STALE_AFTER"),
        "failures_url": _failures_url(site),
    }


def _failures_url(site: str) -> str:
    try:
        return reverse(f"{site}:django_simple_queue_task_failures")
    except NoReverseMatch:  # a project's own TaskAdmin without the page's URL
        return ""
