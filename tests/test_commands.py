from __future__ import annotations

import subprocess
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from django_simple_queue import lifecycle
from django_simple_queue.management.commands.task_worker import (
    non_negative_int,
    positive_float,
    positive_int,
)
from django_simple_queue.models import Task
from tests.conftest import ROOT, manage, worker_env
from tests.factories import TaskFactory

pytestmark = pytest.mark.django_db


def prune(*args):
    out = StringIO()
    call_command("task_prune", *args, stdout=out)
    return out.getvalue()


def test_prune_deletes_only_finished_tasks_older_than_the_age():
    old = timezone.now() - timedelta(days=40)
    old_done = TaskFactory(completed=True, finished_at=old)
    old_failed = TaskFactory(failed=True, finished_at=old)
    recent = TaskFactory(completed=True)
    queued = TaskFactory()
    running = TaskFactory(running=True)
    assert "2 tasks deleted" in prune("--older-than", "30d", "--batch-size", "1")
    remaining = set(Task.objects.values_list("id", flat=True))
    assert remaining == {recent.id, queued.id, running.id}
    assert not {old_done.id, old_failed.id} & remaining


def test_prune_by_status_and_dry_run():
    old = timezone.now() - timedelta(hours=5)
    TaskFactory(completed=True, finished_at=old)
    failed = TaskFactory(failed=True, finished_at=old)
    assert "1 tasks would be deleted" in prune(
        "--older-than", "1h", "--status", "failed", "--dry-run"
    )
    assert Task.objects.count() == 2
    prune("--older-than", "1h", "--status", "failed")
    assert not Task.objects.filter(id=failed.id).exists()
    assert Task.objects.count() == 1


def test_prune_deletes_the_finished_batches_it_leaves_without_a_task():
    from django_simple_queue.enqueue import create_batch
    from django_simple_queue.models import Batch

    old = timezone.now() - timedelta(days=40)
    emptied = create_batch([{"task": "tests.tasks.add", "args": {"a": 1}}])
    kept_failed = create_batch([{"task": "tests.tasks.add", "args": {"a": 2}}])
    still_open = create_batch([{"task": "tests.tasks.add", "args": {"a": 3}}])
    Task.objects.filter(batch=emptied).update(status=Task.COMPLETED, finished_at=old)
    Task.objects.filter(batch=kept_failed).update(status=Task.FAILED, finished_at=old)
    Batch.objects.exclude(id=still_open).update(finished_at=old)
    out = prune("--older-than", "30d", "--status", "completed")
    assert "1 tasks deleted" in out and "1 batches deleted" in out
    assert set(Batch.objects.values_list("id", flat=True)) == {kept_failed, still_open}


def test_prune_keeps_requeued_copies():
    old = timezone.now() - timedelta(days=40)
    original = TaskFactory(failed=True, finished_at=old)
    copy = TaskFactory(requeued_from=original)
    prune()
    copy.refresh_from_db()
    assert copy.requeued_from is None


def test_prune_rejects_a_bad_age():
    with pytest.raises(CommandError, match="such as 30d"):
        prune("--older-than", "soon")


def reltuples() -> float:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = %s", [Task._meta.db_table])
        return cursor.fetchone()[0]


@pytest.mark.postgres
def test_a_large_prune_refreshes_the_planners_statistics(monkeypatch):
    monkeypatch.setattr(lifecycle.staff, "ANALYZE_AFTER", 100)
    old = timezone.now() - timedelta(days=40)
    TaskFactory.create_batch(150, completed=True, finished_at=old)
    TaskFactory.create_batch(20, completed=True)
    lifecycle.analyze()
    assert reltuples() == 170
    prune("--older-than", "30d", "--status", "completed", "--status", "failed")
    assert reltuples() == 20, "the planner knows the rows are gone"


def test_task_worker_refuses_a_concurrency_of_0_and_exits_2():
    proc = subprocess.run(
        manage("task_worker", "--burst", "--concurrency", "0"),
        env=worker_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "argument --concurrency: must be a whole number of 1 or more, not '0'" in proc.stderr


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--concurrency", "-1"),
        ("--concurrency", "two"),
        ("--max-tasks", "0"),
        ("--max-tasks-per-child", "-1"),
        ("--poll-interval", "0"),
        ("--poll-interval", "-0.5"),
        ("--poll-interval", "nan"),
    ],
)
def test_task_worker_refuses_values_out_of_range(option, value):
    with pytest.raises(CommandError, match=f"argument {option}: must be .*, not '{value}'"):
        call_command("task_worker", "--burst", option, value)


def test_task_worker_option_types_accept_their_bounds():
    assert (positive_int("1"), non_negative_int("0"), positive_float("0.01")) == (1, 0, 0.01)
