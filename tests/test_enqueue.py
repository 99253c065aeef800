"""The one insert path, and every way to enqueue going through its checks."""

from __future__ import annotations

import importlib.util
import json
import math
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from django_simple_queue import enqueue, lifecycle
from django_simple_queue.enqueue import build_task, create_task, create_tasks
from django_simple_queue.exceptions import (
    InvalidTaskArguments,
    InvalidTaskPath,
    TaskNotAllowedError,
)
from django_simple_queue.models import Task
from tests.factories import TaskFactory

pytestmark = pytest.mark.django_db

HAS_TASKS_API = bool(
    importlib.util.find_spec("django.tasks") or importlib.util.find_spec("django_tasks")
)


def test_create_task_returns_the_uuid_of_a_queued_row():
    task_id = create_task("tests.tasks.add", {"a": 1, "b": 2})
    task = Task.objects.get(id=task_id)
    assert task.status == Task.QUEUED
    assert json.loads(task.args) == {"a": 1, "b": 2}
    assert (task.queue, task.priority, task.max_attempts, task.timeout) == ("default", 0, 1, None)


def test_create_task_options_are_stored():
    when = timezone.now() + timedelta(minutes=5)
    task_id = create_task(
        "tests.tasks.add",
        {"a": 1},
        queue="mail",
        priority=7,
        run_after=when,
        max_attempts=4,
        timeout=30,
    )
    task = Task.objects.get(id=task_id)
    assert (task.queue, task.priority, task.run_after, task.max_attempts, task.timeout) == (
        "mail",
        7,
        when,
        4,
        30,
    )


@pytest.mark.parametrize("args", [[1, 2], "a=1", None, 3])
def test_non_dict_args_raise_type_error(args):
    with pytest.raises(TypeError, match="args should be of type dict"):
        create_task("tests.tasks.add", args)
    assert not Task.objects.exists()


def test_non_json_args_raise_a_clear_error():
    with pytest.raises(InvalidTaskArguments, match="JSON-serialisable"):
        create_task("tests.tasks.echo", {"when": timezone.now()})
    assert not Task.objects.exists()


@pytest.mark.parametrize("number", [float("nan"), float("inf")])
def test_numbers_json_cannot_hold_are_refused(number):
    with pytest.raises(InvalidTaskArguments, match="not JSON compliant"):
        create_task("tests.tasks.echo", {"x": number})
    assert not Task.objects.exists()


def test_args_larger_than_max_args_size_are_refused(settings):
    settings.DJANGO_SIMPLE_QUEUE_MAX_ARGS_SIZE = 100
    with pytest.raises(InvalidTaskArguments, match="MAX_ARGS_SIZE"):
        create_task("tests.tasks.echo", {"blob": "x" * 200})
    assert not Task.objects.exists()


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("tests.nosuchmodule.task", "'tests.nosuchmodule.task' cannot be imported"),
        ("tests.tasks.missing", "'tests.tasks.missing' cannot be imported"),
        ("tests.tasks.NOT_CALLABLE", "'tests.tasks.NOT_CALLABLE' is not callable"),
    ],
)
def test_bad_paths_raise_an_error_naming_the_path(path, message):
    with pytest.raises(InvalidTaskPath, match=message):
        create_task(path, {})
    assert not Task.objects.exists()


def test_path_outside_allowed_tasks_is_refused():
    with pytest.raises(TaskNotAllowedError, match=r"'os\.system' is not in the allowed list"):
        create_task("os.system", {"command": "true"})
    assert not Task.objects.exists()


def test_allowed_tasks_none_allows_any_callable_and_empty_allows_nothing(settings):
    settings.DJANGO_SIMPLE_QUEUE_ALLOWED_TASKS = None
    assert create_task("json.dumps", {"obj": 1})
    settings.DJANGO_SIMPLE_QUEUE_ALLOWED_TASKS = set()
    with pytest.raises(TaskNotAllowedError):
        create_task("tests.tasks.add", {"a": 1})


def test_arguments_that_do_not_bind_are_refused():
    with pytest.raises(InvalidTaskArguments, match="missing required argument 'a'"):
        create_task("tests.tasks.add", {"b": 1})
    with pytest.raises(InvalidTaskArguments, match="unexpected argument 'c'"):
        create_task("tests.tasks.add", {"a": 1, "c": 1})


def test_signatures_are_worked_out_once_and_unhashable_callables_still_bind():
    from django_simple_queue import callables
    from tests import tasks

    assert callables.signature(tasks.add) is callables.signature(tasks.add)

    class Unhashable:
        __hash__ = None  # type: ignore[assignment]

        def __call__(self, a: int) -> int:
            return a

    callables.bind(Unhashable(), {"a": 1})
    with pytest.raises(InvalidTaskArguments, match="unexpected argument 'b'"):
        callables.bind(Unhashable(), {"a": 1, "b": 2})


