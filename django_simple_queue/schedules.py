"""When a schedule runs: its timing (a cron expression or an interval, in a timezone), the ticks
that are due at a given moment (with a misfire policy for ticks missed while no worker ran), and
the timing in words.

Plain values in, plain values out: the scheduler (``scheduler.py``), the admin and the checks call
these; nothing here touches the database. Cron expressions are parsed and walked by cronsim, whose
daylight-saving rules are cron's: a time that a spring-forward skips runs at the first minute after
the change, and a time that a fall-back repeats runs once.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice

from cronsim import CronSim, CronSimError
from django.conf import settings

# Misfire policies: what a schedule does with the ticks that passed while no worker ran it.
LATEST = "latest"  # enqueue the latest missed tick only (the default)
SKIP = "skip"  # enqueue none, unless the latest is less than MISFIRE_GRACE late
ALL = "all"  # enqueue every missed tick, the latest CATCH_UP_CAP of them
MISFIRE_POLICIES = (LATEST, SKIP, ALL)

# A tick later than this is "missed" rather than merely late.
MISFIRE_GRACE = timedelta(seconds=60)
CATCH_UP_CAP = 100

_JUST_AFTER = timedelta(microseconds=1)


class InvalidSchedule(ValueError):
    """A cron expression, interval, timezone or misfire policy that cannot be used."""


@dataclass(frozen=True)
class Timing:
    """Every ``interval`` seconds, or at the times of a 5-field ``cron`` expression in ``timezone``
    (an IANA name; empty means settings.TIME_ZONE)."""

    cron: str = ""
    interval: int | None = None
    timezone: str = ""

    def check(self) -> None:
        """Raise InvalidSchedule, naming what is wrong and what would be right."""
        if bool(self.cron.strip()) == (self.interval is not None):
            raise InvalidSchedule(
                "Give either a cron expression (such as '30 3 * * *') or an interval in seconds, "
                "not both and not neither."
            )
        if self.interval is not None and (
            isinstance(self.interval, bool)
            or not isinstance(self.interval, int)
            or self.interval < 1
        ):
            raise InvalidSchedule(
                f"The interval must be a whole number of seconds, at least 1, not {self.interval!r}."
            )
        if self.cron.strip():
            fields = self.cron.split()
            if len(fields) != 5:
                raise InvalidSchedule(
                    f"'{self.cron}' has {len(fields)} fields; a cron expression has 5: "
                    "minute, hour, day of month, month, day of week (such as '30 3 * * *')."
                )
            try:
                CronSim(self.cron, datetime.now(UTC))
            except CronSimError as exc:
                raise InvalidSchedule(
                    f"'{self.cron}' is not a valid cron expression: {exc}."
                ) from exc
        self.zone()

    def zone(self) -> zoneinfo.ZoneInfo:
        name = self.timezone or settings.TIME_ZONE or "UTC"
        try:
            return zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise InvalidSchedule(
                f"'{name}' is not a timezone; use an IANA name such as 'Europe/Berlin' or 'UTC'."
            ) from exc

    def _cron(self, start: datetime, reverse: bool = False) -> CronSim:
        return CronSim(self.cron, start.astimezone(self.zone()), reverse=reverse)

    def first_after(self, moment: datetime) -> datetime:
        """The first tick strictly after ``moment``; an interval counts from ``moment``."""
        if self.interval is not None:
            return moment + timedelta(seconds=self.interval)
        return next(self._cron(moment)).astimezone(UTC)

    def upcoming(self, moment: datetime, count: int = 5) -> list[datetime]:
        """The next ``count`` ticks after ``moment``, in the schedule's timezone (for people)."""
        zone = self.zone()
        if self.interval is not None:
            step = timedelta(seconds=self.interval)
            return [(moment + step * n).astimezone(zone) for n in range(1, count + 1)]
        return list(islice(self._cron(moment), count))

    def ticks_until(self, first: datetime, now: datetime, limit: int) -> tuple[list[datetime], int]:
        """The latest ``limit`` ticks from ``first`` (itself a tick) up to ``now``, oldest first,
        and how many ticks there are in that span (``limit + 1`` standing for "more")."""
        if first > now:
            return [], 0
        if self.interval is not None:
            step = timedelta(seconds=self.interval)
            total = int((now - first) / step) + 1
            skipped = max(total - limit, 0)
            return [first + step * n for n in range(skipped, total)], total
        ticks = self._walk(first, now, limit + 1)
        if len(ticks) <= limit:
            return ticks, len(ticks)
        # A long downtime: walking on from ``first`` could be a year of minutes. Walk back from
        # now to find where the latest ``limit`` ticks begin, then forward from there, as only the
        # forward walk follows cron's rules for the hours that daylight saving skips or repeats.
        begin = first
        for count, tick in enumerate(self._cron(now + _JUST_AFTER, reverse=True), start=1):
            if tick.astimezone(UTC) < first:
                break
            begin = tick.astimezone(UTC)
            if count == limit:
                break
        return self._walk(begin, now, None)[-limit:], limit + 1

    def _walk(self, start: datetime, now: datetime, most: int | None) -> list[datetime]:
        """The cron ticks from ``start`` (included if it is one) up to ``now``, at most ``most``."""
        ticks: list[datetime] = []
        for tick in self._cron(start - _JUST_AFTER):
            tick = tick.astimezone(UTC)
            if tick > now or (most is not None and len(ticks) == most):
                break
            ticks.append(tick)
        return ticks


@dataclass(frozen=True)
class Due:
    """What one pass of the scheduler does with a schedule: the ticks to enqueue (oldest first)
    and the schedule's next run after them."""

    ticks: list[datetime]
    next_run_at: datetime
    missed: int  # ticks passed over by the misfire policy


def check_misfire(misfire: str) -> None:
    if misfire not in MISFIRE_POLICIES:
        raise InvalidSchedule(
            f"'{misfire}' is not a misfire policy; use one of {', '.join(MISFIRE_POLICIES)}."
        )


def due(timing: Timing, next_run_at: datetime, now: datetime, misfire: str = LATEST) -> Due:
    """The ticks of a schedule due at ``now``, whose next run was ``next_run_at``."""
    check_misfire(misfire)
    if next_run_at > now:
        return Due([], next_run_at, 0)
    limit = CATCH_UP_CAP if misfire == ALL else 1
    ticks, total = timing.ticks_until(next_run_at, now, limit)
    following = timing.first_after(ticks[-1]) if ticks else timing.first_after(now)
    if misfire == SKIP and ticks and now - ticks[-1] > MISFIRE_GRACE:
        ticks = []
    return Due(ticks, following, total - len(ticks))


def describe(timing: Timing) -> str:
    """The timing in words: "Every 2 seconds", "At 03:30 AM" (cron-descriptor, when installed)."""
    if timing.interval is not None:
        seconds = timing.interval
        for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
            if seconds % size == 0 and seconds >= size:
                count = seconds // size
                return f"Every {unit}" if count == 1 else f"Every {count} {unit}s"
        return "Every second" if seconds == 1 else f"Every {seconds} seconds"
    try:
        from cron_descriptor import Options, get_description
    except ImportError:  # the admin extra is not installed: the expression speaks for itself
        return timing.cron
    options = Options()
    options.use_24hour_time_format = True
    try:
        return str(get_description(timing.cron, options))
    except Exception:  # cron-descriptor refuses some of what cronsim accepts
        return timing.cron
