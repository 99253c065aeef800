"""Schedules under kill -9: workers killed in the middle of a scheduling pass lose no tick and
double none (the pass is one transaction; the database refuses a second task per tick)."""

from __future__ import annotations

import random
import signal
import time
from datetime import timedelta

import pytest

from django_simple_queue import db, schedules
from django_simple_queue.models import Task
from tests.chaos.conftest import report, size
from tests.conftest import wait_for
from tests.factories import ScheduleFactory

pytestmark = [pytest.mark.server_db, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_kill_9_mid_scheduling_loses_no_tick_and_doubles_none(fleet):
    start = db.now() + timedelta(seconds=2)
    # Many schedules per pass, so that a kill lands inside a pass's transaction often.
    plans = [
        ScheduleFactory(interval=1, next_run_at=start, misfire=schedules.ALL) for _ in range(40)
    ]
    workers = [fleet.start(concurrency=2) for _ in range(3)]
    rng = random.Random(7)
    kills = 0
    deadline = time.monotonic() + size(15, 120)
    while time.monotonic() < deadline:
        time.sleep(rng.uniform(0.2, 0.9))
        victim = rng.randrange(len(workers))
        workers[victim].signal_group(signal.SIGKILL)
        workers[victim].wait(10)
        kills += 1
        workers[victim] = fleet.start(concurrency=2)
    end = db.now()
    # Let the survivors catch up, then stop.
    wait_for(
        lambda: all(
            Task.objects.filter(schedule=p, scheduled_for__gte=end - timedelta(seconds=1)).exists()
            for p in plans
        ),
        timeout=60,
    )
    for worker in workers:
        worker.signal_group(signal.SIGTERM)
    for worker in workers:
        worker.wait(60)
    lost = doubled = 0
    for plan in plans:
        made = list(
            Task.objects.filter(schedule=plan)
            .order_by("scheduled_for")
            .values_list("scheduled_for", flat=True)
        )
        doubled += len(made) - len(set(made))
        expected = int((made[-1] - made[0]).total_seconds()) + 1
        lost += expected - len(set(made))
        assert made[0] == start
    report("schedules under kill -9", schedules=len(plans), kills=kills, lost=lost, doubled=doubled)
    assert (lost, doubled) == (0, 0)
