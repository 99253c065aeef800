"""The worker's child processes: forked after Django is set up, reused for several tasks.

The supervisor sends a child one task at a time over a pipe; the child runs it with
``execution.run``, streams output and progress back, and reports the outcome. A child that
crashes, is killed, or outlives its supervisor takes nothing else down with it.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import pickle
import signal
import tempfile
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from django import db

from django_simple_queue import execution
from django_simple_queue.lifecycle import Outcome
from django_simple_queue.models import Task

_fork = multiprocessing.get_context("fork")
PR_SET_PDEATHSIG = 1


class PipeSink:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def output(self, text: str) -> None:
        self.conn.send(("output", text))

    def progress(self, value: float | None, message: str | None) -> None:
        self.conn.send(("progress", (value, message)))


def _die_with_parent(parent_pid: int) -> None:
    """Ask Linux to kill this child when the supervisor dies, however it dies."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:
        os._exit(1)


def _sendable(outcome: Outcome) -> Outcome:
    if outcome.exception is not None:
        try:
            pickle.dumps(outcome.exception)
        except Exception:
            outcome.exception = RuntimeError(repr(outcome.exception))
    return outcome


def _drop_dead_connections() -> None:
    """Close connections the server dropped while this child was idle, before a task uses them."""
    for conn in db.connections.all(initialized_only=True):
        if conn.connection is not None and not conn.is_usable():
            conn.close()


def child_main(conn: Connection, parent_pid: int, log_path: str, max_tasks: int) -> None:
    # Ctrl-C and a service manager's SIGTERM reach the whole process group; the supervisor
    # decides what stops (it lets running tasks finish within SHUTDOWN_GRACE), not the child.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(parent_pid)
    sink = PipeSink(conn)
    done = 0
    while max_tasks <= 0 or done < max_tasks:
        if not conn.poll(1.0):
            if os.getppid() != parent_pid:
                os._exit(1)
            continue
        task = conn.recv()
        if task is None:
            break
        _drop_dead_connections()
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with execution.capture(fd, os_level=True):
                outcome = execution.run(task, sink)
        finally:
            os.close(fd)
        db.close_old_connections()
        conn.send(("done", _sendable(outcome)))
        done += 1
    db.connections.close_all()


@dataclass
class Child:
    process: Any
    conn: Connection
    log_path: str
    max_tasks: int
    runs: int = 0
    task: Task | None = None
    started: float = 0.0
    deadline: float | None = None
    # Why the supervisor is stopping this child's task: "timeout", "cancel", "shutdown" or "lost".
    stop_reason: str | None = None
    pending: list[Any] = field(default_factory=list)

    @property
    def busy(self) -> bool:
        return self.task is not None

    @property
    def idle(self) -> bool:
        """Free for another task: not busy, alive, and not about to exit after its last task."""
        spent = 0 < self.max_tasks <= self.runs
        return not self.busy and not spent and self.process.is_alive()

    def start(self, task: Task, timeout: int | None) -> None:
        self.task = task
        self.runs += 1
        self.started = time.monotonic()
        self.deadline = self.started + timeout if timeout else None
        self.stop_reason = None
        self.conn.send(task)

    def stop_task(self, reason: str) -> None:
        """Kill the child running this task (it ignores SIGTERM, which may reach its whole group)."""
        if self.stop_reason is None:
            self.stop_reason = reason
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()

    def read_log(self, limit: int) -> str | None:
        return execution.read_log(self.log_path, limit)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.log_path)


def spawn(count: int, max_tasks: int) -> list[Child]:
    """Fork ``count`` children. Database connections are closed first: none crosses a fork."""
    db.connections.close_all()
    children = []
    for _ in range(count):
        parent_conn, child_conn = _fork.Pipe()
        fd, log_path = tempfile.mkstemp(prefix="dsq-", suffix=".log")
        os.close(fd)
        process = _fork.Process(
            target=child_main,
            args=(child_conn, os.getpid(), log_path, max_tasks),
            daemon=True,
        )
        process.start()
        child_conn.close()
        children.append(
            Child(process=process, conn=parent_conn, log_path=log_path, max_tasks=max_tasks)
        )
    return children