def test_create_tasks_bulk_inserts_in_one_query_per_batch(django_assert_max_num_queries):
    items = [{"task": "tests.tasks.add", "args": {"a": i}} for i in range(50)]
    fields = Task._meta.concrete_fields
    batches = math.ceil(50 / connection.ops.bulk_batch_size(fields, [Task()] * 50))
    with django_assert_max_num_queries(2 + batches):  # and a savepoint and its release
        ids = create_tasks(items)
    assert len(ids) == 50
    assert Task.objects.filter(id__in=ids, status=Task.QUEUED).count() == 50


def test_create_tasks_writes_nothing_if_any_item_is_invalid():
    with pytest.raises(InvalidTaskPath):
        create_tasks(
            [
                {"task": "tests.tasks.add", "args": {"a": 1}},
                {"task": "tests.tasks.missing", "args": {}},
            ]
        )
    assert not Task.objects.exists()


def test_create_tasks_accepts_built_tasks():
    ids = create_tasks([build_task("tests.tasks.add", {"a": 1}, queue="q")])
    assert Task.objects.get(id=ids[0]).queue == "q"


@pytest.mark.django_db(transaction=True)
def test_enqueue_in_a_rolled_back_transaction_vanishes():
    class Rollback(Exception):
        pass

    with pytest.raises(Rollback), transaction.atomic():
        create_task("tests.tasks.add", {"a": 1})
        assert Task.objects.count() == 1
        raise Rollback
    assert Task.objects.count() == 0


# Every way to enqueue goes through enqueue.checked_values: code, the Tasks backend, the admin's
# enqueue form, its CSV import, and requeue.

BIG = {"x": "y" * 100}


def admin_add(client, task: str, args: dict) -> list[str]:
    """Post the admin's enqueue form; the form's errors (none when it was saved)."""
    response = client.post(
        reverse("admin:django_simple_queue_task_add"), {"task": task, "args": json.dumps(args)}
    )
    if response.status_code == 302:
        return []
    return [str(e) for errors in response.context["adminform"].form.errors.values() for e in errors]


def csv_import(client, task: str, args: dict) -> str:
    """Upload a one-row CSV to the admin's import; the page it answers with."""
    quoted = json.dumps(args).replace('"', '""')
    text = f'task,args\n{task},"{quoted}"\n'
    file = SimpleUploadedFile("tasks.csv", text.encode(), content_type="text/csv")
    response = client.post(
        reverse("admin:django_simple_queue_task_import"),
        {"import_file": file, "format": "0", "resource": "0"},
    )
    return response.content.decode().replace("&#x27;", "'").replace("&quot;", '"')


def requeue(task: str, args: dict) -> lifecycle.Requeued:
    original = TaskFactory(failed=True, task=task, args=json.dumps(args))
    return lifecycle.requeue_copies(Task.objects.filter(id=original.id))


def test_checks_are_made_by_enqueue_for_code_and_the_admin_and_requeue(admin_client, monkeypatch):
    seen: list[str] = []
    check = enqueue.checked_values

    def spy(task, args, **options):
        seen.append(task)
        return check(task, args, **options)

    monkeypatch.setattr(enqueue, "checked_values", spy)
    create_task("tests.tasks.add", {"a": 1})
    create_tasks([{"task": "tests.tasks.echo", "args": {"x": 1}}])
    assert admin_add(admin_client, "tests.tasks.sleep", {"seconds": 0}) == []
    assert "confirm" in csv_import(admin_client, "tests.tasks.add", {"a": 3})
    assert len(requeue("tests.tasks.count_up", {}).copies) == 1
    assert seen == [
        "tests.tasks.add",
        "tests.tasks.echo",
        "tests.tasks.sleep",
        "tests.tasks.add",
        "tests.tasks.count_up",
    ]


def test_every_path_refuses_arguments_over_max_args_size(admin_client, settings):
    settings.DJANGO_SIMPLE_QUEUE_MAX_ARGS_SIZE = 50
    with pytest.raises(InvalidTaskArguments, match="MAX_ARGS_SIZE"):
        create_task("tests.tasks.echo", BIG)
    with pytest.raises(InvalidTaskArguments, match="MAX_ARGS_SIZE"):
        create_tasks([{"task": "tests.tasks.echo", "args": BIG}])
    assert any(
        "MAX_ARGS_SIZE" in error for error in admin_add(admin_client, "tests.tasks.echo", BIG)
    )
    assert "MAX_ARGS_SIZE" in csv_import(admin_client, "tests.tasks.echo", BIG)
    requeued = requeue("tests.tasks.echo", BIG)
    assert requeued.copies == [] and "MAX_ARGS_SIZE" in requeued.refused[0][1]
    assert not Task.objects.filter(status=Task.QUEUED).exists()


