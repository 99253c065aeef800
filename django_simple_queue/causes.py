"""The cause of a failed attempt, as the qualified class of its exception (``Task.exception_type``).

A failure that raised names its exception's class (``builtins.ValueError``, ``myapp.errors.Gone``);
one that left no exception (the task's process died, its worker was lost) is ``WORKER_LOST``, the
class Django's Tasks API reports for it (``backends.WorkerLost``). Rows that failed before the column
existed are given the class named by the last line of their error (``from_error``).
"""

from __future__ import annotations

import builtins
import re

from django_simple_queue import exceptions
from django_simple_queue.output import error_summary

# backends.WorkerLost's path, written out: backends needs Django's Tasks API, the queue does not.
WORKER_LOST = "django_simple_queue.backends.WorkerLost"
TIMEOUT = "builtins.TimeoutError"
# A task stopped by a dependency that failed or was cancelled: it never ran (workflows.py).
DEPENDENCY = "django_simple_queue.exceptions.DependencyFailed"
UNKNOWN = "unknown"

# The errors the queue itself writes when an attempt leaves no exception (worker, monitor,
# lifecycle), as they read on their last line.
_LOST = re.compile(
    r"no longer running|exited with code|was lost: no heartbeat|The task's process"
    r"|could not read this task's outcome"
)
_TIMED_OUT = re.compile(r"^Task timed out after")
# A traceback's last line: the exception's (qualified) name, then ":" and its message, if any.
_NAME = re.compile(r"^([A-Za-z_][\w.]*)(?::|$)")


def class_path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def of_exception(exception: BaseException | None) -> str:
    """The cause of a failed attempt that raised ``exception`` (None: it left no exception)."""
    return WORKER_LOST if exception is None else class_path(type(exception))


def _qualified(name: str) -> str:
    """``name`` as ``class_path`` gives it: a traceback leaves out ``builtins.`` (and our own
    exceptions were written by their bare name)."""
    if "." in name:
        return name
    for module in (builtins, exceptions):
        cls = getattr(module, name, None)
        if isinstance(cls, type) and issubclass(cls, BaseException):
            return class_path(cls)
    return name


def from_error(error: str | None) -> str:
    """The cause named by an error text's last line, for rows that failed before the column was
    added: ``ValueError: bad`` → ``builtins.ValueError``, or ``unknown``."""
    line = error_summary(error)
    if _TIMED_OUT.search(line):
        return TIMEOUT
    if _LOST.search(line):
        return WORKER_LOST
    match = _NAME.match(line)
    if match is None:
        return UNKNOWN
    return _qualified(match.group(1))[:255]
