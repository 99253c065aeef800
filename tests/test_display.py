"""How the admin shows a task's values (admin_ext/display.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from admin_ext import display
from tests.factories import TaskFactory


def test_dotted_paths_break_after_dots_and_underscores_only():
    html = display.dotted("reports.monthly_sales.build")
    assert html == "reports.<wbr>monthly_<wbr>sales.<wbr>build"


def test_dotted_escapes_the_path():
    assert display.dotted("a.<b>") == "a.<wbr>&lt;b&gt;"


def test_last_line_is_the_exception_without_its_traceback():
    error = 'Traceback (most recent call last):\n  File "/srv/app/x.py", line 3\nValueError: boom\n'
    assert display.last_line(error) == "ValueError: boom"
    assert display.last_line(None) == ""


@override_settings(TIME_ZONE="Europe/Berlin", USE_TZ=True)
def test_moment_has_seconds_and_drops_a_repeated_day():
    start = timezone.make_aware(datetime(2026, 3, 4, 8, 5, 7), timezone.get_fixed_timezone(0))
    assert display.moment(start) == "March 4, 2026, 09:05:07"  # 08:05:07 UTC, in the DATE_FORMAT
    assert display.moment(start + timedelta(seconds=5), same_day_as=start) == "09:05:12"
    assert display.moment(start + timedelta(days=1), same_day_as=start) == "March 5, 2026, 09:05:07"


@pytest.mark.django_db
def test_timeline_uses_the_date_format_and_shows_each_error_as_one_line():
    started = timezone.make_aware(datetime(2026, 3, 4, 8, 5, 7), timezone.get_fixed_timezone(0))
    finished = started + timedelta(seconds=3)
    task = TaskFactory(
        failed=True,
        attempt_log=[
            {
                "attempt": 1,
                "worker": "host-a:1",
                "started": started.isoformat(),
                "finished": finished.isoformat(),
                "outcome": "failed",
                "error": "Traceback (most recent call last):\n  File x\nValueError: <boom>",
            }
        ],
    )
    with override_settings(TIME_ZONE="UTC"):
        html = display.timeline(task)
    assert "March 4, 2026, 08:05:07 → 08:05:10" in html
    assert "ValueError: &lt;boom&gt;" in html
    assert "Traceback" not in html and "+00:00" not in html


def test_short_moment_is_the_clock_today_and_the_day_otherwise():
    now = timezone.now()
    clock = timezone.localtime(now).strftime("%H:%M:%S")
    assert f">{clock}</time>" in display.short_moment(now, now)
    last_year = now - timedelta(days=400)
    shown = display.short_moment(last_year, now).split(">")[1]
    assert timezone.localtime(last_year).strftime("%H:%M") not in shown
    assert display.short_moment(None, now) == "—"
