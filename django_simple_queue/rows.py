"""Inserting Task rows on PostgreSQL without the ORM's per-field compilation.

``create_task`` sends its INSERT and the NOTIFY in one statement; ``create_tasks`` streams rows with
COPY. Both are used only where they are equivalent to ``save()``: on PostgreSQL, and while nobody
listens to Task's ``pre_save``/``post_save`` signals. Elsewhere the ORM does the work.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from django.db import connections
from django.db.models import JSONField, signals

from django_simple_queue import db, pgdriver
from django_simple_queue.models import Task
from django_simple_queue.notify import CHANNEL

FIELDS = list(Task._meta.local_concrete_fields)
COLUMNS = ", ".join(f'"{field.column}"' for field in FIELDS)
_JSON = {field.attname for field in FIELDS if isinstance(field, JSONField)}
_STAMPED = {"created", "modified"}
_NAMES = Task.FIELD_NAMES


def applies(using: str) -> bool:
    """Whether a raw INSERT may stand in for ``save()`` here."""
    return connections[using].vendor == "postgresql" and not (
        signals.pre_save.has_listeners(Task) or signals.post_save.has_listeners(Task)
    )


def row(obj: Task, now: datetime) -> list[Any]:
    """The column values of ``obj``, stamping ``created``/``modified`` as ``save()`` would."""
    values = []
    for field in FIELDS:
        name = field.attname
        if name in _STAMPED and (name == "modified" or getattr(obj, name) is None):
            setattr(obj, name, now)
        value = getattr(obj, name)
        if name in _JSON and value is not None:
            value = json.dumps(value)
        values.append(value)
    return values


def binding_cursor(using: str) -> Any:
    """A cursor for the queue's own statements on the ORM's connection ``using`` (``pgdriver``)."""
    wrapper = connections[using]
    wrapper.ensure_connection()
    return pgdriver.driver().cursor(wrapper.connection)


def _saved(objs: Sequence[Task], using: str) -> None:
    for obj in objs:
        obj._state.adding = False
        obj._state.db = using


def insert_one(item: dict[str, Any], using: str) -> uuid.UUID:
    """INSERT a task from its checked field values and NOTIFY the workers: one statement, one round trip."""
    placeholders = ", ".join("%s::jsonb" if f.attname in _JSON else "%s" for f in FIELDS)
    sql = (
        f'WITH inserted AS (INSERT INTO "{Task._meta.db_table}" ({COLUMNS}) VALUES ({placeholders})) '
        "SELECT pg_notify(%s, %s)"
    )
    task_id = uuid.uuid4()
    fields = {**_template(db.now(using)), **_json_ready(item), "id": task_id}
    with binding_cursor(using) as cursor:
        cursor.execute(sql, [*(fields[name] for name in _NAMES), CHANNEL, fields["queue"]])
    return task_id


@functools.cache
def _defaults() -> dict[str, Any]:
    """Every column's default, as ``Task()`` would fill it (the id is drawn per row)."""
    values = {field.attname: field.get_default() for field in FIELDS if field.attname != "id"}
    for name in _JSON:
        if values[name] is not None:
            values[name] = json.dumps(values[name])
    return values


def _json_ready(item: dict[str, Any]) -> dict[str, Any]:
    """``item`` with the values of JSON fields (a Tasks API row's ``positional_args``) as JSON text."""
    if _JSON.isdisjoint(item):
        return item
    return {
        name: json.dumps(value) if name in _JSON and value is not None else value
        for name, value in item.items()
    }


def _template(now: datetime) -> dict[str, Any]:
    return {**_defaults(), "created": now, "modified": now}


def copy_many(items: Sequence[Task | dict[str, Any]], using: str) -> list[uuid.UUID]:
    """Stream tasks into the table with COPY; the caller NOTIFYs and owns the transaction.

    An item is a Task, or a dict of checked field values (``enqueue.checked_values``) that needs no model
    instance at all.
    """
    now = db.now(using)
    template = _template(now)
    ids: list[uuid.UUID] = []

    def values() -> Iterator[list[Any]]:
        for item in items:
            if isinstance(item, Task):
                values = row(item, now)
                _saved([item], using)
                ids.append(item.id)
                yield values
            else:
                task_id = uuid.uuid4()
                fields = {**template, **_json_ready(item), "id": task_id}
                ids.append(task_id)
                yield [fields[name] for name in _NAMES]

    with binding_cursor(using) as cursor:
        pgdriver.driver().copy(
            cursor, f'COPY "{Task._meta.db_table}" ({COLUMNS}) FROM STDIN', values()
        )
    return ids
