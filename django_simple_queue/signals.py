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

from django.dispatch import Signal

before_job = Signal()
on_success = Signal()
on_failure = Signal()
before_loop = Signal()
after_loop = Signal()
