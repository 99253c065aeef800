"""An installation of the original 0.1.10 (migrations 0001 and 0002) upgrades in place."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

UPSTREAM = [("django_simple_queue", "0002_task_error_task_log_task_worker_pid")]


def test_upstream_schema_with_rows_migrates_without_losing_a_row():
    executor = MigrationExecutor(connection)
    executor.migrate([("django_simple_queue", None)])
    executor = MigrationExecutor(connection)
    executor.migrate(UPSTREAM)
    old = executor.loader.project_state(UPSTREAM[0]).apps.get_model("django_simple_queue", "Task")
    assert {f.name for f in old._meta.fields} == {
        "id",
        "created",
        "modified",
        "task",
        "args",
        "status",
        "output",
        "worker_pid",
        "error",
        "log",
    }
    rows = [
        old(
            id=uuid.uuid4(),
            task="tests.tasks.add",
            args=f'{{"a": {i}}}',
            status=i % 5,
            output=str(i),
            worker_pid=100 + i,
            error="e" if i % 5 == 3 else None,
            log="log",
        )
        for i in range(25)
    ]
    old.objects.bulk_create(rows)

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes("django_simple_queue"))

    from django_simple_queue.models import Task

    assert Task.objects.count() == 25
    for row in rows:
        task = Task.objects.get(id=row.id)
        assert (
            task.task,
            task.args,
            task.status,
            task.output,
            task.worker_pid,
            task.error,
            task.log,
        ) == (
            row.task,
            row.args,
            row.status,
            row.output,
            row.worker_pid,
            row.error,
            row.log,
        )
        assert task.queue == "default"
        assert task.attempts == 0
        assert task.max_attempts == 1
    assert Task.objects.ready().count() == 5


def test_no_model_changes_are_missing_a_migration():
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("makemigrations", "django_simple_queue", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


def test_tasks_that_failed_before_the_upgrade_get_the_cause_of_their_errors_last_line():
    before = [("django_simple_queue", "0008_task_trace_context")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before[0]).apps.get_model("django_simple_queue", "Task")
    errors = {
        "Traceback …\n" + "  padding\n" * 500 + "ValueError: bad": "builtins.ValueError",
        "Task timed out after 5 seconds": "builtins.TimeoutError",
        "no traceback here": "unknown",
        None: "unknown",
    }
    failed = [old.objects.create(task="tests.tasks.fail", status=3, error=e) for e in errors]
    completed = old.objects.create(task="tests.tasks.add", status=2, error="ValueError: x")

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes("django_simple_queue"))

    from django_simple_queue.models import Task

    assert [Task.objects.get(id=row.id).exception_type for row in failed] == list(errors.values())
    assert Task.objects.get(id=completed.id).exception_type == ""
