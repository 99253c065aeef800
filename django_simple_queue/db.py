"""The queue's database: which connection its statements use, and that database's clock.

Every statement of the queue goes to ``alias()``, the database the project's routers choose for
the Task model (``routers.QueueRouter`` sends it to ``DJANGO_SIMPLE_QUEUE_DATABASE``). Every time
the queue writes or compares (heartbeats, the staleness cut-off, ``run_after``, retry back-off) is
``now()``: the database's clock, so that workers on hosts whose clocks disagree agree on it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import connections, router
from django.utils import timezone

# How each database tells its time, as seconds since the epoch. SQLite is one file on one host:
# its writers share that host's clock, which is used as it is.
_CLOCK_SQL = {
    "postgresql": "SELECT extract(epoch FROM clock_timestamp())",
    "mysql": "SELECT UNIX_TIMESTAMP(NOW(6))",
}
# The database's time is read again after this many seconds of this process's monotonic clock.
REMEASURE_AFTER = 60.0

# alias → (this process's monotonic time, the database's epoch time) at the same instant.
_readings: dict[str, tuple[float, float]] = {}


def alias() -> str:
    """The database holding the queue's rows: the project's routers decide (``default`` else)."""
    from django_simple_queue.models import Task

    return router.db_for_write(Task)


def connection(using: str | None = None) -> Any:
    """The connection of the queue's database (or of ``using``)."""
    return connections[using or alias()]


def now(using: str | None = None) -> datetime:
    """The current time by the queue's database's clock, as ``timezone.now()`` would give it.

    The database is asked once a minute; in between, this process's monotonic clock counts on
    from the last reading (so a host whose own clock is wrong, or jumps, still agrees with its
    peers, and the hot path costs no round trip).
    """
    using = using or alias()
    sql = _CLOCK_SQL.get(connections[using].vendor)
    if sql is None:
        return timezone.now()
    reading = _readings.get(using)
    mono = time.monotonic()
    if reading is None or mono - reading[0] > REMEASURE_AFTER:
        reading = _readings[using] = _read_clock(using, sql)
    epoch = reading[1] + (mono - reading[0])
    if settings.USE_TZ:
        return datetime.fromtimestamp(epoch, tz=UTC)
    return datetime.fromtimestamp(epoch)  # naive local time, as timezone.now() gives it


def _read_clock(using: str, sql: str) -> tuple[float, float]:
    """The database's epoch time paired with the monotonic time halfway through the round trip."""
    with connections[using].cursor() as cursor:
        before = time.monotonic()
        cursor.execute(sql)
        after = time.monotonic()
        (epoch,) = cursor.fetchone()
    return (before + after) / 2, float(epoch)


def forget_clock() -> None:
    """Read the database's clock again at the next ``now()`` (after a reconnection)."""
    _readings.clear()
