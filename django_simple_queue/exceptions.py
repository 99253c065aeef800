"""Exceptions raised by django-simple-queue."""

from __future__ import annotations


class TaskError(Exception):
    """Base class of this package's errors."""


class TaskNotAllowedError(TaskError):
    """The dotted path is not in DJANGO_SIMPLE_QUEUE_ALLOWED_TASKS."""


class InvalidTaskPath(TaskError, ValueError):
    """The dotted path cannot be imported or does not name a callable."""


class InvalidTaskArguments(TaskError, ValueError):
    """The arguments are not a JSON object that fits the task."""


class InvalidStateChange(TaskError):
    """The task is not in a state that allows the requested change."""


class WorkerNameTaken(TaskError):
    """A live worker elsewhere already has the name a starting worker asked for."""


class DependencyFailed(TaskError):
    """The class recorded for a task that did not run because a task it depends on failed or was
    cancelled (``workflows``)."""
