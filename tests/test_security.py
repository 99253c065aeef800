"""Hostile input, gathered: what tasks write is escaped on every page, exported cells do not run as
formulas, REDACT_KEYS values never leave the database, and no enqueue path runs a path outside
DJANGO_SIMPLE_QUEUE_ALLOWED_TASKS. docs/security.md is the threat model these tests guard."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from admin_ext.resources import FORMULA_START, TaskResource, defuse, restore
from django_simple_queue.exceptions import TaskNotAllowedError
from django_simple_queue.models import Task
from django_simple_queue.utils import create_task
from tests.factories import TaskFactory

pytestmark = pytest.mark.django_db

STATUS = "/django_simple_queue/task"
CHANGELIST = "admin:django_simple_queue_task_changelist"
EXPORT = "admin:django_simple_queue_task_export"
IMPORT = "admin:django_simple_queue_task_import"
EXPORT_FIELDS = list(TaskResource().fields)


def evil(field: str) -> str:
    """Markup that would run if a page wrote it unescaped, named after the field it is put in."""
    return f"<svg/onload=alert(1) id=xss-{field}>"


def escaped(field: str) -> str:
    return f"&lt;svg/onload=alert(1) id=xss-{field}&gt;"


def hostile_task(**extra) -> Task:
    """A task whose every task-written text field holds markup (as a worker or a row could)."""
    now = timezone.now()
    values = {
        "task": evil("task"),
        "args": json.dumps({"x": evil("args")}),
        "queue": evil("queue"),
        "output": evil("output"),
        "error": f"Traceback (most recent call last):\nValueError: {evil('error')}",
        "log": evil("log"),
        "progress": 0.5,
        "progress_message": evil("progress"),
        "status": Task.FAILED,
        "attempts": 1,
        "worker_id": evil("worker"),
        "enqueued_by": evil("enqueued_by"),
        "started_at": now - timedelta(seconds=3),
        "finished_at": now,
        "attempt_log": [
            {
                "attempt": 1,
                "outcome": evil("outcome"),
                "worker": evil("log_worker"),
                "error": evil("log_error"),
            }
        ],
        **extra,
    }
    return TaskFactory(**values)


def assert_escaped(html: str, *shown: str) -> None:
    """No markup of a hostile field is live in ``html``; each of ``shown`` is there, escaped."""
    assert "<svg/onload" not in html
    for field in shown:
        assert escaped(field) in html, f"{field} is not shown (escaped) on this page"


# Markup in what tasks write.


def test_task_page_escapes_every_task_written_field(admin_client):
    task = hostile_task()
    html = admin_client.get(reverse("admin:django_simple_queue_task_change", args=[task.pk]))
    assert html.status_code == 200
    assert_escaped(
        html.content.decode(),
        "task",
        "args",
        "queue",
        "output",
        "error",
        "log",
        "progress",
        "enqueued_by",
        "outcome",
        "log_worker",
        "log_error",
    )


def test_change_list_filters_and_search_escape_task_written_fields(admin_client):
    hostile_task()
    response = admin_client.get(reverse(CHANGELIST), {"q": evil("search")})
    assert response.status_code == 200
    assert_escaped(response.content.decode(), "search")
    html = admin_client.get(reverse(CHANGELIST)).content.decode()
    # The list's task column, the path and queue filters.
    assert_escaped(html, "task", "queue")


def test_dashboard_escapes_queue_and_worker_names(admin_client):
    hostile_task(status=Task.QUEUED, started_at=None, finished_at=None)
    hostile_task(
        status=Task.PROGRESS, heartbeat_at=timezone.now(), finished_at=None, queue="default"
    )
    html = admin_client.get(reverse(CHANGELIST)).content.decode()
    assert "dsq-dashboard" in html
    assert_escaped(html, "queue", "worker")


def test_confirmation_pages_escape_task_paths_and_the_filter(admin_client):
    task = hostile_task()
    url = reverse("admin:django_simple_queue_task_apply_all", args=["requeue_tasks"])
    html = admin_client.get(url, {"q": evil("filter")}).content.decode()
    assert "Are you sure?" in html and "xss-filter" in html
    assert_escaped(html)
    html = admin_client.get(url).content.decode()
    assert_escaped(html, "task")
    response = admin_client.post(
        reverse(CHANGELIST), {"action": "delete_selected", "_selected_action": [str(task.pk)]}
    )
    assert response.status_code == 200 and str(task.pk) in response.content.decode()
    assert_escaped(response.content.decode())


def test_failures_page_and_its_confirmations_escape_paths_causes_and_errors(admin_client):
    hostile_task(exception_type=evil("cause"))
    html = admin_client.get(reverse("admin:django_simple_queue_task_failures")).content.decode()
    assert "dsq-failure-group" in html
    # The latest error is its last line: "ValueError: <the hostile text>".
    assert_escaped(html, "task", "cause", "error")
    for action in ("requeue", "delete"):
        url = reverse("admin:django_simple_queue_task_failures_apply", args=[action])
        response = admin_client.get(url, {"task": evil("task"), "exception_type": evil("cause")})
        assert response.status_code == 200 and response.context["count"] == 1
        assert_escaped(response.content.decode(), "task", "cause")


@pytest.mark.parametrize("full_errors", [False, True])
def test_status_page_escapes_every_field_in_html_and_json(client, settings, full_errors):
    settings.DJANGO_SIMPLE_QUEUE_STATUS_FULL_ERRORS = full_errors
    task = hostile_task()
    html = client.get(STATUS, {"task_id": task.id}).content.decode()
    assert_escaped(html, "task", "args", "queue", "output", "error", "log", "progress")
    response = client.get(STATUS, {"task_id": task.id, "type": "json"})
    assert response["Content-Type"] == "application/json"
    data = response.json()  # JSON holds the text as it is; a client must escape it
    assert data["output"] == evil("output") and evil("error") in data["error"]


# Formulas in exported cells.

FORMULAE = ["=1+1", "+1+2", "-2+3", "@SUM(1+1)", "\t=1", "\r=1", "=cmd|' /C calc'!A0"]


def exported_rows(client, **params) -> list[dict[str, str]]:
    response = client.post(
        reverse(EXPORT),
        {"format": "0", "resource": "0", **{f"taskresource_{f}": "on" for f in EXPORT_FIELDS}},
        **params,
    )
    assert response.status_code == 200, response.content[:500]
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))


@pytest.mark.parametrize("formula", FORMULAE)
def test_export_defuses_cells_that_would_start_a_formula(admin_client, formula):
    TaskFactory(
        task=formula,
        queue=formula,
        worker_id=formula,
        error=f"Traceback (most recent call last):\n{formula}",
        priority=-3,
        failed=True,
    )
    (row,) = exported_rows(admin_client)
    for column in ("task", "queue", "worker", "error_summary"):
        assert row[column].startswith("'"), (column, row[column])
        assert row[column][1:].lstrip() == formula.lstrip(), (column, row[column])
    # Numbers stay numbers.
    assert (row["priority"], row["attempts"]) == ("-3", "1")


def test_escape_formulae_false_exports_raw_cells(admin_client, settings):
    settings.DJANGO_SIMPLE_QUEUE_ESCAPE_FORMULAE = False
    TaskFactory(queue="@SUM(1+1)", error="+1+2", failed=True)
    (row,) = exported_rows(admin_client)
    assert (row["queue"], row["error_summary"]) == ("@SUM(1+1)", "+1+2")


@pytest.mark.parametrize(
    "text", ["", "plain", "'quoted", "''", *FORMULAE, *(f"'{f}" for f in FORMULAE), "''=1"]
)
def test_restore_gives_back_exactly_what_defuse_was_given(text):
    assert restore(defuse(text)) == text
    assert defuse(text).lstrip("'").startswith(FORMULA_START) == text.lstrip("'").startswith(
        FORMULA_START
    )


def test_restore_leaves_quotes_the_export_did_not_add():
    assert restore("'plain") == "'plain" and restore("'") == "'"


def test_import_strips_the_quote_the_export_added(admin_client):
    text = 'task,args,queue\ntests.tasks.add,"{""a"": 1}",\'-mail\n'
    file = SimpleUploadedFile("tasks.csv", text.encode(), content_type="text/csv")
    response = admin_client.post(
        reverse(IMPORT), {"import_file": file, "format": "0", "resource": "0"}
    )
    assert response.status_code == 200
    assert response.context["confirm_form"] is not None
    assert "-mail" in response.content.decode() and "'-mail" not in response.content.decode()


# REDACT_KEYS values in every output.

SECRET = "hunter2-s3cret"


def test_redacted_values_appear_in_no_output(client, admin_client, settings):
    settings.DJANGO_SIMPLE_QUEUE_REDACT_KEYS = {"password", "api_key"}
    task = TaskFactory(
        task="tests.tasks.echo",
        args=json.dumps({"user": "ann", "Password": SECRET, "nested": [{"api_key": SECRET}]}),
        completed=True,
    )
    queued = TaskFactory(task="tests.tasks.echo", args=json.dumps({"password": SECRET}))
    outputs = {
        "task page": admin_client.get(
            reverse("admin:django_simple_queue_task_change", args=[task.pk])
        ).content.decode(),
        "queued task's edit form": admin_client.get(
            reverse("admin:django_simple_queue_task_change", args=[queued.pk])
        ).content.decode(),
        "status page": client.get(STATUS, {"task_id": task.id}).content.decode(),
        "status JSON": client.get(STATUS, {"task_id": task.id, "type": "json"}).content.decode(),
        "CSV export": json.dumps(exported_rows(admin_client), ensure_ascii=False),
    }
    for name, text in outputs.items():
        assert SECRET not in text, name
        assert "•••" in text or "\\u2022" in text, name


# A path outside ALLOWED_TASKS, through every enqueue path.

FORBIDDEN = "os.system"


def test_create_task_refuses_a_path_outside_the_allowed_list():
    with pytest.raises(TaskNotAllowedError, match="is not in the allowed list"):
        create_task(FORBIDDEN, {"command": "true"})
    assert not Task.objects.exists()


def test_admin_add_form_refuses_a_path_outside_the_allowed_list(admin_client):
    response = admin_client.post(
        reverse("admin:django_simple_queue_task_add"),
        {"task": FORBIDDEN, "args": '{"command": "true"}', "queue": "default", "priority": "0"},
    )
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not Task.objects.exists()


def test_csv_import_refuses_a_path_outside_the_allowed_list(admin_client):
    text = 'task,args\nos.system,"{""command"": ""true""}"\n'
    file = SimpleUploadedFile("tasks.csv", text.encode(), content_type="text/csv")
    response = admin_client.post(
        reverse(IMPORT), {"import_file": file, "format": "0", "resource": "0"}
    )
    assert "Select a valid choice" in response.content.decode()
    assert response.context.get("confirm_form") is None
    assert not Task.objects.exists()


def test_tasks_backend_refuses_what_is_not_a_module_level_task():
    from django_simple_queue._compat import InvalidTask

    try:
        from django.tasks import task
    except ImportError:
        from django_tasks import task
    import os

    # A @task of os.system would name "posix.system", where the worker finds a plain function.
    with pytest.raises(InvalidTask, match="module level"):
        task(os.system).enqueue("true")
    assert not Task.objects.exists()


def test_schedules_refuse_a_path_outside_the_allowed_list(admin_client):
    from django_simple_queue import scheduler
    from django_simple_queue.models import Schedule
    from tests.factories import ScheduleFactory

    # Made in the admin: not offered.
    response = admin_client.post(
        reverse("admin:django_simple_queue_schedule_add"),
        {
            "name": "x",
            "task": FORBIDDEN,
            "args": '{"command": "true"}',
            "interval": "5",
            "misfire": "latest",
            "queue": "default",
            "priority": "0",
        },
    )
    assert "Select a valid choice" in response.content.decode()
    assert not Schedule.objects.exists()
    # Written into the table by other means: the worker's pass refuses to enqueue it.
    row = ScheduleFactory(task=FORBIDDEN, args='{"command": "true"}', next_run_at=timezone.now())
    assert scheduler.enqueue_due() == 0
    row.refresh_from_db()
    assert "is not in the allowed list" in row.last_error
    assert not Task.objects.exists()
