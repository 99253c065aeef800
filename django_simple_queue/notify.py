"""Waking idle workers: PostgreSQL NOTIFY on enqueue, delivered when the transaction commits.

Other databases have no such channel; their workers poll every POLL_INTERVAL.
"""

from __future__ import annotations

from django.db import connections

CHANNEL = "django_simple_queue"


def task_enqueued(queue: str, using: str = "default") -> None:
    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, %s)", [CHANNEL, queue])
