"""A running worker's own row (``models.Worker``): created at its start, refreshed at each
heartbeat, deleted at its clean exit; what the dashboard and the health report call alive.

The supervisor calls these; nothing else writes the table (staff may delete a lost row in the
admin). Every time is the queue database's clock.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction

import django_simple_queue
from django_simple_queue import conf, db
from django_simple_queue.exceptions import WorkerNameTaken
from django_simple_queue.models import Worker
from django_simple_queue.monitor import pid_alive

logger = logging.getLogger("django_simple_queue")

# A lost worker's row is shown (state "lost") this long after it was last seen, then removed by
# the next worker's heartbeat.
FORGET_LOST_AFTER = timedelta(hours=1)


@dataclass
class Identity:
    """Who a worker is, as its row says."""

    name: str
    queues: Sequence[str] = ()
    concurrency: int = 1
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    # Set by ``register``: when this worker's row was first written.
    started: datetime | None = None


def _values(identity: Identity, now: datetime) -> dict[str, object]:
    return {
        "host": identity.host[:255],
        "pid": identity.pid,
        "queues": list(identity.queues),
        "concurrency": identity.concurrency,
        "version": django_simple_queue.__version__,
        "started": identity.started or now,
        "last_seen": now,
        "tasks_running": 0,
        "tasks_done": 0,
    }


def _ours_to_take(row: Worker, identity: Identity) -> bool:
    """Whether a live row of this name may be taken over: it is this process's, or that of a
    process of this host that is gone (a worker restarted under its --name)."""
    if row.host != identity.host:
        return False
    return row.pid == identity.pid or not pid_alive(row.pid)


def register(identity: Identity) -> None:
    """Write the row of a worker that starts; sets ``identity.started``.

    Raises ``WorkerNameTaken`` if a live worker elsewhere has that name: two workers with one
    name would take each other's claims for their own.
    """
    using = db.alias()
    now = db.now(using)
    workers = Worker.objects.using(using)
    identity.started = None
    try:
        with transaction.atomic(using=using):
            row = workers.select_for_update().filter(name=identity.name).first()
            live = row is not None and row.last_seen >= _cutoff(now)
            if row is not None and live and not _ours_to_take(row, identity):
                raise WorkerNameTaken(
                    f"Another worker named {identity.name!r} is running (host {row.host}, "
                    f"pid {row.pid}, last seen {(now - row.last_seen).total_seconds():.0f}s "
                    "ago): give this one another --name."
                )
            values = _values(identity, now)
            if row is None:
                workers.create(name=identity.name, **values)
            else:
                workers.filter(pk=row.pk).update(**values)
    except IntegrityError as exc:  # another worker of that name registered at the same moment
        raise WorkerNameTaken(f"Another worker named {identity.name!r} has just started.") from exc
    identity.started = now


def beat(identity: Identity, *, running: int, done: int) -> None:
    """Refresh the row at a heartbeat: one UPDATE. A row gone meanwhile (deleted in the admin,
    or forgotten while this worker was cut off) is written again."""
    using = db.alias()
    now = db.now(using)
    mine = Worker.objects.using(using).filter(
        name=identity.name, host=identity.host[:255], pid=identity.pid
    )
    if mine.update(last_seen=now, tasks_running=running, tasks_done=done):
        return
    values = {**_values(identity, now), "tasks_running": running, "tasks_done": done}
    try:
        with transaction.atomic(using=using):
            Worker.objects.using(using).create(name=identity.name, **values)
        identity.started = identity.started or now
    except IntegrityError:
        logger.warning(
            "another worker has taken the name %r: give each worker a name of its own",
            identity.name,
        )


def unregister(identity: Identity) -> None:
    """Delete the row of a worker that exits cleanly."""
    Worker.objects.using(db.alias()).filter(
        name=identity.name, host=identity.host[:255], pid=identity.pid
    ).delete()


def forget_lost(now: datetime | None = None) -> int:
    """Delete the rows of workers lost for longer than FORGET_LOST_AFTER; return how many."""
    using = db.alias()
    now = now or db.now(using)
    gone = Worker.objects.using(using).filter(last_seen__lt=now - FORGET_LOST_AFTER)
    return int(gone.delete()[0])


def _cutoff(now: datetime) -> datetime:
    return now - timedelta(seconds=float(conf.get("STALE_AFTER")))
