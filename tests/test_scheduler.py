"""Schedules' state changes (django_simple_queue/scheduler.py), on the test database."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.test import override_settings

from django_simple_queue import db, scheduler
from django_simple_queue.checks import check_settings
from django_simple_queue.models import Schedule, Task
from tests.factories import ScheduleFactory, TaskFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=ZoneInfo("UTC"))
DECLARED = {
    "nightly": {"task": "tests.tasks.add", "cron": "30 3 * * *", "args": {"a": 1}},
    "often": {"task": "tests.tasks.echo", "interval": 5, "queue": "fast", "priority": 3},
}


def test_a_due_tick_becomes_one_task_and_the_schedule_moves_on():
    schedule = ScheduleFactory(name="reports", next_run_at=T0, args=json.dumps({"a": 4}))
    assert scheduler.enqueue_due(now=T0 + timedelta(seconds=1)) == 1
    task = Task.objects.get()
    assert (task.schedule, task.scheduled_for, task.task, json.loads(task.args)) == (
        schedule,
        T0,
        "tests.tasks.add",
        {"a": 4},
    )
    assert task.enqueued_by == "schedule:reports"
    schedule.refresh_from_db()
    assert (schedule.next_run_at, schedule.last_run_at) == (T0 + timedelta(minutes=1), T0)
    assert scheduler.enqueue_due(now=T0 + timedelta(seconds=2)) == 0
    assert Task.objects.count() == 1


def test_the_database_refuses_a_second_task_for_one_tick():
    schedule = ScheduleFactory()
    TaskFactory(schedule=schedule, scheduled_for=T0)
    TaskFactory(schedule=None, scheduled_for=None)
    TaskFactory(schedule=None, scheduled_for=None)  # tasks of no schedule are not constrained
    with pytest.raises(IntegrityError), transaction.atomic():
        TaskFactory(schedule=schedule, scheduled_for=T0)


def test_a_schedule_that_cannot_enqueue_says_why_and_does_not_hold_up_the_others():
    bad = ScheduleFactory(name="bad", task="os.system", args='{"command": "true"}', next_run_at=T0)
    good = ScheduleFactory(name="good", next_run_at=T0)
    assert scheduler.enqueue_due(now=T0) == 1
    assert list(Task.objects.values_list("schedule__name", flat=True)) == ["good"]
    bad.refresh_from_db()
    assert "not in the allowed list" in bad.last_error
    assert bad.next_run_at == T0 + timedelta(minutes=1)  # not retried every second
    good.refresh_from_db()
    assert good.last_error == ""


def test_arguments_are_checked_against_the_signature_at_each_run():
    broken = ScheduleFactory(args=json.dumps({"nope": 1}), next_run_at=T0)
    scheduler.enqueue_due(now=T0)
    broken.refresh_from_db()
    assert not Task.objects.exists()
    assert "unexpected argument 'nope'" in broken.last_error


def test_disabled_and_future_schedules_do_not_run():
    ScheduleFactory(enabled=False, next_run_at=T0)
    ScheduleFactory(next_run_at=T0 + timedelta(seconds=5))
    assert scheduler.enqueue_due(now=T0) == 0
    assert scheduler.next_due() == T0 + timedelta(seconds=5)


def test_run_now_enqueues_one_task_and_leaves_the_next_run():
    schedule = ScheduleFactory(next_run_at=T0 + timedelta(days=1))
    refusing = ScheduleFactory(task="tests.tasks.missing")
    made, refused = scheduler.run_now(Schedule.objects.all())
    assert [task.schedule for task in made] == [schedule]
    assert [(s, "cannot be imported" in reason) for s, reason in refused] == [(refusing, True)]
    task = Task.objects.get()
    assert abs(task.scheduled_for - db.now()) < timedelta(seconds=5)
    schedule.refresh_from_db()
    assert schedule.next_run_at == T0 + timedelta(days=1)


def test_turned_back_on_a_schedule_runs_from_now_without_catching_up():
    schedule = ScheduleFactory(interval=60, next_run_at=T0, enabled=True)
    assert scheduler.set_enabled(Schedule.objects.all(), False) == 1
    assert scheduler.set_enabled(Schedule.objects.all(), False) == 0
    assert scheduler.set_enabled(Schedule.objects.all(), True) == 1
    schedule.refresh_from_db()
    assert schedule.enabled and schedule.next_run_at > db.now()
    assert scheduler.enqueue_due() == 0


@override_settings(DJANGO_SIMPLE_QUEUE_SCHEDULES=DECLARED)
def test_declared_schedules_are_created_updated_and_removed():
    synced = scheduler.sync()
    assert sorted(synced.created) == ["nightly", "often"]
    often = Schedule.objects.get(name="often")
    assert (often.source, often.queue, often.priority, often.interval) == ("settings", "fast", 3, 5)
    assert often.next_run_at is not None
    ScheduleFactory(name="made-in-admin")
    assert scheduler.sync().updated == []  # nothing changed: nothing written

    # Staff turn one off: a new deploy keeps it off. A changed timing runs from now on.
    scheduler.set_enabled(Schedule.objects.filter(name="nightly"), False)
    changed = {**DECLARED, "nightly": {**DECLARED["nightly"], "cron": "0 4 * * *"}}
    del changed["often"]
    with override_settings(DJANGO_SIMPLE_QUEUE_SCHEDULES=changed):
        synced = scheduler.sync()
    assert (synced.updated, synced.removed) == (["nightly"], ["often"])
    nightly = Schedule.objects.get(name="nightly")
    assert (nightly.cron, nightly.enabled, nightly.next_run_at.minute) == ("0 4 * * *", False, 0)
    assert set(Schedule.objects.values_list("name", flat=True)) == {"nightly", "made-in-admin"}


@override_settings(
    DJANGO_SIMPLE_QUEUE_SCHEDULES={
        "typo": {"task": "tests.tasks.add", "cron": "30 3 * *"},
        "unknown": {"task": "tests.tasks.add", "interval": 5, "every": "day"},
        "forbidden": {"task": "os.system", "interval": 5},
        "fine": {"task": "tests.tasks.add", "interval": 5, "args": {"a": 1}},
    }
)
def test_a_declaration_that_cannot_run_is_a_system_check_error():
    errors = [e for e in check_settings() if e.id == "django_simple_queue.E010"]
    messages = sorted(e.msg for e in errors)
    assert len(messages) == 3
    assert "Schedule 'forbidden': Task 'os.system' is not in the allowed list" in messages[0]
    assert "Schedule 'typo': '30 3 * *' has 4 fields" in messages[1]
    assert "Schedule 'unknown' has unknown keys ['every']" in messages[2]


@override_settings(DJANGO_SIMPLE_QUEUE_SCHEDULES=DECLARED)
def test_task_schedules_command_syncs_and_lists(capsys):
    call_command("task_schedules", "sync")
    assert "2 created, 0 updated, 0 removed" in capsys.readouterr().out
    call_command("task_schedules", "list")
    out = capsys.readouterr().out
    assert "nightly: tests.tasks.add · At 03:30 · next " in out
    assert "often: tests.tasks.echo · Every 5 seconds" in out


@pytest.mark.skipif(
    db.connection().vendor != "sqlite",
    reason="moves the host's clock; a database server keeps its own (SQLite only)",
)
def test_a_daily_0230_in_berlin_runs_once_on_both_change_days_through_the_database():
    time_machine = pytest.importorskip("time_machine")
    berlin = ZoneInfo("Europe/Berlin")
    for start in (
        datetime(2026, 3, 28, 12, tzinfo=berlin),
        datetime(2026, 10, 24, 12, tzinfo=berlin),
    ):
        with time_machine.travel(start, tick=False) as traveller:
            db.forget_clock()
            schedule = ScheduleFactory(
                cron="30 2 * * *", interval=None, timezone="Europe/Berlin", next_run_at=None
            )
            scheduler.plan(schedule)
            schedule.save()
            for _ in range(2 * 24 * 6):  # two days, a pass every 10 minutes
                traveller.shift(timedelta(minutes=10))
                db.forget_clock()
                scheduler.enqueue_due()
        days = Counter(
            t.astimezone(berlin).date().isoformat()
            for t in Task.objects.filter(schedule=schedule).values_list("scheduled_for", flat=True)
        )
        assert sorted(days.values()) == [1, 1], days
    db.forget_clock()


def test_a_schedule_may_name_a_django_task_of_this_queues_backend():
    pytest.importorskip("django_simple_queue.backends")
    schedule = ScheduleFactory(
        task="tests.backend_tasks.add", args=json.dumps({"a": 2}), next_run_at=T0
    )
    assert scheduler.enqueue_due(now=T0) == 1
    task = Task.objects.get()
    assert (task.backend, task.schedule, json.loads(task.args)) == ("default", schedule, {"a": 2})
