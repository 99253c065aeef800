"""The PostgreSQL-only statements of the queue: the claim, the batch finish, INSERT + NOTIFY, COPY,
the insert of dependencies.

Each is used only where it is equivalent to the portable code in ``lifecycle`` and ``enqueue``: on
PostgreSQL and, for inserts, while nobody listens to Task's ``pre_save``/``post_save`` signals.
They run on a cursor of the ORM's own connection (``binding_cursor``), in its transaction, written
once for psycopg 3 (``%(name)b``: binary parameters) and run through psycopg2 by ``pgdriver``. The
SQL was tuned against the soak's plans and the benchmarks: change it with them (docs/performance.md).
NOTIFY alone is in ``notify``, LISTEN in ``listen``.
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
from django_simple_queue.models import Dependency, Task
from django_simple_queue.notify import CHANNEL
from django_simple_queue.queues import LIMITED_CLAIM_LOCK, Controls

FIELDS = list(Task._meta.local_concrete_fields)
COLUMNS = ", ".join(f'"{field.column}"' for field in FIELDS)
_JSON = {field.attname for field in FIELDS if isinstance(field, JSONField)}
_STAMPED = {"created", "modified"}
_NAMES = Task.FIELD_NAMES
# The predicate of the partial unique index dsq_task_unique_active (models.py).
UNIQUE_ACTIVE = f"(status IN ({Task.QUEUED}, {Task.PROGRESS}) AND unique_key IS NOT NULL)"


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


def insert_one(item: dict[str, Any], using: str, *, unique: bool = False) -> uuid.UUID | None:
    """INSERT a task from its checked field values and NOTIFY the workers: one statement, one round
    trip. With ``unique``, nothing is written (and None returned) while an active task holds its
    ``unique_key``: the partial unique index decides, waiting for a concurrent insert's outcome."""
    placeholders = ", ".join("%s::jsonb" if f.attname in _JSON else "%s" for f in FIELDS)
    conflict = f" ON CONFLICT (unique_key) WHERE {UNIQUE_ACTIVE} DO NOTHING" if unique else ""
    sql = (
        f'WITH inserted AS (INSERT INTO "{Task._meta.db_table}" ({COLUMNS}) '
        f"VALUES ({placeholders}){conflict} RETURNING id) "
        "SELECT pg_notify(%s, %s) FROM inserted"
    )
    task_id = item["id"] if "id" in item else uuid.uuid4()
    fields = {**_template(db.now(using)), **_json_ready(item), "id": task_id}
    with binding_cursor(using) as cursor:
        cursor.execute(sql, [*(fields[name] for name in _NAMES), CHANNEL, fields["queue"]])
        written = cursor.fetchone() is not None
    return task_id if written else None


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
                task_id = item["id"] if "id" in item else uuid.uuid4()
                fields = {**template, **_json_ready(item), "id": task_id}
                ids.append(task_id)
                yield [fields[name] for name in _NAMES]

    with binding_cursor(using) as cursor:
        pgdriver.driver().copy(
            cursor, f'COPY "{Task._meta.db_table}" ({COLUMNS}) FROM STDIN', values()
        )
    return ids


def insert_dependencies(using: str, edges: Sequence[tuple[uuid.UUID, uuid.UUID]]) -> None:
    """Write Dependency rows (task, depends_on) in one statement, seven times as fast as ``bulk_create``."""
    sql = (
        f'INSERT INTO "{Dependency._meta.db_table}" (task_id, depends_on_id) '
        "SELECT * FROM unnest(%(tasks)b::uuid[], %(dependencies)b::uuid[])"
    )
    params = {"tasks": [task for task, _ in edges], "dependencies": [dep for _, dep in edges]}
    with binding_cursor(using) as cursor:
        cursor.execute(sql, params)


