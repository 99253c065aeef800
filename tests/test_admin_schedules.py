"""The schedule admin through the test client: list, form, actions, permissions, export."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.contrib.messages import get_messages
from django.test import Client, override_settings
from django.urls import reverse

from django_simple_queue import db, scheduler
from django_simple_queue.models import Schedule, Task
from tests.factories import ScheduleFactory, TaskFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:django_simple_queue_schedule_changelist"
ADD = "admin:django_simple_queue_schedule_add"


def change_url(schedule: Schedule) -> str:
    return reverse("admin:django_simple_queue_schedule_change", args=[schedule.pk])


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def staff(*perms: str) -> Client:
    user = User.objects.create_user("staff-" + "-".join(perms), password="pw", is_staff=True)
    for codename in perms:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    client = Client()
    client.force_login(user)
    return client


def form_data(**overrides: str) -> dict[str, str]:
    data = {
        "name": "reports",
        "task": "tests.tasks.add",
        "args": '{"a": 2}',
        "cron": "",
        "interval": "",
        "timezone": "",
        "misfire": "latest",
        "queue": "default",
        "priority": "0",
        "max_attempts": "",
        "timeout": "",
        "enabled": "on",
    }
    return {**data, **overrides}


def test_the_list_says_when_in_words_the_next_run_and_the_last_runs_task(admin_client):
    nightly = ScheduleFactory(
        name="nightly",
        cron="30 3 * * *",
        interval=None,
        timezone="Europe/Berlin",
        next_run_at=db.now() + timedelta(hours=3),
    )
    ScheduleFactory(name="often", interval=2)
    last = TaskFactory(failed=True, schedule=nightly, scheduled_for=db.now())
    html = admin_client.get(reverse(CHANGELIST)).content.decode()
    assert "At 03:30" in html and "Every 2 seconds" in html
    row = html[html.index("nightly") :]
    row = row[: row.index("</tr>")]
    # In its own timezone, and how far away.
    berlin = (nightly.next_run_at.astimezone(nightly.timing.zone())).strftime("%H:%M:%S CET")
    assert berlin in row and "(in 2" in row
    assert reverse("admin:django_simple_queue_task_change", args=[last.pk]) in row
    assert "dsq-status-3" in row


def test_a_schedule_made_in_the_admin_needs_name_task_args_and_a_timing(admin_client):
    response = admin_client.post(reverse(ADD), form_data(interval="90"), follow=True)
    assert response.status_code == 200
    schedule = Schedule.objects.get()
    assert (schedule.name, schedule.interval, schedule.source) == ("reports", 90, Schedule.ADMIN)
    assert json.loads(schedule.args) == {"a": 2}
    assert schedule.next_run_at is not None
    assert schedule.next_run_at - db.now() <= timedelta(seconds=91)


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"cron": "30 3 * *"}, "cron", "has 4 fields; a cron expression has 5"),
        ({"cron": "99 3 * * *"}, "cron", "is not a valid cron expression"),
        ({}, "cron", "Give either a cron expression"),
        ({"cron": "* * * * *", "interval": "5"}, "cron", "not both"),
        ({"interval": "0"}, "interval", "at least 1, not 0"),
        ({"interval": "5", "timezone": "Mars/Base"}, "timezone", "is not a timezone"),
        ({"interval": "5", "args": '{"nope": 1}'}, "args", "unexpected argument 'nope'"),
        ({"interval": "5", "args": "[1]"}, "args", "must be a JSON object"),
        ({"interval": "5", "task": "os.system"}, "task", "Select a valid choice"),
    ],
)
def test_a_bad_schedule_is_refused_with_a_message_on_its_field(
    admin_client, overrides, field, message
):
    response = admin_client.post(reverse(ADD), form_data(**overrides))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert message in " ".join(errors.get(field, [])), errors
    assert not Schedule.objects.exists()


def test_a_saved_schedule_shows_its_next_five_runs(admin_client):
    schedule = ScheduleFactory(cron="0 9 * * mon-fri", interval=None)
    html = admin_client.get(change_url(schedule)).content.decode()
    assert html.count("<li>", html.index("dsq-upcoming")) >= 5
    assert "09:00:00" in html


def test_run_now_enqueues_one_task_and_needs_the_add_task_permission(admin_client):
    schedule = ScheduleFactory(next_run_at=db.now() + timedelta(days=1))
    data = {"action": "run_schedules_now", "_selected_action": [schedule.pk]}
    response = admin_client.post(reverse(CHANGELIST), data, follow=True)
    assert "1 task was enqueued." in messages_of(response)
    task = Task.objects.get()
    assert task.schedule == schedule
    schedule.refresh_from_db()
    assert schedule.next_run_at > db.now() + timedelta(hours=23)

    client = staff("view_schedule", "change_schedule")
    html = client.get(reverse(CHANGELIST)).content.decode()
    assert "run_schedules_now" not in html and "enable_schedules" in html
    client.post(reverse(CHANGELIST), data)
    assert Task.objects.count() == 1


def test_enable_and_disable_actions(admin_client):
    schedules = [ScheduleFactory(), ScheduleFactory()]
    data = {"action": "disable_schedules", "_selected_action": [s.pk for s in schedules]}
    response = admin_client.post(reverse(CHANGELIST), data, follow=True)
    assert "2 schedules were disabled." in messages_of(response)
    assert not Schedule.objects.filter(enabled=True).exists()
    response = admin_client.post(
        reverse(CHANGELIST), {**data, "action": "enable_schedules"}, follow=True
    )
    assert "2 schedules were enabled." in messages_of(response)
    assert Schedule.objects.filter(enabled=True, next_run_at__gt=db.now()).count() == 2
    assert staff("view_schedule").post(reverse(CHANGELIST), data).status_code == 200
    assert Schedule.objects.filter(enabled=True).count() == 2  # view-only staff changed nothing


@override_settings(
    DJANGO_SIMPLE_QUEUE_SCHEDULES={
        "declared": {"task": "tests.tasks.add", "interval": 60, "args": {"a": 1}}
    }
)
def test_a_declared_schedule_can_only_be_turned_off_in_the_admin(admin_client):
    scheduler.sync()
    schedule = Schedule.objects.get()
    response = admin_client.get(change_url(schedule))
    form = response.context["adminform"].form
    assert set(form.fields) == {"enabled"}
    admin_client.post(change_url(schedule), {"enabled": ""})
    schedule.refresh_from_db()
    assert not schedule.enabled
    scheduler.sync()
    schedule.refresh_from_db()
    assert not schedule.enabled  # a deploy keeps what staff decided


def test_a_task_made_by_a_schedule_links_to_it(admin_client):
    schedule = ScheduleFactory(name="links")
    task = TaskFactory(schedule=schedule, scheduled_for=db.now())
    html = admin_client.get(
        reverse("admin:django_simple_queue_task_change", args=[task.pk])
    ).content.decode()
    assert f'href="{change_url(schedule)}"' in html


def test_the_dashboard_lists_the_next_runs(admin_client):
    soon = ScheduleFactory(name="soon", next_run_at=db.now() + timedelta(minutes=5))
    ScheduleFactory(name="off", enabled=False)
    html = admin_client.get(reverse("admin:django_simple_queue_task_changelist")).content.decode()
    card = html[html.index('id="dsq-next-runs"') :]
    card = card[: card.index("</div>")]
    assert change_url(soon) in card and "in 4" in card
    assert ">off<" not in card


def test_schedules_export_to_csv_redacted_and_defused(admin_client):
    ScheduleFactory(name="=HYPERLINK(1)", task="tests.tasks.echo", args='{"password": "hunter2"}')
    fields = [
        f.column_name
        for f in __import__("admin_ext.resources", fromlist=["x"])
        .ScheduleResource()
        .get_export_fields()
    ]
    response = admin_client.post(
        reverse("admin:django_simple_queue_schedule_export"),
        {"format": "0", "resource": "0", **{f"scheduleresource_{f}": "on" for f in fields}},
    )
    assert response.status_code == 200
    text = response.content.decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[0]["name"] == "'=HYPERLINK(1)"
    assert "hunter2" not in text
