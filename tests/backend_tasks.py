"""``@task`` functions for tests/test_backends.py, run through ``DatabaseBackend``.

Not in ALLOWED_TASKS on purpose: Django tasks of our backend are allowed by construction.
The signal receivers record, in the ``Execution`` side table, which process sent what.
"""

from __future__ import annotations

import asyncio
import os
import time

from django.dispatch import receiver

from django_simple_queue._compat import task_enqueued, task_finished, task_started

try:
    from django.tasks import task
except ImportError:
    from django_tasks import task


@task
def add(a, b=1):
    return a + b


@task(queue_name="other", priority=5)
def pair(x, *, label="pair"):
    return (label, x, {"nested": (1, 2)})


@task
def fail(message="boom"):
    raise ValueError(message)


@task(takes_context=True, max_attempts=3)
def flaky(context, fail_until):
    """Fail until attempt ``fail_until``, then return what the context says."""
    if context.attempt < fail_until:
        raise RuntimeError(f"attempt {context.attempt} fails")
    return {
        "attempt": context.attempt,
        "id": context.task_result.id,
        "workers": context.task_result.worker_ids,
    }


@task
async def async_add(a, b):
    await asyncio.sleep(0.01)
    return a + b


@task
def not_json():
    return {"when": object()}


@task(timeout=1)
def sleepy(seconds):
    time.sleep(seconds)


@task(priority=0)
def started_at(label):
    return [label, time.time()]


def plain_function():
    return "never run through a Tasks backend"


def _record(kind, task_result):
    from tests.models import Execution

    Execution.objects.create(key=f"{kind}:{task_result.id}:{task_result.status}", pid=os.getpid())


@receiver(task_enqueued)
def on_enqueued(sender, task_result, **kwargs):
    _record("enqueued", task_result)


@receiver(task_started)
def on_started(sender, task_result, **kwargs):
    _record("started", task_result)


@receiver(task_finished)
def on_finished(sender, task_result, **kwargs):
    _record("finished", task_result)
