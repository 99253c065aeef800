from __future__ import annotations

import os
import socket
import subprocess

import pytest

from django_simple_queue import monitor, signals
from django_simple_queue.models import Task
from tests.factories import TaskFactory

pytestmark = pytest.mark.django_db


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_detect_orphaned_tasks_fails_dead_same_host_pids_only():
    host = socket.gethostname()
    dead = TaskFactory(running=True, worker_pid=dead_pid(), worker_id=f"{host}:1")
    legacy = TaskFactory(running=True, worker_pid=dead_pid(), worker_id="")
    alive = TaskFactory(running=True, worker_pid=os.getpid(), worker_id=f"{host}:2")
    elsewhere = TaskFactory(running=True, worker_pid=dead_pid(), worker_id="otherhost:1")
    orphaned = monitor.detect_orphaned_tasks()
    assert {task.id for task in orphaned} == {dead.id, legacy.id}, "what the worker says"
    for task in (dead, legacy, alive, elsewhere):
        task.refresh_from_db()
    assert dead.status == Task.FAILED and dead.worker_pid is None
    assert dead.error.endswith("no longer running")
    assert legacy.status == Task.FAILED
    assert alive.status == Task.PROGRESS
    assert elsewhere.status == Task.PROGRESS


@pytest.mark.django_db(transaction=True)
def test_a_raising_receiver_does_not_stop_the_other_orphans_from_failing(caplog):
    host = socket.gethostname()
    orphans = [
        TaskFactory(running=True, worker_pid=dead_pid(), worker_id=f"{host}:{i}") for i in range(2)
    ]
    heard = []

    def broken(sender, task, error, **kwargs):
        heard.append(task.id)
        raise RuntimeError("receiver bug")

    signals.on_failure.connect(broken)
    try:
        monitor.detect_orphaned_tasks()
    finally:
        signals.on_failure.disconnect(broken)
    assert set(Task.objects.values_list("status", flat=True)) == {Task.FAILED}
    assert sorted(heard) == sorted(task.id for task in orphans)
    assert len([r for r in caplog.records if r.name == "django_simple_queue"]) == 2


def test_handle_subprocess_exit():
    ok = TaskFactory(running=True)
    bad = TaskFactory(running=True)
    monitor.handle_subprocess_exit(ok.id, 0)
    monitor.handle_subprocess_exit(bad.id, 9)
    ok.refresh_from_db()
    bad.refresh_from_db()
    assert ok.status == Task.PROGRESS
    assert bad.status == Task.FAILED and "exited with code 9" in bad.error


@pytest.mark.django_db(transaction=True)
def test_handle_task_timeout_fails_with_timeout_error():
    errors = []

    def failure(sender, task, error, **kwargs):
        errors.append(error)

    signals.on_failure.connect(failure)
    try:
        task = TaskFactory(running=True)
        monitor.handle_task_timeout(task.id, 5)
    finally:
        signals.on_failure.disconnect(failure)
    task.refresh_from_db()
    assert task.status == Task.FAILED
    assert "Task timed out after 5 seconds" in task.error
    assert isinstance(errors[0], TimeoutError)


@pytest.mark.parametrize("max_attempts", [1, 2])
def test_legacy_running_rows_count_as_one_attempt_in_every_verdict(max_attempts):
    """A row left In progress with no attempt counted has had one: the original failed it."""
    orphan = TaskFactory(legacy_running=True, worker_pid=dead_pid(), max_attempts=max_attempts)
    exited = TaskFactory(legacy_running=True, max_attempts=max_attempts)
    timed_out = TaskFactory(legacy_running=True, max_attempts=max_attempts)
    monitor.detect_orphaned_tasks()
    monitor.handle_subprocess_exit(exited.id, 1)
    monitor.handle_task_timeout(timed_out.id, 5)
    expected = Task.FAILED if max_attempts == 1 else Task.QUEUED
    for task, message in [
        (orphan, "no longer running"),
        (exited, "exited with code 1"),
        (timed_out, "timed out after 5 seconds"),
    ]:
        task.refresh_from_db()
        assert task.status == expected, message
        assert task.attempts == 1
        assert message in task.error
        assert task.worker_pid is None
        assert task.attempt_log[-1]["attempt"] == 1


def test_a_timeout_and_a_dead_subprocess_name_their_cause():
    timed_out = TaskFactory(running=True)
    exited = TaskFactory(running=True)
    monitor.handle_task_timeout(timed_out.id, 5)
    monitor.handle_subprocess_exit(exited.id, 9)
    assert Task.objects.get(id=timed_out.id).exception_type == "builtins.TimeoutError"
    assert (
        Task.objects.get(id=exited.id).exception_type == "django_simple_queue.backends.WorkerLost"
    )