def test_every_path_but_the_tasks_backend_refuses_a_path_not_allowed(admin_client):
    with pytest.raises(TaskNotAllowedError, match="not in the allowed list"):
        create_task("os.system", {"command": "true"})
    with pytest.raises(TaskNotAllowedError, match="not in the allowed list"):
        create_tasks([{"task": "os.system", "args": {"command": "true"}}])
    # The admin's forms offer only allowed tasks.
    assert any("valid choice" in e for e in admin_add(admin_client, "os.system", {"command": "x"}))
    assert "Select a valid choice" in csv_import(admin_client, "os.system", {"command": "x"})
    requeued = requeue("os.system", {"command": "true"})
    (task, reason), *_ = requeued.refused
    assert requeued.copies == [] and task.task == "os.system"
    assert reason.startswith("Task 'os.system' is not in the allowed list")
    assert not Task.objects.filter(status=Task.QUEUED).exists()


def test_requeue_refuses_arguments_that_no_longer_bind_and_copies_the_rest():
    stale = TaskFactory(failed=True, args=json.dumps({"a": 1, "removed": 2}))
    fine = TaskFactory(failed=True)
    requeued = lifecycle.requeue_copies(Task.objects.filter(id__in=[stale.id, fine.id]))
    assert [copy.requeued_from_id for copy in requeued.copies] == [fine.id]
    assert requeued.refused == [(stale, "unexpected argument 'removed'.")]


def test_the_requeue_action_says_which_tasks_were_refused_and_why(admin_client):
    TaskFactory(failed=True, task="os.system", args='{"command": "true"}')
    TaskFactory(failed=True)
    response = admin_client.post(
        reverse("admin:django_simple_queue_task_changelist"),
        {"action": "requeue_tasks", "_selected_action": [str(t.pk) for t in Task.objects.all()]},
        follow=True,
    )
    texts = [str(m) for m in response.context["messages"]]
    assert "1 task was requeued as a new copy." in texts
    assert any(
        t.startswith("1 os.system task was not requeued: Task 'os.system' is not in the allowed")
        for t in texts
    )


@pytest.mark.skipif(not HAS_TASKS_API, reason="needs Django 6.0+ or the django-tasks backport")
def test_the_tasks_backend_refuses_arguments_over_max_args_size(settings):
    from django_simple_queue._compat import InvalidTask
    from tests import backend_tasks

    settings.DJANGO_SIMPLE_QUEUE_MAX_ARGS_SIZE = 50
    with pytest.raises(InvalidTask, match="MAX_ARGS_SIZE"):
        backend_tasks.add.enqueue(1, b="y" * 100)
    with pytest.raises(InvalidTask, match="MAX_ARGS_SIZE"):
        backend_tasks.add.enqueue("y" * 100)
    assert not Task.objects.exists()


@pytest.mark.skipif(not HAS_TASKS_API, reason="needs Django 6.0+ or the django-tasks backport")
def test_the_tasks_backend_enqueues_through_enqueue_insert(monkeypatch):
    from tests import backend_tasks

    inserted: list[Task] = []
    insert = enqueue.insert
    monkeypatch.setattr(enqueue, "insert", lambda obj: inserted.append(obj) or insert(obj))
    result = backend_tasks.add.enqueue(1)
    assert [str(obj.id) for obj in inserted] == [result.id]
    row = Task.objects.get(id=result.id)
    assert (row.backend, row.positional_args, row.enqueued_by) == ("default", [1], "tasks:default")


@pytest.mark.django_db
def test_create_tasks_writes_nothing_when_one_item_is_invalid():
    with pytest.raises(Exception, match="unexpected argument 'nope'"):
        create_tasks(
            [
                {"task": "tests.tasks.add", "args": {"a": 1}},
                {"task": "tests.tasks.add", "args": {"nope": 1}},
            ]
        )
    assert Task.objects.count() == 0


def test_every_path_refuses_a_value_that_does_not_fit_its_type_hint(admin_client):
    refusal = "argument 'month' must be int, not null."
    with pytest.raises(InvalidTaskArguments, match=refusal):
        create_task("tests.tasks.monthly", {"month": None})
    rows = [{"task": "tests.tasks.monthly", "args": {"month": m}} for m in (1, 2, None)]
    with pytest.raises(InvalidTaskArguments, match=refusal):
        create_tasks(rows)
    assert admin_add(admin_client, "tests.tasks.monthly", {"month": None}) == [refusal]
    assert refusal in csv_import(admin_client, "tests.tasks.monthly", {"month": None})
    # A requeue (as a bulk enqueue on PostgreSQL) binds each kind of call once, but checks the
    # values of every call: the second copy has the same argument names as the first.
    fine = TaskFactory(failed=True, task="tests.tasks.monthly", args='{"month": 1}')
    wrong = TaskFactory(failed=True, task="tests.tasks.monthly", args='{"month": null}')
    requeued = lifecycle.requeue_copies(
        Task.objects.filter(id__in=[fine.id, wrong.id]).order_by("created")
    )
    assert len(requeued.copies) == 1 and requeued.refused == [(wrong, refusal)]
    Task.objects.filter(status=Task.QUEUED).delete()
    assert not Task.objects.filter(status=Task.QUEUED).exists()
    assert create_task("tests.tasks.monthly", {"month": 6})
