"""Queue control: pausing a queue, capping its running tasks across every worker, and what the
claim needs to know of it (``Controls``).

A queue has a ``Queue`` row only once it is controlled (``pause``, ``resume``, ``set_cap``); a queue
without one runs freely. Workers read the controls at most once a second (``Controls.read``), so a
pause or a new cap takes effect within a second; the limits themselves (caps, concurrency keys) are
counted by the database inside the claim, under one lock, so they hold across every worker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Q

from django_simple_queue import db, notify
from django_simple_queue.models import Queue, Task

# The advisory lock (PostgreSQL) or named lock (MySQL) that claims of limited tasks take, one worker
# at a time; a worker that does not get it claims only unlimited tasks meanwhile.
LIMITED_CLAIM_LOCK = 0x6473_7131  # "dsq1"


@dataclass(frozen=True)
class Controls:
    """What a claim must respect: paused queues, capped queues, and whether tasks with a
    concurrency key are waiting."""

    paused: frozenset[str] = frozenset()
    caps: dict[str, int] = field(default_factory=dict)
    keyed: bool = False

    @property
    def limited(self) -> bool:
        """Whether some ready tasks can only be claimed under the limited-claim lock."""
        return self.keyed or bool(self.caps)

    @classmethod
    def read(cls, using: str | None = None) -> Controls:
        using = using or db.alias()
        rows = Queue.objects.using(using).filter(Q(paused=True) | Q(max_running__isnull=False))
        paused, caps = set(), {}
        for row in rows.values("name", "paused", "max_running"):
            if row["paused"]:
                paused.add(row["name"])
            elif row["max_running"] is not None:
                caps[row["name"]] = int(row["max_running"])
        keyed = (
            Task.objects.using(using)
            .filter(status=Task.QUEUED, concurrency_key__isnull=False)
            .exists()
        )
        return cls(frozenset(paused), caps, keyed)


def _row(name: str) -> Queue:
    queue, _ = Queue.objects.using(db.alias()).get_or_create(name=name)
    return queue


def pause(name: str) -> bool:
    """Stop workers claiming from ``name`` (running tasks finish); False if it was paused."""
    changed = (
        Queue.objects.using(db.alias()).filter(pk=_row(name).pk, paused=False).update(paused=True)
    )
    return bool(changed)


def resume(name: str) -> bool:
    """Let workers claim from ``name`` again, and wake them; False if it was not paused."""
    using = db.alias()
    changed = Queue.objects.using(using).filter(name=name, paused=True).update(paused=False)
    if changed:
        notify.task_enqueued(name, using)
    return bool(changed)


def set_cap(name: str, max_running: int | None) -> None:
    """Cap the tasks of ``name`` running at once across every worker (None: no cap)."""
    if max_running is not None and (isinstance(max_running, bool) or int(max_running) < 1):
        raise ValueError(f"max_running must be at least 1, or None for no cap, not {max_running}.")
    using = db.alias()
    Queue.objects.using(using).filter(pk=_row(name).pk).update(max_running=max_running)
    notify.task_enqueued(name, using)


def with_controls(rows: dict[str, dict[str, Any]], empty: dict[str, Any]) -> list[dict[str, Any]]:
    """``rows`` (figures by queue name) in name order, each with its ``paused`` and
    ``max_running``; a controlled queue without figures gets ``empty`` ones."""
    controls = {q.name: q for q in Queue.objects.using(db.alias())}
    for name in controls.keys() - rows.keys():
        rows[name] = {"queue": name, **empty}
    return [
        {
            **rows[name],
            "paused": bool(name in controls and controls[name].paused),
            "max_running": controls[name].max_running if name in controls else None,
        }
        for name in sorted(rows)
    ]


def listing() -> list[dict[str, Any]]:
    """Every queue with tasks queued or running, or with controls: depth, running, paused, cap."""
    counts = (
        Task.objects.using(db.alias())
        .filter(status__in=(Task.QUEUED, Task.PROGRESS))
        .values("queue")
        .annotate(
            depth=Count("id", filter=Q(status=Task.QUEUED)),
            running=Count("id", filter=Q(status=Task.PROGRESS)),
        )
    )
    return with_controls({row["queue"]: dict(row) for row in counts}, {"depth": 0, "running": 0})
