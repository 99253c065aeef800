"""Running one task in the calling process, as the original's worker did: ``execute_task``.

Its import path in the original, ``django_simple_queue.worker.execute_task``, still works.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterator

from django.db import DatabaseError, connections

from django_simple_queue import conf, execution, lifecycle
from django_simple_queue.models import Task
from django_simple_queue.output import capped

logger = logging.getLogger("django_simple_queue")


def worker_name() -> str:
    """This process's name on the tasks it claims: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def execute_task(task_id: uuid.UUID | str, log_fd: int | None = None) -> None:
    """Run one task in this process and record its outcome.

    With ``log_fd``, the task's stdout, stderr and root logging go to that file descriptor.
    """
    task = Task.objects.get(id=task_id)
    if task.status not in (Task.QUEUED, Task.PROGRESS):
        return
    if not lifecycle.claim_one(task, worker_name(), pid=os.getpid()):
        return  # another process claimed it first, and runs it
    sink = _DatabaseSink(task)
    with _heartbeats(task):
        if log_fd is None:
            outcome = execution.run(task, sink)
        else:
            with execution.capture(log_fd, os_level=False):
                outcome = execution.run(task, sink)
            os.close(log_fd)
    lifecycle.finish(task, outcome)


class _DatabaseSink:
    """Writes a task's streamed output and progress straight to its row."""

    def __init__(self, task: Task) -> None:
        self.task = task
        self.written = 0

    def output(self, text: str) -> None:
        kept = capped(text, self.written, conf.get_max_output_size())
        self.written += len(text.encode())
        if kept is not None:
            lifecycle.append_output(self.task, kept)

    def progress(self, value: float | None, message: str | None) -> None:
        lifecycle.append_output(self.task, "", progress=value, message=message)


@contextlib.contextmanager
def _heartbeats(task: Task) -> Iterator[None]:
    """Refresh the heartbeat of ``task``'s claim from a thread while it runs in this process:
    a worker would otherwise take the claim for lost after STALE_AFTER and run the task again."""
    stop = threading.Event()
    interval = float(conf.get("HEARTBEAT_INTERVAL"))

    def beat() -> None:
        try:
            while not stop.wait(interval):
                try:
                    lifecycle.heartbeat([task])
                except DatabaseError as exc:  # tried again at the next beat
                    logger.warning("could not refresh the heartbeat of %s: %s", task.id, exc)
        finally:
            connections.close_all()  # this thread's own

    thread = threading.Thread(target=beat, name=f"heartbeat of {task.id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
