"""When schedules run (django_simple_queue/schedules.py): plain values, no database."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from django_simple_queue.schedules import (
    ALL,
    CATCH_UP_CAP,
    LATEST,
    SKIP,
    InvalidSchedule,
    Timing,
    describe,
    due,
)

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("timing", "message"),
    [
        (Timing(), "either a cron expression"),
        (Timing(cron="* * * * *", interval=5), "not both"),
        (Timing(interval=0), "at least 1, not 0"),
        (Timing(interval=True), "whole number"),
        (Timing(cron="30 3 * *"), "has 4 fields; a cron expression has 5"),
        (Timing(cron="61 3 * * *"), "is not a valid cron expression: Bad minute"),
        (Timing(cron="30 3 * * *", timezone="Mars/Olympus"), "'Mars/Olympus' is not a timezone"),
    ],
)
def test_a_timing_that_cannot_run_is_refused_with_what_would_be_right(timing, message):
    with pytest.raises(InvalidSchedule, match=message):
        timing.check()


def test_valid_timings_pass():
    Timing(cron="*/5 9-17 * * mon-fri", timezone="Europe/Berlin").check()
    Timing(interval=1).check()


def test_first_after_is_strictly_later_and_in_utc():
    noon = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
    assert Timing(cron="0 12 * * *").first_after(noon) == noon + timedelta(days=1)
    assert Timing(cron="30 3 * * *", timezone="Europe/Berlin").first_after(noon) == datetime(
        2026, 1, 11, 2, 30, tzinfo=UTC
    )
    assert Timing(interval=90).first_after(noon) == noon + timedelta(seconds=90)


def run_passes(timing: Timing, start: datetime, end: datetime, every: timedelta) -> list[datetime]:
    """The ticks a scheduler making a pass every ``every`` enqueues between start and end."""
    next_run_at, ticks, now = timing.first_after(start), [], start
    while now < end:
        now += every
        result = due(timing, next_run_at, now)
        ticks += result.ticks
        next_run_at = result.next_run_at
    return ticks


@pytest.mark.parametrize(
    ("start", "days"),
    [
        (datetime(2026, 3, 27, 12, tzinfo=BERLIN), ["2026-03-28", "2026-03-29", "2026-03-30"]),
        (datetime(2026, 10, 23, 12, tzinfo=BERLIN), ["2026-10-24", "2026-10-25", "2026-10-26"]),
    ],
    ids=["spring-forward", "fall-back"],
)
def test_a_daily_0230_in_berlin_runs_once_on_each_dst_change_day(start, days):
    timing = Timing(cron="30 2 * * *", timezone="Europe/Berlin")
    ticks = run_passes(timing, start, start + timedelta(days=3), timedelta(minutes=5))
    per_day = Counter(tick.astimezone(BERLIN).date().isoformat() for tick in ticks)
    assert per_day == dict.fromkeys(days, 1)
    # 02:30 does not exist on 29 March: it runs at the first minute after the change.
    local = [tick.astimezone(BERLIN).strftime("%m-%d %H:%M %Z") for tick in ticks]
    if start.month == 3:
        assert local == ["03-28 02:30 CET", "03-29 03:00 CEST", "03-30 02:30 CEST"]
    else:
        assert local == ["10-24 02:30 CEST", "10-25 02:30 CEST", "10-26 02:30 CET"]


def test_an_interval_runs_on_its_own_grid_whatever_the_pass_timing():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    ticks = run_passes(
        Timing(interval=7), start, start + timedelta(seconds=70), timedelta(seconds=1.3)
    )
    assert ticks == [start + timedelta(seconds=7 * n) for n in range(1, 11)]


def test_after_downtime_latest_enqueues_only_the_latest_missed_tick():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    now = start + timedelta(hours=1, seconds=30)
    result = due(Timing(interval=60), start, now, LATEST)
    assert result.ticks == [start + timedelta(hours=1)]
    assert result.next_run_at == start + timedelta(hours=1, minutes=1)
    assert result.missed == 60
    cron = due(Timing(cron="*/10 * * * *"), start, now, LATEST)
    assert cron.ticks == [start + timedelta(hours=1)]
    assert cron.next_run_at == start + timedelta(hours=1, minutes=10)


def test_skip_enqueues_nothing_missed_but_a_tick_merely_late_still_runs():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    missed = due(Timing(interval=3600), start, start + timedelta(minutes=5), SKIP)
    assert missed.ticks == [] and missed.next_run_at == start + timedelta(hours=1)
    late = due(Timing(interval=3600), start, start + timedelta(seconds=3), SKIP)
    assert late.ticks == [start]


def test_all_enqueues_every_missed_tick_up_to_the_cap_quickly():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    few = due(Timing(interval=60), start, start + timedelta(minutes=4), ALL)
    assert few.ticks == [start + timedelta(minutes=n) for n in range(5)]
    began = time.perf_counter()
    year = due(Timing(cron="* * * * *"), start, start + timedelta(days=365), ALL)
    assert time.perf_counter() - began < 5  # walks back from now, never a year of minutes
    assert len(year.ticks) == CATCH_UP_CAP
    assert year.ticks[-1] == start + timedelta(days=365)
    assert year.ticks == sorted(year.ticks)


def test_nothing_is_due_before_its_time():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    result = due(Timing(interval=60), start, start - timedelta(seconds=1))
    assert (result.ticks, result.next_run_at, result.missed) == ([], start, 0)


def test_an_unknown_misfire_policy_is_refused():
    with pytest.raises(InvalidSchedule, match="'sometimes' is not a misfire policy"):
        due(Timing(interval=1), datetime(2026, 1, 1, tzinfo=UTC), datetime.now(UTC), "sometimes")


@pytest.mark.parametrize(
    ("timing", "words"),
    [
        (Timing(interval=1), "Every second"),
        (Timing(interval=2), "Every 2 seconds"),
        (Timing(interval=300), "Every 5 minutes"),
        (Timing(interval=3600), "Every hour"),
        (Timing(interval=90), "Every 90 seconds"),
        (Timing(cron="30 3 * * *"), "At 03:30"),
    ],
)
def test_a_timing_in_words(timing, words):
    assert describe(timing) == words


def test_upcoming_lists_the_next_runs_in_the_schedules_timezone():
    noon = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
    runs = Timing(cron="30 3 * * *", timezone="Europe/Berlin").upcoming(noon, 5)
    assert [r.strftime("%d %H:%M") for r in runs] == [f"{d} 03:30" for d in range(11, 16)]


def test_after_a_long_downtime_the_latest_tick_follows_dst_rules_too():
    timing = Timing(cron="30 2 * * *", timezone="Europe/Berlin")
    first = datetime(2026, 3, 1, 2, 30, tzinfo=BERLIN).astimezone(UTC)
    now = datetime(2026, 3, 29, 3, 30, tzinfo=BERLIN).astimezone(UTC)
    assert due(timing, first, now, LATEST).ticks == [datetime(2026, 3, 29, 1, 0, tzinfo=UTC)]
    every = Timing(cron="30 2 * * *", timezone="Europe/Berlin")
    autumn = due(
        every,
        datetime(2026, 6, 1, 2, 30, tzinfo=BERLIN).astimezone(UTC),
        datetime(2026, 12, 1, tzinfo=UTC),
        ALL,
    )
    days = [tick.astimezone(BERLIN).date() for tick in autumn.ticks]
    assert len(days) == len(set(days)) == CATCH_UP_CAP  # once a day, the fall-back day too
