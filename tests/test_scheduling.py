"""Workers running schedules (django_simple_queue/worker/scheduling.py), as real processes."""

from __future__ import annotations

import json
import signal
import time
from datetime import timedelta
from itertools import pairwise

import pytest

from django_simple_queue import db
from django_simple_queue.models import Schedule, Task
from tests.conftest import wait_for
from tests.factories import ScheduleFactory

pytestmark = pytest.mark.django_db(transaction=True)


def ticks(schedule: Schedule) -> list:
    return sorted(Task.objects.filter(schedule=schedule).values_list("scheduled_for", flat=True))


def stop(proc) -> str:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    return out


def test_a_worker_enqueues_each_tick_once_soon_after_its_time_and_runs_it(start_worker):
    schedule = ScheduleFactory(interval=1, next_run_at=db.now() + timedelta(seconds=1))
    proc = start_worker("--concurrency", "2")
    wait_for(lambda: Task.objects.filter(schedule=schedule, status=Task.COMPLETED).count() >= 3, 30)
    out = stop(proc)
    made = ticks(schedule)
    assert len(made) == len(set(made)) >= 3
    steps = {later - earlier for earlier, later in pairwise(made)}
    assert steps == {timedelta(seconds=1)}, "a tick was skipped"
    for task in Task.objects.filter(schedule=schedule):
        # Generous: bench/schedule_lateness.py measures it.
        assert task.created - task.scheduled_for < timedelta(seconds=3)
    assert "scheduled 1 task" in out


def test_a_worker_with_no_scheduler_leaves_schedules_alone(start_worker):
    schedule = ScheduleFactory(interval=1, next_run_at=db.now())
    proc = start_worker("--no-scheduler")
    time.sleep(3)
    stop(proc)
    assert ticks(schedule) == []


def test_schedules_declared_in_settings_are_synced_when_a_worker_starts(start_worker):
    declared = {
        "heartbeat": {"task": "tests.tasks.echo", "interval": 1, "args": {"from": "settings"}}
    }
    proc = start_worker(env={"DSQ_SCHEDULES": json.dumps(declared)})
    wait_for(lambda: Task.objects.filter(schedule__name="heartbeat").exists(), 30)
    out = stop(proc)
    schedule = Schedule.objects.get(name="heartbeat")
    assert schedule.source == Schedule.SETTINGS
    assert "schedules created: heartbeat" in out
    assert json.loads(Task.objects.filter(schedule=schedule).first().args) == {"from": "settings"}


@pytest.mark.server_db
def test_three_workers_enqueue_every_tick_exactly_once(start_worker):
    schedule = ScheduleFactory(interval=1, next_run_at=db.now() + timedelta(seconds=1))
    procs = [start_worker("--name", f"w{n}") for n in range(3)]
    wait_for(lambda: len(ticks(schedule)) >= 6, 40)
    for proc in procs:
        stop(proc)
    made = ticks(schedule)
    assert len(made) == len(set(made))
    assert {later - earlier for earlier, later in pairwise(made)} == {timedelta(seconds=1)}
