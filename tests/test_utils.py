"""``django_simple_queue.utils``: the original's import path for enqueueing keeps working."""

from __future__ import annotations

import pytest

from django_simple_queue import enqueue, exceptions, utils
from django_simple_queue.models import Task


def test_utils_re_exports_the_enqueue_api():
    assert utils.create_task is enqueue.create_task
    assert utils.create_tasks is enqueue.create_tasks
    assert utils.build_task is enqueue.build_task
    assert utils.create_batch is enqueue.create_batch
    assert utils.add_to_batch is enqueue.add_to_batch
    assert utils.TaskNotAllowedError is exceptions.TaskNotAllowedError
    assert set(utils.__all__) == {
        "TaskNotAllowedError",
        "add_to_batch",
        "build_task",
        "create_batch",
        "create_task",
        "create_tasks",
    }


@pytest.mark.django_db
def test_create_task_from_utils_queues_and_refuses_non_dict_args():
    task_id = utils.create_task("tests.tasks.add", {"a": 1})
    assert Task.objects.get(id=task_id).status == Task.QUEUED
    with pytest.raises(TypeError, match="args should be of type dict"):
        utils.create_task("tests.tasks.add", [1])
    with pytest.raises(utils.TaskNotAllowedError):
        utils.create_task("os.system", {"command": "true"})
