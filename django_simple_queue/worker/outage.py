"""Losing and regaining the database: whether the worker is cut off, and when to try again.

While cut off, a worker looks after its children and keeps their outcomes in memory (the recorder);
the supervisor reconnects when ``Outage.due`` says so, and calls ``regained`` once it has.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
from typing import Any

from django.db import DatabaseError, connections

from django_simple_queue import db

logger = logging.getLogger("django_simple_queue")

# After a first reconnection attempt at once (a dropped connection is usually all it was), attempts
# start this far apart and double up to the heartbeat interval (at most MAX_RECONNECT_DELAY), so
# that a worker is back soon after its database, well before peers would take its claims for lost.
FIRST_RECONNECT_DELAY = 0.25
MAX_RECONNECT_DELAY = 5.0


def reconnect_delay(failures: int, heartbeat_interval: float) -> float:
    """Seconds before the next attempt after ``failures`` in a row (jitter not included)."""
    if failures <= 1:
        return 0.0
    ceiling = min(max(heartbeat_interval, FIRST_RECONNECT_DELAY), MAX_RECONNECT_DELAY)
    return min(FIRST_RECONNECT_DELAY * 2 ** (failures - 2), ceiling)


class Outage:
    """The state of the worker's database: reachable, or lost since ``since`` (monotonic)."""

    def __init__(self, heartbeat_interval: float) -> None:
        self.heartbeat_interval = heartbeat_interval
        self.since: float | None = None
        self.failures = 0
        self.retry_at = 0.0

    @property
    def offline(self) -> bool:
        return self.since is not None

    def lost(self, exc: Exception, now: float) -> None:
        """The database failed (again): drop every connection and plan the next attempt."""
        if self.since is None:
            self.since = now
            self.failures = 0
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            logger.warning("database unavailable (%s); tasks go on, reconnecting", first_line)
        self.failures += 1
        for conn in connections.all():
            with contextlib.suppress(DatabaseError):
                conn.close()
        delay = reconnect_delay(self.failures, self.heartbeat_interval)
        # Jitter: workers cut off together do not all come back in the same instant.
        self.retry_at = now + delay * random.uniform(0.5, 1.0)

    def due(self, now: float) -> bool:
        return now >= self.retry_at

    def wait(self, now: float) -> float:
        """Seconds until the next attempt (0 if due)."""
        return max(self.retry_at - now, 0.0)

    def regained(self, now: float) -> float:
        """The database is back: how long it was away."""
        assert self.since is not None
        away, self.since = now - self.since, None
        return away


def connection_usable() -> bool:
    """False when the connection broke; a connection not opened yet will be when needed."""
    try:
        connection = db.connection()
        return connection.connection is None or connection.is_usable()
    except Exception:
        return False


def network_timeouts(stale_after: float) -> dict[str, Any]:
    """libpq options that turn a database call hanging on a lost network into an error.

    A cut link makes TCP calls hang (for 15 minutes, with Linux's defaults), not fail: the worker
    would neither look after its children nor stop when told. With these, a call whose packets go
    unanswered fails after STALE_AFTER / 2, and an idle connection (the LISTEN one) is found dead
    after about STALE_AFTER; the worker then works offline and reconnects when the link is back.
    """
    half = max(math.ceil(stale_after / 2), 1)
    return {
        "connect_timeout": max(half, 2),  # libpq's least
        "tcp_user_timeout": half * 1000,
        "keepalives": 1,
        "keepalives_idle": half,
        "keepalives_interval": max(math.ceil(stale_after / 6), 1),
        "keepalives_count": 3,
    }


def bound_network_waits(stale_after: float) -> None:
    """Set ``network_timeouts`` on the queue database's connections (options set in DATABASES
    win): the supervisor's, its LISTEN connection, and its children's, opened after this."""
    connection = db.connection()
    if connection.vendor != "postgresql":
        return
    options = connection.settings_dict.setdefault("OPTIONS", {})
    for name, value in network_timeouts(stale_after).items():
        options.setdefault(name, value)
    connection.close()
