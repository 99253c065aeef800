"""Claims: a worker takes ready tasks (In progress, attempts + 1, a claim token), within the
queues' controls; ``claim_one`` takes one named task, as the original's inline run did."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import F

from django_simple_queue import db, postgres
from django_simple_queue.models import Task
from django_simple_queue.queues import LIMITED_CLAIM_LOCK, Controls


def claim(
    worker_id: str,
    *,
    limit: int = 1,
    queues: Sequence[str] | None = None,
    pid: int | None = None,
    controls: Controls | None = None,
    limited_limit: int | None = None,
) -> list[Task]:
    """Claim up to ``limit`` ready tasks for ``worker_id``; return them marked In progress.

    ``controls`` (read now if not given) names the paused and capped queues and whether tasks with
    a concurrency key wait. Those limited tasks are claimed only under LIMITED_CLAIM_LOCK, by one
    worker at a time, at most ``limited_limit`` of them (the worker's idle children: a worker never
    holds a limited task it cannot start); other tasks as many as ``limit`` allows.
    """
    using = db.alias()
    controls = controls if controls is not None else Controls.read(using)
    now = db.now(using)
    token = uuid.uuid4()
    changes = _claim_changes(token, worker_id, pid, now)
    no_room = limited_limit is not None and limited_limit <= 0
    if not controls.limited or no_room:
        return _claim(using, changes, now, limit, queues, controls, limited=False)
    limited = False
    try:
        with transaction.atomic(using=using):
            limited = _limited_claim_lock(using)
            return _claim(
                using, changes, now, limit, queues, controls, limited=limited, room=limited_limit
            )
    finally:
        if limited:
            _limited_claim_unlock(using)


def _claim(
    using: str,
    changes: dict[str, Any],
    now: datetime,
    limit: int,
    queues: Sequence[str] | None,
    controls: Controls,
    *,
    limited: bool,
    room: int | None = None,
) -> list[Task]:
    if db.connection(using).vendor == "postgresql":
        known = dict(changes)
        del known["attempts"]  # the one change computed by the database
        return postgres.claim(
            using,
            known,
            now=now,
            limit=limit,
            queues=queues,
            controls=controls,
            limited=limited,
            room=room,
        )
    tasks = Task.objects.using(using)
    with transaction.atomic(using=using):
        ready = tasks.ready(now)
        if queues:
            ready = ready.filter(queue__in=queues)
        if controls.paused:
            ready = ready.exclude(queue__in=controls.paused)
        if not limited:
            ready = ready.filter(concurrency_key__isnull=True).exclude(queue__in=controls.caps)
        if db.connection(using).features.has_select_for_update_skip_locked:
            ready = ready.select_for_update(skip_locked=True)
        if limited:
            ids = _within_limits(ready, controls, limit, limit if room is None else room, using)
        else:
            ids = list(ready.values_list("id", flat=True)[:limit])
        if not ids:
            return []
        tasks.filter(id__in=ids, status=Task.QUEUED).update(**changes)
    token = changes["claim_token"]
    return list(tasks.filter(id__in=ids, claim_token=token).order_by("-priority", "created"))


def _within_limits(ready: Any, controls: Controls, limit: int, room: int, using: str) -> list[Any]:
    """The ids of the best ready tasks that fit their concurrency key's and queue's limits, counted
    from what runs now (SQLite and MySQL; PostgreSQL does this in its claim statement)."""
    candidates = list(
        ready.values_list("id", "queue", "concurrency_key", "concurrency_limit")[: limit * 4]
    )
    running = Task.objects.using(using).filter(status=Task.PROGRESS)
    keys = {c[2] for c in candidates if c[2] is not None}
    by_key = Counter(
        running.filter(concurrency_key__in=keys).values_list("concurrency_key", flat=True)
    )
    by_queue = Counter(running.filter(queue__in=controls.caps).values_list("queue", flat=True))
    ids = []
    for task_id, queue, key, key_limit in candidates:
        if key is not None and by_key[key] >= (key_limit or 1):
            continue
        if queue in controls.caps and by_queue[queue] >= controls.caps[queue]:
            continue
        if key is not None or queue in controls.caps:
            if room <= 0:
                continue
            room -= 1
        ids.append(task_id)
        by_key[key] += 1
        by_queue[queue] += 1
        if len(ids) == limit:
            break
    return ids


_MYSQL_LOCK_NAME = f"dsq-{LIMITED_CLAIM_LOCK}"


def _limited_claim_lock(using: str) -> bool:
    """LIMITED_CLAIM_LOCK for this transaction (PostgreSQL) or until released (MySQL). SQLite's
    writers take turns anyway (``transaction_mode`` IMMEDIATE)."""
    vendor = db.connection(using).vendor
    if vendor == "postgresql":
        return postgres.limited_claim_lock(using)
    if vendor == "mysql":
        with db.connection(using).cursor() as cursor:
            cursor.execute("SELECT GET_LOCK(%s, 0)", [_MYSQL_LOCK_NAME])
            row = cursor.fetchone()
        return bool(row and row[0] == 1)
    return True


def _limited_claim_unlock(using: str) -> None:
    if db.connection(using).vendor == "mysql":
        with db.connection(using).cursor() as cursor:
            cursor.execute("SELECT RELEASE_LOCK(%s)", [_MYSQL_LOCK_NAME])


def _claim_changes(
    token: uuid.UUID, worker_id: str, pid: int | None, now: datetime
) -> dict[str, Any]:
    return {
        "status": Task.PROGRESS,
        "claim_token": token,
        "worker_id": worker_id,
        "worker_pid": pid,
        "attempts": F("attempts") + 1,
        "started_at": now,
        "heartbeat_at": now,
        "finished_at": None,
        "cancel_requested": False,
        "progress": None,
        "progress_message": "",
        "output": None,
        "log": None,
        "modified": now,
    }


def claim_one(task: Task, worker_id: str, *, pid: int | None = None) -> bool:
    """Claim this queued (or, as the original allowed, running) task for the calling process."""
    now = db.now()
    token = uuid.uuid4()
    claimed = Task.objects.filter(id=task.id, status=task.status).update(
        **_claim_changes(token, worker_id, pid, now)
    )
    if not claimed:
        return False  # taken meanwhile: the instance keeps no one else's claim token
    task.refresh_from_db()
    task.claim_token = token  # ours, even if someone has claimed it again since
    return True
