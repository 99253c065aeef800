"""Django's Tasks API backend (issue 7). ``prepare_call`` is the worker's hook for its rows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django_simple_queue.models import Task


def prepare_call(task: Task, func: Callable[..., Any]) -> tuple[Callable[..., Any], list[Any], dict[str, Any]]:
    """The callable and its positional and keyword arguments for a row enqueued through Django."""
    raise NotImplementedError("Django's Tasks API backend is not available yet.")
