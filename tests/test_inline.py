"""Running one task in the calling process: ``inline.execute_task``, the original's worker."""

from __future__ import annotations

import json
import logging
import os

import pytest

from django_simple_queue.inline import execute_task
from django_simple_queue.models import Task
from django_simple_queue.utils import create_task

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_originals_import_paths_still_work():
    from django_simple_queue import execution, inline, worker

    assert worker.execute_task is inline.execute_task
    assert worker.ManagedEventLoop is execution.ManagedEventLoop


def test_execute_task_runs_in_this_process_with_log_fd(tmp_path):
    task_id = create_task("tests.tasks.noisy", {})
    path = tmp_path / "log.txt"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    level = logging.getLogger().level
    execute_task(task_id, log_fd=fd)
    task = Task.objects.get(id=task_id)
    assert task.status == Task.COMPLETED
    assert task.output == "done"
    assert "to stdout" in path.read_text()
    assert "an info record" in path.read_text()
    assert logging.getLogger().level == level, "the root logger's level is restored"
    assert json.loads(task.args) == {}


def test_execute_task_caps_streamed_output_like_the_worker(settings):
    settings.DJANGO_SIMPLE_QUEUE_MAX_OUTPUT_SIZE = 20
    task_id = create_task("tests.tasks.count_up", {"n": 100})
    execute_task(task_id)
    task = Task.objects.get(id=task_id)
    assert task.status == Task.COMPLETED
    assert task.output == "0;1;2;3;4;5;6;7;8;9;\n… [truncated: more than 20 bytes]"


def test_execute_task_keeps_the_heartbeat_of_its_claim(settings):
    # Else a worker would take the claim for lost after STALE_AFTER and run the task again.
    settings.DJANGO_SIMPLE_QUEUE_HEARTBEAT_INTERVAL = 0.1
    task_id = create_task("tests.tasks.heartbeat_after", {"seconds": 0.6})
    execute_task(task_id)
    task = Task.objects.get(id=task_id)
    assert task.status == Task.COMPLETED, task.error
    assert float(task.output) >= 0.3


def test_a_row_whose_values_miss_the_type_hints_still_runs_and_the_function_judges_them():
    # Queued before the hints were checked (or written by other means): 0.1.x ran it.
    task = Task.objects.create(task="tests.tasks.monthly", args=json.dumps({"month": "5"}))
    execute_task(task.id)
    task.refresh_from_db()
    assert (task.status, task.output) == (Task.COMPLETED, "5:")