def take_pending(using: str, ids: Sequence[uuid.UUID]) -> list[tuple[Any, ...]]:
    """Clear ``settle_pending`` on the tasks ``ids`` that have it, locking them until the caller's
    transaction ends; (id, status, batch id, waited_on) of each (``workflows.settle_pending``)."""
    sql = (
        f'UPDATE "{Task._meta.db_table}" SET settle_pending = false '
        "WHERE id = ANY(%(ids)b) AND settle_pending RETURNING id, status, batch_id, waited_on"
    )
    with binding_cursor(using) as cursor:
        cursor.execute(sql, {"ids": list(ids)})
        return list(cursor.fetchall())


# Claiming and finishing.


@functools.cache
def _claim_sql(known: frozenset[str]) -> tuple[str, list[str]]:
    """The one-statement claim: lock ready rows (skipping locked ones), mark them, return them.

    The ids are an array computed once (an InitPlan), before the UPDATE looks at the table: its
    plan is then a look-up of those ids by primary key whatever the statistics say. Written as
    ``id IN (SELECT …)``, stale statistics (an ANALYZE during an uncommitted bulk enqueue, after a
    prune) made it a walk of the whole table, and a re-run subquery may lock more than ``limit``.

    ``known`` names the changes whose values are known beforehand (``lifecycle.claiming._claim_changes``): each is a
    parameter of the same name. The row returns only the other columns: parsing those back would
    cost more than the rest of the row.
    """
    table = Task._meta.db_table
    columns = {f.attname: f.column for f in Task._meta.concrete_fields}
    assignments = ", ".join(f'"{columns[name]}" = %({name})b' for name in sorted(known))
    returning = ", ".join(f't."{column}"' for name, column in columns.items() if name not in known)
    sql = f"""
        UPDATE "{table}" AS t SET {assignments}, attempts = t.attempts + 1
        WHERE t.id = ANY(ARRAY({{ready}}))
        RETURNING {returning}
    """
    return sql, [name for name in columns if name not in known]


_TABLE = Task._meta.db_table
# The ready tasks to claim, best first, skipping those other workers are claiming.
_READY = f"""
    SELECT id FROM "{_TABLE}"
    WHERE status = {Task.QUEUED} AND (run_after IS NULL OR run_after <= %(now)b) {{queues}}
    ORDER BY priority DESC, created
    LIMIT %(limit)b
    FOR UPDATE SKIP LOCKED
"""
# The same, counting what runs of each concurrency key and capped queue: a task whose key or queue
# is full is passed over before the LIMIT (it holds nothing back), and within the claim each key and
# queue gets only the slots it has left (the row_number()s).
_RUNNING_OF_KEY = (
    f'(SELECT count(*) FROM "{_TABLE}" r WHERE r.status = {Task.PROGRESS} '
    "AND r.concurrency_key = q.concurrency_key)"
)
_RUNNING_OF_QUEUE = (
    f'(SELECT count(*) FROM "{_TABLE}" r WHERE r.status = {Task.PROGRESS} AND r.queue = q.queue)'
)
_LIMITED_READY = f"""
    SELECT id FROM (
        SELECT r.*,
            count(*) FILTER (WHERE r.concurrency_key IS NOT NULL OR r.cap IS NOT NULL)
                OVER (ORDER BY r.priority DESC, r.created, r.id ROWS UNBOUNDED PRECEDING)
                AS limited_rank
        FROM (
            SELECT c.*,
                row_number() OVER (
                    PARTITION BY c.concurrency_key ORDER BY c.priority DESC, c.created, c.id
                ) AS key_rank,
                row_number() OVER (
                    PARTITION BY c.queue ORDER BY c.priority DESC, c.created, c.id
                ) AS queue_rank
            FROM (
                SELECT q.id, q.priority, q.created, q.queue, q.concurrency_key,
                    q.concurrency_limit, caps.cap,
                    CASE WHEN q.concurrency_key IS NULL THEN 0 ELSE {_RUNNING_OF_KEY} END
                        AS key_running,
                    CASE WHEN caps.cap IS NULL THEN 0 ELSE {_RUNNING_OF_QUEUE} END
                        AS queue_running
                FROM "{_TABLE}" q
                LEFT JOIN unnest(%(cap_names)b::varchar[], %(cap_values)b::integer[])
                    AS caps(name, cap) ON caps.name = q.queue
                WHERE q.status = {Task.QUEUED}
                    AND (q.run_after IS NULL OR q.run_after <= %(now)b) {{queues}}
                    AND (q.concurrency_key IS NULL OR {_RUNNING_OF_KEY} < q.concurrency_limit)
                    AND (caps.cap IS NULL OR {_RUNNING_OF_QUEUE} < caps.cap)
                ORDER BY q.priority DESC, q.created
                LIMIT %(scan)b
                FOR UPDATE OF q SKIP LOCKED
            ) c
        ) r
        WHERE (r.concurrency_key IS NULL OR r.key_running + r.key_rank <= r.concurrency_limit)
            AND (r.cap IS NULL OR r.queue_running + r.queue_rank <= r.cap)
    ) fits
    WHERE (concurrency_key IS NULL AND cap IS NULL) OR limited_rank <= %(room)b
    ORDER BY priority DESC, created
    LIMIT %(limit)b
"""


