from __future__ import annotations

import json

import pytest
from django.urls import reverse

from tests.factories import TaskFactory

pytestmark = pytest.mark.django_db

URL = "/django_simple_queue/task"


def test_url_name_is_the_originals():
    assert reverse("django_simple_queue:task") == URL


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "Missing task_id parameter."),
        ("?task_id=", "Missing task_id parameter."),
        ("?task_id=nope", "Invalid task_id format."),
        ("?task_id=%27%3B--", "Invalid task_id format."),
        ("?task_id=00000000-0000-0000-0000-000000000000", "Task not found."),
    ],
)
def test_bad_ids_answer_400_with_a_clear_message(client, query, message):
    response = client.get(URL + query)
    assert response.status_code == 400
    assert response.content.decode() == message


def test_json_has_as_dict_keys_plus_public_fields_and_hides_internals(client):
    task = TaskFactory(
        running=True, progress=0.25, progress_message="a quarter", worker_id="host:1"
    )
    data = client.get(URL, {"task_id": str(task.id), "type": "json"}).json()
    assert set(task.as_dict) <= set(data)
    assert data["status"] == "In progress"
    assert data["progress"] == 0.25
    assert data["progress_message"] == "a quarter"
    assert "claim_token" not in data and "worker_id" not in data and "enqueued_by" not in data


def test_html_page_escapes_every_value(client):
    evil = "<script>alert(1)</script>"
    task = TaskFactory(
        completed=True, output=evil, log=evil, error=evil, args=json.dumps({"x": evil})
    )
    html = client.get(URL, {"task_id": str(task.id)}).content.decode()
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_unfinished_task_page_refreshes_and_finished_does_not(client):
    running = TaskFactory(running=True)
    done = TaskFactory(completed=True)
    assert 'http-equiv="refresh"' in client.get(URL, {"task_id": running.id}).content.decode()
    assert 'http-equiv="refresh"' not in client.get(URL, {"task_id": done.id}).content.decode()


def test_redact_keys_hide_argument_values(client, settings):
    settings.DJANGO_SIMPLE_QUEUE_REDACT_KEYS = {"password"}
    task = TaskFactory(
        task="tests.tasks.echo",
        args=json.dumps({"user": "José", "nested": {"Password": "hunter2"}}),
    )
    data = client.get(URL, {"task_id": task.id, "type": "json"}).json()
    assert json.loads(data["args"]) == {"user": "José", "nested": {"Password": "•••"}}
    page = client.get(URL, {"task_id": task.id}).content.decode()
    assert "hunter2" not in page
    # Shown as written, not as \u escapes.
    assert "&quot;user&quot;: &quot;José&quot;" in page
    assert "&quot;Password&quot;: &quot;•••&quot;" in page


def test_status_view_staff_hides_tasks_from_anonymous_users(client, admin_client, settings):
    settings.DJANGO_SIMPLE_QUEUE_STATUS_VIEW = "staff"
    task = TaskFactory()
    assert client.get(URL, {"task_id": task.id}).status_code == 400
    assert admin_client.get(URL, {"task_id": task.id}).status_code == 200


def test_status_view_callable(client, settings):
    settings.DJANGO_SIMPLE_QUEUE_STATUS_VIEW = "tests.test_views.only_queue_public"
    public = TaskFactory(queue="public")
    private = TaskFactory(queue="private")
    assert client.get(URL, {"task_id": public.id}).status_code == 200
    assert client.get(URL, {"task_id": private.id}).status_code == 400


def only_queue_public(request, task):
    return task.queue == "public"


def test_post_is_not_allowed(client):
    task = TaskFactory()
    assert client.post(URL + f"?task_id={task.id}").status_code == 405


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "Missing task_id parameter."),
        ("&task_id=", "Missing task_id parameter."),
        ("&task_id=nope", "Invalid task_id format."),
        ("&task_id=00000000-0000-0000-0000-000000000000", "Task not found."),
    ],
)
def test_json_errors_are_json_with_the_same_messages(client, query, message):
    response = client.get(URL + "?type=json" + query)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": message}


def test_json_keeps_the_originals_formats_and_adds_iso_dates_and_an_arguments_object(client):
    task = TaskFactory(completed=True, args=json.dumps({"a": 1, "token": "t0p"}))
    task.refresh_from_db()
    data = client.get(URL, {"task_id": str(task.id), "type": "json"}).json()
    # The original's keys, as its clients parse them.
    assert data["created"] == str(task.created) and data["modified"] == str(task.modified)
    assert " " in data["created"]  # str(datetime), not ISO 8601's "T"
    assert isinstance(data["args"], str) and json.loads(data["args"]) == {"a": 1, "token": "•••"}
    # Ours: ISO 8601, and the arguments as an object beside the text.
    assert data["started_at"] == task.started_at.isoformat()
    assert data["finished_at"] == task.finished_at.isoformat()
    assert data["arguments"] == {"a": 1, "token": "•••"}


TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/srv/app/secret_module.py", line 12, in run\n'
    "    connect(dsn)\n"
    "ValueError: boom\n"
)


def test_visitors_see_the_last_line_of_an_error_and_staff_all_of_it(client, admin_client):
    task = TaskFactory(failed=True, error=TRACEBACK)
    query = {"task_id": str(task.id)}
    assert client.get(URL, {**query, "type": "json"}).json()["error"] == "ValueError: boom"
    page = client.get(URL, query).content.decode()
    assert "ValueError: boom" in page and "/srv/app" not in page
    assert "staff see the whole traceback" in page
    assert admin_client.get(URL, {**query, "type": "json"}).json()["error"] == TRACEBACK
    page = admin_client.get(URL, query).content.decode()
    assert "/srv/app/secret_module.py" in page and "staff see the whole" not in page


def test_status_full_errors_shows_the_whole_error_to_everyone(client, settings):
    settings.DJANGO_SIMPLE_QUEUE_STATUS_FULL_ERRORS = True
    task = TaskFactory(failed=True, error=TRACEBACK)
    assert client.get(URL, {"task_id": task.id, "type": "json"}).json()["error"] == TRACEBACK
    assert "/srv/app/secret_module.py" in client.get(URL, {"task_id": task.id}).content.decode()
