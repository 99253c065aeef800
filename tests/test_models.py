from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError

from django_simple_queue.models import Task
from tests.factories import TaskFactory

pytestmark = pytest.mark.django_db


def test_status_integers_and_labels_are_the_originals():
    assert dict(Task.STATUS_CHOICES) == {
        0: "Queued",
        1: "In progress",
        2: "Completed",
        3: "Failed",
        4: "Cancelled",
        5: "Waiting",  # ours: the original's five keep their numbers
    }
    assert (Task.QUEUED, Task.PROGRESS, Task.COMPLETED, Task.FAILED, Task.CANCELLED) == (
        0,
        1,
        2,
        3,
        4,
    )


def test_as_dict_has_the_original_keys_and_status_label():
    task = TaskFactory(completed=True, args='{"a": 1}', worker_pid=12, log="l", error=None)
    data = task.as_dict
    assert list(data) == [
        "id",
        "created",
        "modified",
        "task",
        "args",
        "status",
        "output",
        "worker_pid",
        "error",
        "log",
    ]
    assert data["status"] == "Completed"
    assert data["args"] == '{"a": 1}'
    assert data["id"] == str(task.id)
    json.dumps(data)


def test_full_clean_runs_clean_task_and_clean_args():
    task = Task(task="tests.tasks.nope", args="{not json")
    with pytest.raises(ValidationError) as info:
        task.full_clean()
    assert set(info.value.message_dict) == {"task", "args"}
    assert "Invalid callable" in info.value.message_dict["task"][0]
    assert "Invalid JSON" in info.value.message_dict["args"][0]


def test_clean_args_accepts_empty_and_rejects_a_list():
    Task(task="tests.tasks.add", args="").clean_args()
    Task(task="tests.tasks.add", args=None).clean_args()
    with pytest.raises(ValidationError) as info:
        Task(task="tests.tasks.add", args="[1]").clean_args()
    assert "JSON object" in info.value.message_dict["args"][0]


def test_callable_task_raises_the_originals_exception_types():
    assert Task._callable_task("tests.tasks.add")(a=1) == 2
    with pytest.raises(ImportError):
        Task._callable_task("tests.nosuchmodule.fn")
    with pytest.raises(AttributeError):
        Task._callable_task("tests.tasks.missing")
    with pytest.raises(TypeError):
        Task._callable_task("tests.tasks.NOT_CALLABLE")


def test_queryset_states():
    queued = TaskFactory()
    running = TaskFactory(running=True)
    done = TaskFactory(completed=True)
    failed = TaskFactory(failed=True)
    assert list(Task.objects.ready()) == [queued]
    assert list(Task.objects.running()) == [running]
    assert set(Task.objects.finished()) == {done, failed}
    assert list(Task.objects.failed()) == [failed]


def test_task_paths_queues_and_worker_names_match_exactly():
    # Python names are case-sensitive; MySQL's usual collations are not, and ignore trailing spaces.
    task = TaskFactory(task="tests.tasks.add", queue="mail", worker_id="box:1")
    assert not Task.objects.filter(task="tests.tasks.ADD").exists()
    assert not Task.objects.filter(task__in=["tests.tasks.add "]).exists()
    assert not Task.objects.filter(queue="Mail").exists()
    assert not Task.objects.filter(worker_id="BOX:1").exists()
    assert list(Task.objects.filter(task="tests.tasks.add", queue__in=["mail"])) == [task]
    assert list(Task.objects.filter(worker_id="box:1").exclude(queue=None)) == [task]


def test_field_lists_are_derived_from_the_model_once():
    from admin_ext.admin import ADD_FIELDS
    from admin_ext.forms import EnqueueForm, QueuedTaskForm

    assert tuple(f.attname for f in Task._meta.concrete_fields) == Task.FIELD_NAMES
    assert "requeued_from_id" in Task.FIELD_NAMES and len(set(Task.FIELD_NAMES)) > 25
    assert set(Task.EDITABLE_FIELDS) <= set(Task.FIELD_NAMES)
    assert list(QueuedTaskForm.base_fields) == list(Task.EDITABLE_FIELDS)
    assert list(EnqueueForm.base_fields) == ADD_FIELDS == ["task", *Task.EDITABLE_FIELDS]