def claim(
    using: str,
    known: dict[str, Any],
    *,
    now: datetime,
    limit: int,
    queues: Sequence[str] | None,
    controls: Controls,
    limited: bool,
    room: int | None = None,
) -> list[Task]:
    """Claim up to ``limit`` ready tasks in one statement, writing ``known`` (the claim's changes
    but ``attempts``, which the database counts); the tasks in claim order.

    Without ``limited``, tasks with a concurrency key and tasks of capped queues are left for a
    limited claim: that one (the caller holds LIMITED_CLAIM_LOCK in its transaction) counts what
    runs of each key and capped queue, so that no claim takes more than the limits allow, and
    takes at most ``room`` limited tasks (others as many as ``limit`` allows).
    """
    sql, attnames = _claim_sql(frozenset(known))
    params: dict[str, Any] = {**known, "now": now, "limit": limit}
    conditions = []
    if queues:
        params["queues"] = list(queues)
        conditions.append("AND queue = ANY(%(queues)b)")
    if controls.paused:
        params["paused"] = sorted(controls.paused)
        conditions.append("AND NOT queue = ANY(%(paused)b)")
    if limited:
        params.update(
            cap_names=list(controls.caps),
            cap_values=list(controls.caps.values()),
            scan=limit * 4,
            room=limit if room is None else room,
        )
        sql = sql.replace("{ready}", _LIMITED_READY)
    else:
        conditions.append("AND concurrency_key IS NULL")
        if controls.caps:
            params["capped"] = list(controls.caps)
            conditions.append("AND NOT queue = ANY(%(capped)b)")
        sql = sql.replace("{ready}", _READY)
    sql = sql.replace("{queues}", " ".join(conditions))
    with binding_cursor(using) as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    # The ORM's converters (JSON fields) still apply: from_db after the backend's own conversion.
    converters = _row_converters(attnames)
    connection = db.connection(using)
    tasks = []
    for row in rows:
        values = dict(zip(attnames, _convert(row, converters, connection), strict=True))
        values.update(known)
        tasks.append(Task.from_db(using, Task.FIELD_NAMES, [values[n] for n in Task.FIELD_NAMES]))
    tasks.sort(key=lambda task: (-task.priority, task.created))
    return tasks


def limited_claim_lock(using: str) -> bool:
    """Take LIMITED_CLAIM_LOCK until the end of the caller's transaction, if no one holds it."""
    with binding_cursor(using) as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%(key)b)", {"key": LIMITED_CLAIM_LOCK})
        row = cursor.fetchone()
    return bool(row and row[0])


def _row_converters(attnames: Sequence[str]) -> list[tuple[int, Any]]:
    fields = {f.attname: f for f in Task._meta.concrete_fields}
    converters = [
        (i, getattr(fields[name], "from_db_value", None)) for i, name in enumerate(attnames)
    ]
    return [(i, convert) for i, convert in converters if convert is not None]


