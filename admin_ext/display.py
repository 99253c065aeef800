"""How the admin shows a task's values: badges, progress, durations, times and the attempt timeline."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, tzinfo
from typing import Any

from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.dateformat import format as format_datetime
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext_lazy as _

from django_simple_queue.models import Task

# Break opportunities after the dots and underscores of a dotted path: constant markup.
BREAK = mark_safe("<wbr>")
# Statuses in the order a task goes through them (the model's choices add Waiting last).
STATUS_ORDER = (
    Task.WAITING,
    Task.QUEUED,
    Task.PROGRESS,
    Task.COMPLETED,
    Task.FAILED,
    Task.CANCELLED,
)
STATUS_LABELS = dict(Task.STATUS_CHOICES)


def status_url(task: Task) -> str | None:
    """The public status page of ``task``, or None when the project did not include its URLs."""
    try:
        base = reverse("django_simple_queue:task")
    except NoReverseMatch:
        return None
    return f"{base}?{urlencode({'task_id': str(task.id)})}"


def enqueued_message(task: Task, site: str = "admin") -> str:
    """The message after the add page: the new task's admin page and its public status page."""
    change = reverse(f"{site}:django_simple_queue_task_change", args=[task.pk])
    message = format_html('Task <a href="{}">{}</a> was enqueued.', change, task.pk)
    public = status_url(task)
    if public is None:
        return message
    return format_html(
        '{} <a href="{}" target="_blank" rel="noopener">{}</a>',
        message,
        public,
        _("Public status page"),
    )


def human_duration(value: timedelta | None) -> str:
    if value is None:
        return "—"
    seconds = value.total_seconds()
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"


def pre(text: str | None) -> str:
    if not text:
        return "—"
    return format_html('<pre class="dsq-pre">{}</pre>', text)


def dotted(path: str) -> SafeString:
    """A dotted path that a narrow column breaks after a dot or an underscore, never mid-word."""
    pieces = re.split(r"(?<=[._])", path)
    return format_html_join(BREAK, "{}", ((piece,) for piece in pieces if piece))


def badge(task: Task) -> str:
    extra = (
        _(" (cancel requested)") if task.cancel_requested and task.status == Task.PROGRESS else ""
    )
    return format_html(
        '<span class="dsq-badge dsq-status-{}">{}{}</span>',
        task.status,
        task.get_status_display(),
        extra,
    )


def status_badge(status: int, text: Any = None) -> str:
    """A status's badge, showing ``text`` (default: the status's label)."""
    return format_html(
        '<span class="dsq-badge dsq-status-{}">{}</span>',
        status,
        STATUS_LABELS.get(status, status) if text is None else text,
    )


def bar(fraction: float, title: Any, text: Any) -> str:
    """The progress bar markup: ``fraction`` (0 to 1) filled, ``text`` beside it."""
    percent = round(min(max(fraction, 0.0), 1.0) * 100)
    return format_html(
        '<span class="dsq-progress" role="progressbar" aria-valuenow="{}" aria-valuemin="0" '
        'aria-valuemax="100" title="{}"><span class="dsq-progress-fill" style="width: {}%"></span>'
        '</span> <span class="dsq-progress-text">{}</span>',
        percent,
        title,
        percent,
        text,
    )


def progress_bar(task: Task) -> str:
    percent = round((task.progress or 0) * 100)
    return bar(task.progress or 0, task.progress_message, f"{percent}%")


def moment(
    value: datetime | None, same_day_as: datetime | None = None, zone: tzinfo | None = None
) -> str:
    """A time in the admin's date format, with seconds, in ``zone`` (default: the current time
    zone); only the time if on ``same_day_as``'s day."""
    if value is None:
        return "—"
    value = value.astimezone(zone) if zone is not None else timezone.localtime(value)
    clock = format_datetime(value, "H:i:s")
    if same_day_as is not None and timezone.localtime(same_day_as).date() == value.date():
        return clock
    return f"{date_format(value, 'DATE_FORMAT')}, {clock}"


def _parse(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text)) if text else None
    except ValueError:
        return None


def short_moment(value: datetime | None, now: datetime) -> str:
    """A time for a narrow column: the clock today, the day this year, else the date; the full
    date and time in its tooltip."""
    if value is None:
        return "—"
    local, today = timezone.localtime(value), timezone.localtime(now)
    if local.date() == today.date():
        text = format_datetime(local, "H:i:s")
    elif local.year == today.year:
        text = format_datetime(local, "M j, H:i")
    else:
        text = date_format(local, "SHORT_DATE_FORMAT")
    return format_html(
        '<time datetime="{}" title="{}">{}</time>', local.isoformat(), moment(local), text
    )


def last_line(error: str | None) -> str:
    """An error's last line: the exception's type and message, without the traceback above it."""
    lines = [line for line in (error or "").strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def timeline(task: Task) -> str:
    """One line per finished attempt; the full traceback stays in the task's Error field."""
    entries = list(task.attempt_log or [])
    if not entries:
        return str(_("No attempt has finished yet."))
    rows = []
    for entry in entries:
        started, finished = _parse(entry.get("started")), _parse(entry.get("finished"))
        error = last_line(entry.get("error"))
        rows.append(
            (
                str(entry.get("outcome", "")).replace(" ", "-"),
                entry.get("attempt", "?"),
                entry.get("outcome", ""),
                moment(started),
                moment(finished, same_day_as=started),
                entry.get("worker") or _("unknown worker"),
                format_html('<div class="dsq-attempt-error">{}</div>', error) if error else "",
            )
        )
    items = format_html_join(
        "",
        '<li class="dsq-attempt dsq-outcome-{}"><strong>#{} {}</strong> · {} → {} · {}{}</li>',
        rows,
    )
    return format_html('<ol class="dsq-timeline">{}</ol>', items)
