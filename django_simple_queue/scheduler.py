"""Every change to a Schedule row: its due ticks enqueued (by whichever worker gets there first),
run now, enabled or disabled, and the schedules declared in settings synced to the table.

Ticks are enqueued exactly once however many workers run: a worker takes the due schedules with
``SELECT … FOR UPDATE SKIP LOCKED``, inserts their tasks and moves ``next_run_at`` on in one
transaction, so a worker killed half-way leaves the schedule as it was for the next one; and the
database refuses a second task for one (schedule, tick). SQLite has no row locks: there the
transaction itself (``transaction_mode`` IMMEDIATE) keeps workers apart, and the constraint catches
the rest. Times are the database's clock (``db.now``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Min, QuerySet

from django_simple_queue import callables, conf, db, enqueue, schedules
from django_simple_queue.exceptions import (
    InvalidTaskArguments,
    InvalidTaskPath,
    TaskNotAllowedError,
)
from django_simple_queue.models import Schedule, Task

logger = logging.getLogger("django_simple_queue")

# Schedules handled per transaction by one worker; the rest wait for its next pass.
PASS_SIZE = 50

# What a schedule declared in settings may say, besides its required "task".
DECLARED_KEYS = {
    "task", "args", "cron", "interval", "timezone", "queue", "priority", "max_attempts",
    "timeout", "misfire", "enabled",
}  # fmt: skip
# The fields a declaration sets on its row (not "enabled": staff may turn a declared one off).
DECLARED_FIELDS = (
    "task", "args", "cron", "interval", "timezone", "queue", "priority", "max_attempts",
    "timeout", "misfire",
)  # fmt: skip

ENQUEUE_ERRORS = (TaskNotAllowedError, InvalidTaskPath, InvalidTaskArguments, TypeError, ValueError)


def build(schedule: Schedule, scheduled_for: datetime | None) -> Task:
    """The task of one tick, checked as every enqueued task is; raises ENQUEUE_ERRORS."""
    task = enqueue.build_task(
        schedule.task,
        schedule.kwargs,
        queue=schedule.queue,
        priority=schedule.priority,
        max_attempts=schedule.max_attempts,
        timeout=schedule.timeout,
        enqueued_by=f"schedule:{schedule.name}",
        backend=tasks_backend(schedule.task),
    )
    task.schedule = schedule
    task.scheduled_for = scheduled_for
    return task


def tasks_backend(path: str) -> str:
    """The alias of our Tasks backend when ``path`` names a Django ``@task``; "" for a function."""
    try:
        from django_simple_queue import backends
    except ImportError:  # no Tasks API on this Django: only plain functions
        return ""
    try:
        found = backends._import_task(path)
    except InvalidTaskPath:
        return ""
    if not isinstance(found, backends.Task):
        return ""
    row = Task(task=path, backend=found.backend)
    backends.load_task(row)  # raises TaskNotAllowedError unless it is one of our backends
    return str(found.backend)


def check(schedule: Schedule) -> None:
    """Raise ``schedules.InvalidSchedule`` or ENQUEUE_ERRORS for a schedule that cannot run."""
    schedule.timing.check()
    schedules.check_misfire(schedule.misfire)
    build(schedule, scheduled_for=None)


def declaration_errors() -> list[str]:
    """What is wrong with each schedule declared in settings (for the system checks)."""
    errors = []
    for name, spec in declared().items():
        try:
            check(from_declaration(name, spec))
        except (schedules.InvalidSchedule, *ENQUEUE_ERRORS) as exc:
            errors.append(f"Schedule '{name}': {exc}")
    return errors


# -- the workers' pass --------------------------------------------------------------------


def enqueue_due(now: datetime | None = None) -> int:
    """Enqueue the due ticks of the schedules no other worker is handling; return tasks made."""
    using = db.alias()
    now = now or db.now(using)
    made = 0
    with transaction.atomic(using=using):
        due = Schedule.objects.using(using).due(now).select_for_update(skip_locked=True)
        for schedule in due[:PASS_SIZE]:
            made += _enqueue_ticks(schedule, now, using)
    return made


def _enqueue_ticks(schedule: Schedule, now: datetime, using: str) -> int:
    assert schedule.next_run_at is not None
    due = schedules.due(schedule.timing, schedule.next_run_at, now, schedule.misfire)
    schedule.next_run_at = due.next_run_at
    made = 0
    try:
        with transaction.atomic(using=using):
            enqueue.create_tasks([build(schedule, tick) for tick in due.ticks])
        made = len(due.ticks)
        schedule.last_error = ""
    except IntegrityError:
        # Those ticks have their tasks already (run-now, or a peer on SQLite).
        logger.info("schedule %s: tick already enqueued", schedule.name)
    except ENQUEUE_ERRORS as exc:
        logger.error("schedule %s cannot enqueue %s: %s", schedule.name, schedule.task, exc)
        schedule.last_error = str(exc)
    if due.ticks:
        schedule.last_run_at = due.ticks[-1]
    if due.missed:
        logger.warning(
            "schedule %s: %d missed run(s) passed over (%s)",
            schedule.name,
            due.missed,
            schedule.misfire,
        )
    schedule.save(update_fields=["next_run_at", "last_run_at", "last_error", "modified"])
    return made


def next_due(using: str | None = None) -> datetime | None:
    """When the earliest enabled schedule runs next (None without any)."""
    using = using or db.alias()
    value = Schedule.objects.using(using).enabled().aggregate(at=Min("next_run_at"))["at"]
    return value if isinstance(value, datetime) else None


# -- staff: run now, enable, disable ---------------------------------------------------------


def run_now(queryset: QuerySet[Schedule]) -> tuple[list[Task], list[tuple[Schedule, str]]]:
    """Enqueue one task now for each schedule (``next_run_at`` unchanged); the tasks made, and the
    schedules refused with the reason."""
    using = db.alias()
    now = db.now(using)
    made, refused = [], []
    for schedule in queryset.using(using):
        try:
            made.append(build(schedule, scheduled_for=now))
        except ENQUEUE_ERRORS as exc:
            refused.append((schedule, str(exc)))
    enqueue.create_tasks(made)
    return made, refused


def set_enabled(queryset: QuerySet[Schedule], enabled: bool) -> int:
    """Turn schedules on or off. One turned on runs from now on: what it missed is not caught up."""
    using = db.alias()
    now = db.now(using)
    changed = 0
    with transaction.atomic(using=using):
        for schedule in queryset.using(using).select_for_update().filter(enabled=not enabled):
            schedule.enabled = enabled
            if enabled:
                schedule.next_run_at = schedule.timing.first_after(now)
            schedule.save(update_fields=["enabled", "next_run_at", "modified"])
            changed += 1
    return changed


def plan(schedule: Schedule, now: datetime | None = None) -> None:
    """Set ``next_run_at`` from the timing, as of now (a new schedule, or its timing changed)."""
    schedule.next_run_at = schedule.timing.first_after(now or db.now())


# -- schedules declared in settings ----------------------------------------------------------


@dataclass
class Synced:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def declared() -> dict[str, Any]:
    value = conf.get("SCHEDULES") or {}
    if not isinstance(value, Mapping):
        raise schedules.InvalidSchedule(
            "DJANGO_SIMPLE_QUEUE_SCHEDULES must be a dict of schedule names to declarations."
        )
    return dict(value)


def from_declaration(name: str, spec: Mapping[str, Any]) -> Schedule:
    """An unsaved Schedule for a declaration; raises InvalidSchedule for a malformed one."""
    if not isinstance(spec, Mapping) or "task" not in spec:
        raise schedules.InvalidSchedule(
            f"Schedule '{name}' must be a dict with at least 'task' and 'cron' or 'interval'."
        )
    unknown = set(spec) - DECLARED_KEYS
    if unknown:
        raise schedules.InvalidSchedule(
            f"Schedule '{name}' has unknown keys {sorted(unknown)}; "
            f"known keys are {sorted(DECLARED_KEYS)}."
        )
    values = {key: spec[key] for key in DECLARED_FIELDS if key in spec}
    values["args"] = callables.dump_args(spec.get("args", {}))
    return Schedule(
        name=name, source=Schedule.SETTINGS, enabled=spec.get("enabled", True), **values
    )


def sync(now: datetime | None = None) -> Synced:
    """Create or update the declared schedules and remove those no longer declared.

    A declared schedule that staff disabled stays disabled; a changed timing runs from now on.
    """
    using = db.alias()
    now = now or db.now(using)
    wanted = {name: from_declaration(name, spec) for name, spec in declared().items()}
    for schedule in wanted.values():
        check(schedule)
    synced = Synced()
    with transaction.atomic(using=using):
        existing = {
            s.name: s for s in Schedule.objects.using(using).select_for_update().order_by("pk")
        }
        for name, schedule in wanted.items():
            row = existing.get(name)
            if row is None:
                plan(schedule, now)
                try:
                    with transaction.atomic(using=using):
                        schedule.save(using=using)
                except IntegrityError:  # a worker starting beside this one made it first
                    continue
                synced.created.append(name)
                continue
            changes = _changes(row, schedule)
            if changes or row.source != Schedule.SETTINGS:
                timing_changed = row.timing != schedule.timing
                for key in changes:
                    setattr(row, key, getattr(schedule, key))
                row.source = Schedule.SETTINGS
                if timing_changed or row.next_run_at is None:
                    plan(row, now)
                row.save(using=using)
                synced.updated.append(name)
        gone = [
            name
            for name, row in existing.items()
            if row.source == Schedule.SETTINGS and name not in wanted
        ]
        Schedule.objects.using(using).filter(name__in=gone).delete()
        synced.removed = gone
    return synced


def _changes(row: Schedule, schedule: Schedule) -> list[str]:
    return [key for key in DECLARED_FIELDS if getattr(row, key) != getattr(schedule, key)]


def describe_all(queryset: Iterable[Schedule]) -> list[dict[str, Any]]:
    """Name, words, next run and enabled of each schedule (the dashboard and ``task_schedules``)."""
    return [
        {
            "name": s.name,
            "task": s.task,
            "when": schedules.describe(s.timing),
            "next_run_at": s.next_run_at,
            "enabled": s.enabled,
            "source": s.source,
        }
        for s in queryset
    ]