def _convert(row: Sequence[Any], converters: list[tuple[int, Any]], connection: Any) -> list[Any]:
    values = list(row)
    for i, convert in converters:
        values[i] = convert(values[i], None, connection)
    return values


def finish_many(
    using: str,
    tasks: Sequence[Task],
    decided: Sequence[tuple[int, dict[str, Any]]],
    now: datetime,
) -> dict[uuid.UUID, bool]:
    """Record each task's decided status and changes in one statement, fenced per row by its claim
    token; the rows written (a claim lost meanwhile is left alone), each id with whether it is left
    to settle: an ending of a task in a batch, or that a task waits for (``waited_on``, read after
    any lock an enqueue of such a task held: ``workflows``)."""
    table = Task._meta.db_table
    # A column left out of a task's changes keeps its value: the *_set flags say which were given.
    columns: dict[str, list[Any]] = {
        name: []
        for name in (
            "id",
            "token",
            "status",
            "attempt_log",
            "run_after",
            "error",
            "exception_type",
            "return_value",
            "output",
            "log",
        )
    }
    flags: dict[str, list[bool]] = {"output": [], "log": [], "progress": []}
    for task, (status, changes) in zip(tasks, decided, strict=True):
        columns["id"].append(task.id)
        columns["token"].append(task.claim_token)
        columns["status"].append(status)
        columns["attempt_log"].append(json.dumps(changes["attempt_log"]))
        columns["run_after"].append(changes.get("run_after"))
        columns["error"].append(changes.get("error"))
        columns["exception_type"].append(changes["exception_type"])
        value = changes.get("return_value")
        columns["return_value"].append(None if value is None else json.dumps(value))
        columns["output"].append(changes.get("output"))
        columns["log"].append(changes.get("log"))
        flags["output"].append("output" in changes)
        flags["log"].append("log" in changes)
        flags["progress"].append("progress" in changes)
    sql = f"""
        UPDATE "{table}" AS t SET
            status = v.status, modified = %(now)b, heartbeat_at = NULL, worker_pid = NULL,
            attempt_log = v.attempt_log::jsonb, error = v.error, exception_type = v.exception_type,
            claim_token = CASE WHEN v.status = {Task.QUEUED} THEN NULL ELSE t.claim_token END,
            run_after = CASE WHEN v.status = {Task.QUEUED} THEN v.run_after ELSE t.run_after END,
            finished_at = CASE WHEN v.status = {Task.QUEUED} THEN t.finished_at ELSE %(now)b END,
            return_value = CASE WHEN v.status = {Task.QUEUED} THEN t.return_value ELSE v.return_value::jsonb END,
            progress = CASE WHEN v.status = {Task.QUEUED} THEN NULL
                            WHEN v.progress_set THEN 1.0 ELSE t.progress END,
            progress_message = CASE WHEN v.status = {Task.QUEUED} THEN '' ELSE t.progress_message END,
            output = CASE WHEN v.output_set THEN v.output ELSE t.output END,
            log = CASE WHEN v.log_set THEN v.log ELSE t.log END,
            settle_pending = v.status <> {Task.QUEUED} AND (t.waited_on OR t.batch_id IS NOT NULL)
        FROM unnest(
            %(id)b::uuid[], %(token)b::uuid[], %(status)b::int[], %(attempt_log)b::text[],
            %(run_after)b::timestamptz[], %(error)b::text[], %(exception_type)b::text[],
            %(return_value)b::text[], %(output)b::text[], %(log)b::text[], %(output_set)b::bool[],
            %(log_set)b::bool[], %(progress_set)b::bool[]
        ) AS v(id, token, status, attempt_log, run_after, error, exception_type, return_value,
               output, log, output_set, log_set, progress_set)
        WHERE t.id = v.id AND t.claim_token = v.token AND t.status = {Task.PROGRESS}
        RETURNING t.id, t.settle_pending
    """
    params: dict[str, Any] = {"now": now, **columns}
    params.update({f"{name}_set": values for name, values in flags.items()})
    with binding_cursor(using) as cursor:
        cursor.execute(sql, params)
        return dict(cursor.fetchall())
