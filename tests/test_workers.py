"""A worker's own row (``workers.py``), and what it changes about rescue (``Task.objects.stale``)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.utils import timezone

import django_simple_queue
from django_simple_queue import lifecycle, workers
from django_simple_queue.exceptions import WorkerNameTaken
from django_simple_queue.models import Task, Worker
from tests.factories import TaskFactory, WorkerFactory

pytestmark = pytest.mark.django_db


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_register_beat_and_unregister_keep_one_row():
    me = workers.Identity("w-1", queues=["mail"], concurrency=3, host="h", pid=os.getpid())
    workers.register(me)
    row = Worker.objects.get()
    assert (row.name, row.host, row.pid, row.queues, row.concurrency) == (
        "w-1",
        "h",
        me.pid,
        ["mail"],
        3,
    )
    assert row.version == django_simple_queue.__version__
    assert row.started == row.last_seen == me.started
    workers.beat(me, running=2, done=7)
    row.refresh_from_db()
    assert (row.tasks_running, row.tasks_done) == (2, 7)
    assert row.last_seen > row.started
    workers.unregister(me)
    assert not Worker.objects.exists()


def test_a_row_deleted_while_its_worker_lives_is_written_again_at_its_heartbeat():
    me = workers.Identity("w-1", host="h", pid=os.getpid())
    workers.register(me)
    Worker.objects.all().delete()
    workers.beat(me, running=1, done=5)
    row = Worker.objects.get()
    assert (row.name, row.tasks_running, row.tasks_done, row.started) == ("w-1", 1, 5, me.started)


def test_a_live_worker_elsewhere_keeps_its_name():
    WorkerFactory(name="blue", host="other-host", pid=os.getpid())
    with pytest.raises(WorkerNameTaken, match="Another worker named 'blue' is running"):
        workers.register(workers.Identity("blue", host="this-host"))
    assert Worker.objects.get().host == "other-host"


def test_a_live_worker_of_this_host_keeps_its_name_while_its_process_runs():
    WorkerFactory(name="blue", host="h", pid=os.getppid())
    with pytest.raises(WorkerNameTaken):
        workers.register(workers.Identity("blue", host="h", pid=os.getpid()))


def test_a_restarted_worker_takes_over_the_row_of_its_dead_predecessor_or_a_lost_one():
    WorkerFactory(name="blue", host="h", pid=dead_pid(), tasks_done=9)
    workers.register(workers.Identity("blue", host="h", pid=os.getpid()))
    row = Worker.objects.get()
    assert (row.pid, row.tasks_done) == (os.getpid(), 0)
    Worker.objects.update(last_seen=timezone.now() - timedelta(hours=1), host="elsewhere")
    workers.register(workers.Identity("blue", host="h", pid=os.getpid()))
    assert Worker.objects.get().host == "h"


def test_lost_rows_are_forgotten_after_an_hour():
    kept = WorkerFactory(last_seen=timezone.now() - timedelta(minutes=50))
    WorkerFactory(last_seen=timezone.now() - timedelta(minutes=70))
    assert workers.forget_lost() == 1
    assert list(Worker.objects.all()) == [kept]


def test_live_and_lost(settings):
    settings.DJANGO_SIMPLE_QUEUE_STALE_AFTER = 30
    live = WorkerFactory(last_seen=timezone.now() - timedelta(seconds=10))
    lost = WorkerFactory(last_seen=timezone.now() - timedelta(seconds=40))
    assert list(Worker.objects.live()) == [live]
    assert list(Worker.objects.lost()) == [lost]


def test_a_claim_of_a_live_worker_is_never_rescued(settings):
    settings.DJANGO_SIMPLE_QUEUE_STALE_AFTER = 30
    now = timezone.now()
    worker = WorkerFactory(started=now - timedelta(minutes=10))
    old = now - timedelta(minutes=5)
    held = TaskFactory(running=True, worker_id=worker.name, started_at=old, heartbeat_at=old)
    assert not Task.objects.stale().exists()
    assert lifecycle.rescue_stale() == []
    # Once its row is lost too, the claim is rescued.
    Worker.objects.update(last_seen=now - timedelta(minutes=1))
    assert [task.id for task in lifecycle.rescue_stale()] == [held.id]


def test_a_claim_older_than_the_live_worker_of_its_name_is_rescued(settings):
    # A worker restarted under its --name does not hold what its predecessor claimed.
    settings.DJANGO_SIMPLE_QUEUE_STALE_AFTER = 30
    now = timezone.now()
    worker = WorkerFactory(started=now - timedelta(seconds=5))
    old = now - timedelta(minutes=5)
    before = TaskFactory(running=True, worker_id=worker.name, started_at=old, heartbeat_at=old)
    assert [task.id for task in lifecycle.rescue_stale()] == [before.id]
