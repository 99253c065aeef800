"""Traces across enqueue and run, when the project has OpenTelemetry (``django-simple-queue[tracing]``).

Enqueueing inside a span stores that span's context on the task (``trace_context``, W3C trace
context headers as JSON); the worker that writes the attempt's outcome records a span for the
attempt, parented by it, so a request and the task it enqueued are one trace. Spans go wherever
the project's OpenTelemetry SDK sends them. Without OpenTelemetry installed every function here
returns at once, and nothing of it is imported (docs/observability.md#traces).
"""

from __future__ import annotations

import functools
import json
import time
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django_simple_queue.models import Task

TRACER_NAME = "django_simple_queue"
# Outcomes (worker.metrics.outcome_label) whose span is not an error.
OK_OUTCOMES = frozenset({"completed", "cancelled"})


@functools.cache
def _api() -> ModuleType | None:
    """OpenTelemetry's ``trace`` module, or None when it is not installed."""
    try:
        from opentelemetry import trace
    except ModuleNotFoundError:
        return None
    return trace


def enabled() -> bool:
    return _api() is not None


def current_context() -> str | None:
    """The current span's context as JSON headers, or None outside a span (or without OpenTelemetry)."""
    if _api() is None:
        return None
    from opentelemetry import propagate

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return json.dumps(carrier, separators=(",", ":")) if carrier else None


def _parent(text: str | None) -> Any:
    """The context stored by ``current_context``, or None when there is none (or it is not JSON)."""
    from opentelemetry import propagate

    try:
        carrier = json.loads(text) if text else None
    except ValueError:
        return None
    return propagate.extract(carrier) if isinstance(carrier, dict) else None


def record_attempt(task: Task, outcome: str, duration: float, error: str = "") -> None:
    """A span for one attempt of ``task`` that ended now after ``duration`` seconds, as a child of
    the span that enqueued it."""
    trace = _api()
    if trace is None:
        return
    end = time.time_ns()
    span = trace.get_tracer(TRACER_NAME).start_span(
        f"run {task.task}",
        context=_parent(task.trace_context),
        kind=trace.SpanKind.CONSUMER,
        start_time=end - int(duration * 1e9),
        attributes={
            "django_simple_queue.task": task.task,
            "django_simple_queue.task_id": str(task.id),
            "django_simple_queue.queue": task.queue,
            "django_simple_queue.attempt": task.attempts,
            "django_simple_queue.outcome": outcome,
        },
    )
    if outcome not in OK_OUTCOMES:
        span.set_status(trace.Status(trace.StatusCode.ERROR, error or outcome))
    span.end(end_time=end)
