from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from django_simple_queue.exceptions import InvalidTaskArguments, InvalidTaskPath
from django_simple_queue.models import Task
from django_simple_queue.utils import TaskNotAllowedError, build_task, create_task, create_tasks

pytestmark = pytest.mark.django_db


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
    with django_assert_max_num_queries(4):
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
