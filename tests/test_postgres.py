"""The PostgreSQL-only statements (postgres.py): INSERT + NOTIFY, COPY, the claim, the batch finish,
and the ORM doing the same work wherever they do not apply."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.models.signals import post_save

from django_simple_queue import lifecycle, postgres
from django_simple_queue.enqueue import build_task, create_task, create_tasks
from django_simple_queue.models import Task


@pytest.mark.django_db
def test_create_task_row_matches_save_and_instance_is_saved():
    task_id = create_task("tests.tasks.add", {"a": 2}, priority=1)
    row = Task.objects.get(id=task_id)
    assert (row.task, row.args, row.priority, row.status, row.attempt_log) == (
        "tests.tasks.add",
        '{"a": 2}',
        1,
        0,
        [],
    )
    assert row.created is not None


@pytest.mark.django_db
def test_rows_from_create_tasks_match_what_save_writes():
    saved = build_task(
        "tests.tasks.add", {"a": 1}, queue="other", priority=3, max_attempts=2, timeout=9
    )
    saved.save()
    (copied_id,) = create_tasks(
        [
            {
                "task": "tests.tasks.add",
                "args": {"a": 1},
                "queue": "other",
                "priority": 3,
                "max_attempts": 2,
                "timeout": 9,
            }
        ]
    )
    (from_instance_id,) = create_tasks(
        [
            build_task(
                "tests.tasks.add", {"a": 1}, queue="other", priority=3, max_attempts=2, timeout=9
            )
        ]
    )
    skip = {"id", "created", "modified"}
    fields = [f.attname for f in Task._meta.concrete_fields if f.attname not in skip]
    expected = Task.objects.filter(id=saved.id).values(*fields).get()
    assert Task.objects.filter(id=copied_id).values(*fields).get() == expected
    assert Task.objects.filter(id=from_instance_id).values(*fields).get() == expected
    copied = Task.objects.get(id=copied_id)
    assert copied.created is not None and copied.modified is not None


@pytest.mark.django_db
def test_bulk_enqueue_keeps_separators_backslashes_and_empty_strings():
    tricky = "tab\there\nnewline\rreturn \\N backslash \\ é"
    run_after = datetime(2030, 1, 2, 3, 4, 5, 600000, tzinfo=UTC)
    ids = create_tasks(
        [
            {"task": "tests.tasks.add", "args": {"a": tricky}, "enqueued_by": tricky},
            build_task("tests.tasks.add", {"a": 1}, enqueued_by="", run_after=run_after),
        ]
    )
    first, second = (Task.objects.get(id=task_id) for task_id in ids)
    assert first.enqueued_by == tricky
    assert first.kwargs == {"a": tricky}
    assert (first.attempt_log, first.positional_args) == ([], [])
    assert (second.enqueued_by, second.run_after, second.progress) == ("", run_after, None)


@pytest.mark.django_db
def test_save_signals_are_kept_by_falling_back_to_the_orm():
    saved: list[object] = []

    def receiver(sender, instance, created, **kwargs):
        saved.append((instance.id, created))

    post_save.connect(receiver, sender=Task)
    try:
        one = create_task("tests.tasks.add", {"a": 1})
        create_tasks([{"task": "tests.tasks.add", "args": {"a": 2}}])
    finally:
        post_save.disconnect(receiver, sender=Task)
    assert (one, True) in saved
    assert Task.objects.count() == 2


def _claim_rate(claims: int = 60) -> float:
    """Tasks claimed per second by ``claims`` claims of 10 (the claims are given back)."""
    import time

    started = time.perf_counter()
    taken = 0
    for _ in range(claims):
        tasks = lifecycle.claim("bench", limit=10)
        taken += len(tasks)
        lifecycle.release(tasks)
    return taken / (time.perf_counter() - started)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_claim_keeps_its_plan_when_statistics_say_the_table_is_empty():
    """The soak's collapse: an ANALYZE while a bulk enqueue was uncommitted recorded the table as
    empty after a prune, and the claim was planned as a walk of the whole table (with the claim
    written as ``id IN (SELECT …)``: 253 against 833 tasks/s here; now about the same).

    With stale statistics the claim still reads every ready row (a bitmap scan and a sort, not the
    ready index in order): 4,000 of them keep that cost well apart from the walk's."""
    table = Task._meta.db_table
    # What a prune leaves: a table whose pages held many rows.
    create_tasks([{"task": "tests.tasks.add", "args": {"a": n}} for n in range(60_000)])
    Task.objects.all().delete()
    enqueued, analyzed = threading.Event(), threading.Event()

    def enqueue_uncommitted() -> None:
        from django.db import connections, transaction

        with transaction.atomic():
            create_tasks([{"task": "tests.tasks.add", "args": {"a": n}} for n in range(4_000)])
            enqueued.set()
            analyzed.wait(60)
        connections.close_all()

    thread = threading.Thread(target=enqueue_uncommitted)
    thread.start()
    assert enqueued.wait(120)
    with connection.cursor() as cursor:
        cursor.execute(f'ANALYZE "{table}"')
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = %s", [table])
        assert cursor.fetchone()[0] <= 0, "the statistics say the table is empty"
    analyzed.set()
    thread.join()
    stale = _claim_rate()
    with connection.cursor() as cursor:
        cursor.execute(f'ANALYZE "{table}"')
    fresh = _claim_rate()
    assert stale >= fresh / 2, f"{stale:.0f} tasks/s with stale statistics, {fresh:.0f} with fresh"


def test_the_claim_keeps_its_tuned_statement():
    sql, returned = postgres._claim_sql(frozenset({"status", "claim_token", "modified"}))
    assert "WHERE t.id = ANY(ARRAY(" in sql
    assert "{ready}" in sql
    assert "LIMIT %(limit)b\n    FOR UPDATE SKIP LOCKED" in postgres._READY
    assert "FOR UPDATE OF q SKIP LOCKED" in postgres._LIMITED_READY
    assert '"status" = %(status)b' in sql and "attempts = t.attempts + 1" in sql
    assert "status" not in returned and "attempts" in returned
    assert postgres._claim_sql(frozenset({"status"})) is postgres._claim_sql(frozenset({"status"}))


@pytest.mark.django_db
def test_the_fast_inserts_apply_on_postgresql_only():
    assert postgres.applies(connection.alias) == (connection.vendor == "postgresql")


@pytest.mark.django_db
def test_bulk_rows_of_the_tasks_api_keep_their_positional_arguments_as_json():
    (task_id,) = create_tasks(
        [{"task": "tests.tasks.add", "args": {"b": 2}, "backend": "x", "positional_args": [1]}]
    )
    row = Task.objects.get(id=task_id)
    assert (row.backend, row.positional_args, row.kwargs) == ("x", [1], {"b": 2})
