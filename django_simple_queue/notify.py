"""Waking idle workers: PostgreSQL NOTIFY on enqueue, delivered when the transaction commits.

Other databases have no such channel; their workers poll every POLL_INTERVAL.
"""

from __future__ import annotations

from django.db import connections

from django_simple_queue import db

CHANNEL = "django_simple_queue"


def task_enqueued(queue: str, using: str | None = None) -> None:
    """Wake the workers listening on the queue's database (``using``: its alias, if known)."""
    connection = connections[using or db.alias()]
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, %s)", [CHANNEL, queue])
