"""CSV export of task history and CSV import as bulk enqueue, through the admin."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from admin_ext.resources import TaskResource, error_summary
from django_simple_queue.models import Task
from tests.conftest import ROOT, run_python
from tests.factories import TaskFactory

pytestmark = pytest.mark.django_db

EXPORT = "admin:django_simple_queue_task_export"
IMPORT = "admin:django_simple_queue_task_import"
PROCESS_IMPORT = "admin:django_simple_queue_task_process_import"
HEADER = [
    "id",
    "task",
    "queue",
    "priority",
    "status",
    "args",
    "attempts",
    "max_attempts",
    "timeout",
    "created",
    "started",
    "finished",
    "duration_seconds",
    "worker",
    "error_summary",
]


def rows_of(content: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))


def test_resource_exports_history_with_redacted_args():
    start = timezone.now() - timedelta(seconds=90)
    task = TaskFactory(
        failed=True,
        args=json.dumps({"token": "s3cret", "n": 1, "name": "José ☃"}),
        started_at=start,
        finished_at=start + timedelta(seconds=12.5),
        worker_id="h:9",
        error="Traceback (most recent call last):\n  ...\nValueError: boom\n",
    )
    dataset = TaskResource().export()
    assert dataset.headers == HEADER
    row = dict(zip(dataset.headers, dataset[0], strict=True))
    assert row["id"] == str(task.pk)
    assert row["status"] == "Failed"
    assert "s3cret" not in row["args"] and json.loads(row["args"])["n"] == 1
    # As written, not as \u escapes: what a spreadsheet shows.
    assert '"token": "•••"' in row["args"] and '"name": "José ☃"' in row["args"]
    # Every timestamp column alike: ISO 8601, to the microsecond, with the time zone.
    assert row["created"] == task.created.isoformat()
    assert row["started"] == start.isoformat() and "+00:00" in row["started"]
    assert row["finished"] == (start + timedelta(seconds=12.5)).isoformat()
    assert row["duration_seconds"] == "12.500"
    assert (row["worker"], row["error_summary"]) == ("h:9", "ValueError: boom")
    assert error_summary(None) == ""


def test_export_of_the_filtered_list(admin_client):
    mail = TaskFactory(queue="mail", completed=True)
    TaskFactory(queue="default")
    response = admin_client.post(
        reverse(EXPORT) + "?queue=mail",
        {"format": "0", "resource": "0", **{f"taskresource_{f}": "on" for f in HEADER}},
    )
    assert response.status_code == 200, response.content[:500]
    rows = rows_of(response.content)
    assert [row["id"] for row in rows] == [str(mail.pk)]
    assert rows[0]["status"] == "Completed"


def test_export_of_selected_rows(admin_client):
    a, _b, c = TaskFactory(), TaskFactory(), TaskFactory()
    response = admin_client.post(
        reverse("admin:django_simple_queue_task_changelist"),
        {"action": "export_admin_action", "_selected_action": [str(a.pk), str(c.pk)]},
    )
    assert response.status_code == 200
    response = admin_client.post(
        reverse(EXPORT),
        {
            "format": "0",
            "resource": "0",
            "export_items": [str(a.pk), str(c.pk)],
            **{f"taskresource_{f}": "on" for f in HEADER},
        },
    )
    assert response.status_code == 200
    assert {row["id"] for row in rows_of(response.content)} == {str(a.pk), str(c.pk)}


def upload(client, text: str):
    file = SimpleUploadedFile("tasks.csv", text.encode(), content_type="text/csv")
    return client.post(reverse(IMPORT), {"import_file": file, "format": "0", "resource": "0"})


def test_import_previews_then_enqueues_valid_rows(admin_client, admin_user):
    text = 'task,args,queue\ntests.tasks.add,"{""a"": 1}",mail\ntests.tasks.echo,"{""x"": 2}",\n'
    response = upload(admin_client, text)
    assert response.status_code == 200
    html = response.content.decode()
    assert "confirm" in html.lower()
    assert not Task.objects.exists()  # the preview queued nothing
    form = response.context["confirm_form"]
    data = {name: form.initial[name] for name in form.fields if name in form.initial}
    response = admin_client.post(reverse(PROCESS_IMPORT), data, follow=True)
    assert response.status_code == 200
    tasks = {t.task: t for t in Task.objects.all()}
    assert set(tasks) == {"tests.tasks.add", "tests.tasks.echo"}
    assert tasks["tests.tasks.add"].queue == "mail" and tasks["tests.tasks.echo"].queue == "default"
    assert all(
        t.status == Task.QUEUED and t.enqueued_by == admin_user.username for t in tasks.values()
    )
    assert json.loads(tasks["tests.tasks.add"].args) == {"a": 1}


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ('os.system,"{""command"": ""true""}"', "Select a valid choice"),
        ("tests.tasks.add,{bad", "not valid JSON"),
        ('tests.tasks.add,"[1]"', "must be a JSON object"),
        ('tests.tasks.add,"{""b"": 1}"', "missing required argument"),
        ('tests.tasks.add,"{""a"": 1, ""zz"": 1}"', "unexpected argument"),
        ('tests.tasks.monthly,"{""month"": null}"', "argument 'month' must be int, not null."),
    ],
)
def test_import_refuses_invalid_rows_and_queues_nothing(admin_client, row, message):
    text = f'task,args\ntests.tasks.add,"{{""a"": 1}}"\n{row}\n'
    response = upload(admin_client, text)
    assert response.status_code == 200
    html = response.content.decode()
    assert message in html.replace("&#x27;", "'").replace("&quot;", '"')
    assert "confirm_form" not in response.context or response.context["confirm_form"] is None
    assert not Task.objects.exists()


def test_view_only_staff_cannot_import(client, django_user_model):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_task"))
    client.force_login(user)
    response = upload(client, 'task,args\ntests.tasks.add,"{""a"": 1}"\n')
    assert response.status_code == 403
    assert not Task.objects.exists()


def test_admin_works_without_import_export():
    """A project without import_export: the admin loads, has no export, and the check says why."""
    code = (
        "import django, os\n"
        "from django.conf import settings\n"
        "django.setup()\n"
        "from django.core.management import call_command\n"
        "from django.test import Client\n"
        "from django.test.utils import setup_test_environment\n"
        "setup_test_environment()\n"
        "from django.contrib.auth.models import User\n"
        "call_command('migrate', verbosity=0, run_syncdb=True)\n"
        "u = User.objects.create_superuser('a', 'a@x.org', 'pw')\n"
        "c = Client(); c.force_login(u)\n"
        "r = c.get('/admin/django_simple_queue/task/')\n"
        "print(r.status_code, b'export' in r.content.lower(), b'dsq-dashboard' in r.content)\n"
        "r = c.post('/admin/django_simple_queue/task/add/', {'task': 'tests.tasks.add', 'args': '{\"a\": 1}'})\n"
        "print(r.status_code)\n"
        "from django.core import checks\n"
        "print([m.id for m in checks.run_checks() if m.id == 'django_simple_queue.W003'])\n"
    )
    env = {
        "DJANGO_SETTINGS_MODULE": "tests.settings_no_import_export",
        "PYTHONPATH": str(ROOT),
        "PATH": "/usr/bin:/bin",
    }
    lines = run_python(code, env, timeout=120).strip().splitlines()
    assert lines == ["200 False True", "302", "['django_simple_queue.W003']"]


@pytest.mark.parametrize("allowed", [None, set()])
def test_import_without_allowed_tasks_queues_nothing(admin_client, settings, allowed):
    settings.DJANGO_SIMPLE_QUEUE_ALLOWED_TASKS = allowed
    response = upload(admin_client, 'task,args\ntests.tasks.add,"{""a"": 1}"\n')
    assert response.status_code == 200
    assert "DJANGO_SIMPLE_QUEUE_ALLOWED_TASKS" in response.content.decode()
    assert response.context.get("confirm_form") is None
    assert not Task.objects.exists()


def export_csv(client) -> bytes:
    response = client.post(
        reverse(EXPORT),
        {"format": "0", "resource": "0", **{f"taskresource_{f}": "on" for f in HEADER}},
    )
    assert response.status_code == 200, response.content[:500]
    return response.content


def confirm_import(client, response) -> None:
    form = response.context["confirm_form"]
    assert form is not None, response.content.decode()[-2000:]
    data = {name: form.initial[name] for name in form.fields if name in form.initial}
    assert client.post(reverse(PROCESS_IMPORT), data, follow=True).status_code == 200


def as_queued(task: Task) -> tuple:
    """What an import sets of a task: path, arguments and scheduling."""
    args = json.dumps(json.loads(task.args), sort_keys=True)
    return (task.task, args, task.queue, task.priority, task.max_attempts, task.timeout)


def test_an_exported_file_imports_back_as_the_same_tasks(admin_client):
    TaskFactory(task="tests.tasks.add", args=json.dumps({"a": 1, "b": -2}), completed=True)
    TaskFactory(
        task="tests.tasks.echo",
        args=json.dumps({"x": "=1+1"}),
        queue="-urgent",  # a cell the export defuses and the import restores
        priority=-3,
        max_attempts=4,
        timeout=60,
        failed=True,
    )
    before = {t.pk: as_queued(t) for t in Task.objects.all()}
    content = export_csv(admin_client)
    assert {row["queue"] for row in rows_of(content)} == {"default", "'-urgent"}
    response = upload(admin_client, content.decode("utf-8-sig"))
    assert response.status_code == 200
    confirm_import(admin_client, response)
    copies = Task.objects.exclude(pk__in=before)
    assert sorted(as_queued(t) for t in copies) == sorted(before.values())
    assert {t.status for t in copies} == {Task.QUEUED}


def test_a_bad_row_shows_its_error_in_the_table_and_why_nothing_is_queued(admin_client):
    text = 'task,args\ntests.tasks.add,"{""a"": 1}"\ntests.tasks.add,"{""zz"": 1}"\n'
    response = upload(admin_client, text)
    assert response.status_code == 200
    html = response.content.decode().replace("&#x27;", "'")
    cell = re.search(r'<td class="dsq-row-errors">(.*?)</td>', html, re.S)
    assert cell is not None, html[-3000:]
    assert "unexpected argument" in cell.group(1) or "missing required argument" in cell.group(1)
    assert "validation-error-container" not in html  # the hover-only box is gone
    assert "Nothing was queued" in html and "1 row is not valid" in html
    assert response.context.get("confirm_form") is None
    assert not Task.objects.exists()


def test_an_export_with_hidden_values_is_refused_on_import(admin_client):
    TaskFactory(task="tests.tasks.echo", args=json.dumps({"x": 1, "token": "s3cret"}))
    response = upload(admin_client, export_csv(admin_client).decode("utf-8-sig"))
    html = response.content.decode().replace("&#x27;", "'")
    assert "'token' is •••, the mark of a hidden value" in html
    assert response.context.get("confirm_form") is None
    assert Task.objects.count() == 1
