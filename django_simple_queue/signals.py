"""Signals sent with ``sender=Task`` around each task, as the original sends them.

- ``before_job(task)``: the task is about to run.
- ``on_success(task)``: it finished without error.
- ``on_failure(task, error)``: it failed; ``error`` is the exception, None when the process was
  lost or exited, a ``TimeoutError`` on timeout.
- ``before_loop(task, iteration)`` / ``after_loop(task, output, iteration)``: around each step
  of a generator task, counting from 0.

``on_success`` and ``on_failure`` are sent once the task's new state is committed; a receiver's
exception is logged (logger ``django_simple_queue``), not raised, so it cannot undo or interrupt
the queue's bookkeeping.
"""

from __future__ import annotations

import logging
from typing import Any

from django.dispatch import Signal

logger = logging.getLogger("django_simple_queue")

before_job = Signal()
on_success = Signal()
on_failure = Signal()
before_loop = Signal()
after_loop = Signal()


def send_robustly(signal: Signal, name: str, about: Any, sender: Any, **kwargs: Any) -> None:
    """Send ``signal`` to every receiver; one that raises is logged with its traceback (naming
    the signal and the task ``about``), not raised, and the others still run."""
    for receiver, response in signal.send_robust(sender, **kwargs):
        if isinstance(response, Exception):
            logger.error(
                "%s receiver %r failed for %s: %r",
                name,
                receiver,
                about,
                response,
                exc_info=response,
            )
