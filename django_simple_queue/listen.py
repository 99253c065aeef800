"""LISTEN for enqueue notifications on PostgreSQL, on a connection of its own.

Other databases, and connection poolers in transaction mode that cannot keep a LISTEN, fall back to
polling every POLL_INTERVAL.
"""

from __future__ import annotations

import contextlib
import logging

from django.db import connections

from django_simple_queue import db, pgdriver
from django_simple_queue.notify import CHANNEL

logger = logging.getLogger("django_simple_queue")


class Listener:
    def __init__(self, wrapper: object) -> None:
        self.wrapper = wrapper

    @classmethod
    def open(cls, using: str | None = None) -> Listener | None:
        """A listener on the queue's database, or None where it cannot notify (the worker polls)."""
        using = using or db.alias()
        if connections[using].vendor != "postgresql":
            return None
        wrapper = connections.create_connection(using)
        try:
            wrapper.ensure_connection()
            with wrapper.connection.cursor() as cursor:  # in autocommit: listening at once
                cursor.execute(f"LISTEN {CHANNEL}")
        except Exception as exc:
            logger.warning("LISTEN failed (%s); polling instead", exc)
            with contextlib.suppress(Exception):
                wrapper.close()
            return None
        return cls(wrapper)

    def fileno(self) -> int:
        return int(self.wrapper.connection.fileno())  # type: ignore[attr-defined]

    def drain(self) -> int:
        """Consume pending notifications and say how many there were; they only wake the worker,
        their payload is not used."""
        return pgdriver.driver().drain(self.wrapper.connection)  # type: ignore[attr-defined]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.wrapper.close()  # type: ignore[attr-defined]
