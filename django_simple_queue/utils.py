"""The original's import path for enqueueing; the code lives in ``enqueue``."""

from __future__ import annotations

from django_simple_queue.enqueue import (
    TaskNotAllowedError,
    add_to_batch,
    build_task,
    create_batch,
    create_task,
    create_tasks,
)

__all__ = [
    "TaskNotAllowedError",
    "add_to_batch",
    "build_task",
    "create_batch",
    "create_task",
    "create_tasks",
]
