"""Verdicts on tasks whose process died or ran too long (the original's monitor API)."""

from __future__ import annotations

import os
import socket
import uuid

from django.db.models import Q

from django_simple_queue import lifecycle
from django_simple_queue.lifecycle import Ending, Outcome
from django_simple_queue.models import Task


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (a zombie does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # It exists, under another user.
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """A process that has exited but was not reaped yet (Linux; elsewhere, never)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return False


def detect_orphaned_tasks() -> list[Task]:
    """Fail In-progress tasks whose worker process, on this host, is no longer running; return
    those whose outcome was written (retried or failed).

    Tasks of workers on other hosts are left to the heartbeat rescue (``lifecycle.rescue_stale``).
    """
    host = socket.gethostname()
    running = (
        Task.objects.running()
        .filter(worker_pid__isnull=False)
        .filter(Q(worker_id="") | Q(worker_id__startswith=f"{host}:"))
    )
    orphaned = []
    for task in running:
        if task.worker_pid is None or pid_alive(task.worker_pid):
            continue
        error = f"Task failed: worker process (PID {task.worker_pid}) no longer running"
        if lifecycle.finish(task, Outcome(Ending.FAILED, error=error)) is not None:
            orphaned.append(task)
    return orphaned


def handle_subprocess_exit(task_id: uuid.UUID, exit_code: int | None) -> None:
    """A task's process exited: a non-zero code fails the task (or retries it)."""
    if not exit_code:
        return
    task = Task.objects.get(id=task_id)
    if task.status == Task.PROGRESS:
        lifecycle.finish(
            task, Outcome(Ending.FAILED, error=f"Worker subprocess exited with code {exit_code}")
        )


def handle_task_timeout(task_id: uuid.UUID, timeout_seconds: int) -> None:
    """A task ran past its timeout: fail it (or retry it) with a TimeoutError."""
    task = Task.objects.get(id=task_id)
    if task.status == Task.PROGRESS:
        lifecycle.finish(
            task,
            Outcome(
                Ending.TIMED_OUT,
                error=f"Task timed out after {timeout_seconds} seconds",
                exception=TimeoutError(f"Task exceeded {timeout_seconds}s timeout"),
            ),
        )
