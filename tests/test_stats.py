"""Queue figures shared by the dashboard and the health report."""

from __future__ import annotations

from datetime import timedelta

import pytest

from admin_ext import dashboard
from django_simple_queue import db, health, stats
from django_simple_queue.models import Task
from tests.factories import TaskFactory

pytestmark = pytest.mark.django_db


def queued(now, *, created_ago: timedelta, run_after_ago: timedelta | None, queue="q") -> Task:
    run_after = None if run_after_ago is None else now - run_after_ago
    task = TaskFactory(queue=queue, run_after=run_after)
    Task.objects.filter(id=task.id).update(created=now - created_ago)
    return task


def test_a_task_waits_from_when_it_became_ready():
    now = db.now()
    hour = timedelta(hours=1)
    queued(now, created_ago=hour, run_after_ago=None)  # ready since its creation: 1 h
    queued(now, created_ago=3 * hour, run_after_ago=timedelta(seconds=1))  # due a second ago
    queued(now, created_ago=2 * hour, run_after_ago=1.5 * hour)  # deferred, due 90 min ago
    queued(now, created_ago=4 * hour, run_after_ago=-hour)  # still deferred: not waiting
    (row,) = stats.queues(now)
    assert (row["depth"], row["ready"], row["deferred"]) == (4, 3, 1)
    assert row["waiting_since"] == now - 1.5 * hour


def test_the_dashboard_and_the_health_report_agree_on_the_oldest_waiting_task():
    now = db.now()
    hour = timedelta(hours=1)
    # Created long ago, its run_after just passed: it has waited a minute, not five hours.
    queued(now, created_ago=5 * hour, run_after_ago=timedelta(minutes=1), queue="a")
    # Created an hour ago to run in ten minutes' time: not waiting yet.
    queued(now, created_ago=hour, run_after_ago=-timedelta(minutes=10), queue="a")
    # Deferred when created two hours ago, ready for the last 40 minutes.
    queued(now, created_ago=2 * hour, run_after_ago=timedelta(minutes=40), queue="b")
    # Only deferred tasks: nothing waits.
    queued(now, created_ago=hour, run_after_ago=-hour, queue="c")
    shown = {row["queue"]: row["age"] for row in dashboard.queue_depths(now)}
    reported = {row["queue"]: row["oldest_ready_age"] for row in health.queue_report(now)}
    assert shown == {"a": timedelta(minutes=1), "b": timedelta(minutes=40), "c": None}
    assert reported == {"a": 60.0, "b": 2400.0, "c": None}
    assert health.health_report(now)["oldest_ready_age"] == 2400.0


def test_workers_are_live_while_their_heartbeat_is_fresh(settings):
    settings.DJANGO_SIMPLE_QUEUE_STALE_AFTER = 30
    now = db.now()
    TaskFactory(running=True, worker_id="host:1", heartbeat_at=now)
    TaskFactory(running=True, worker_id="host:1", heartbeat_at=now - timedelta(minutes=5))
    TaskFactory(running=True, worker_id="host:2", heartbeat_at=now - timedelta(minutes=5))
    rows = stats.workers(now)
    assert [(r["name"], r["running"], r["live"], r["state"]) for r in rows] == [
        ("host:1", 2, True, "busy"),
        ("host:2", 1, False, "lost"),
    ]
    assert [(w["name"], w["state"]) for w in dashboard.workers(now)] == [
        ("host:1", "busy"),
        ("host:2", "lost"),
    ]
    assert [(w["worker"], w["live"]) for w in health.worker_report(now)] == [
        ("host:1", True),
        ("host:2", False),
    ]


def test_workers_with_a_row_are_idle_busy_or_lost(settings):
    from tests.factories import WorkerFactory

    settings.DJANGO_SIMPLE_QUEUE_STALE_AFTER = 30
    now = db.now()
    WorkerFactory(name="a:1", queues=["mail"], tasks_done=4)
    WorkerFactory(name="b:2")
    WorkerFactory(name="c:3", last_seen=now - timedelta(minutes=1))
    TaskFactory(running=True, worker_id="b:2")
    rows = {row["name"]: row for row in stats.workers(now)}
    assert {name: row["state"] for name, row in rows.items()} == {
        "a:1": "idle",
        "b:2": "busy",
        "c:3": "lost",
    }
    assert (rows["a:1"]["queues"], rows["a:1"]["done"], rows["a:1"]["live"]) == (["mail"], 4, True)
    assert rows["b:2"]["running"] == 1 and rows["c:3"]["live"] is False
