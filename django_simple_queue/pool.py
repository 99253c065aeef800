"""The worker's child processes: forked after Django is set up, reused for several tasks.

The supervisor sends a child a task (as plain field values) over a pipe, and may queue one more
behind it; the child runs them in order with ``execution.run``, streams output and progress back,
and reports each outcome with its captured log. A child that
crashes, is killed, or outlives its supervisor takes nothing else down with it.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import multiprocessing
import operator
import os
import pickle
import signal
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from django import db

from django_simple_queue import execution
from django_simple_queue.lifecycle import Outcome, truncate
from django_simple_queue.models import Task

_fork = multiprocessing.get_context("fork")
PR_SET_PDEATHSIG = 1
# Tasks a reused child may hold at once while tasks are short: one running, the rest waiting in its
# pipe, so that it never waits for the supervisor between two tasks.
QUEUE_DEPTH = 16


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


# The supervisor's connections as this child inherited them. Kept referenced so that they are never
# finalized here: closing one would end the supervisor's session (it is the same socket).
_inherited: list[Any] = []


def _forget_connections() -> None:
    """Make the ORM open a connection of its own if a task uses it; never touch the inherited ones.

    The supervisor keeps its connection across forks (reconnecting for every fresh child would cost
    more than the task), so the child must not use, close or even garbage-collect it.
    """
    for wrapper in db.connections.all(initialized_only=True):
        if wrapper.connection is not None:
            _inherited.append(wrapper.connection)
            wrapper.connection = None
            wrapper.in_atomic_block = False
            wrapper.savepoint_ids = []
            wrapper.needs_rollback = False
            wrapper.closed_in_transaction = False
            wrapper.run_on_commit = []


def _drop_dead_connections() -> None:
    """Close connections the server dropped while this child was idle, before a task uses them."""
    for conn in db.connections.all(initialized_only=True):
        if conn.connection is not None and not conn.is_usable():
            conn.close()


def _sendable(outcome: Outcome) -> Outcome:
    if outcome.exception is not None:
        try:
            pickle.dumps(outcome.exception)
        except Exception:
            outcome.exception = RuntimeError(repr(outcome.exception))
    return outcome


FIELDS = [f.attname for f in Task._meta.concrete_fields]
_values = operator.attrgetter(*FIELDS)


def task_message(task: Task) -> tuple[Any, ...]:
    """A task as the plain field values a child needs: cheaper to pickle than a model instance."""
    return _values(task)


def child_main(
    conn: Connection, parent_pid: int, log_path: str, max_tasks: int, log_limit: int = 0
) -> None:
    # Ctrl-C and a service manager's SIGTERM reach the whole process group; the supervisor
    # decides what stops (it lets running tasks finish within SHUTDOWN_GRACE), not the child.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(parent_pid)
    _forget_connections()
    sink = PipeSink(conn)
    done = 0
    fd = os.open(log_path, os.O_RDWR | os.O_CREAT, 0o600)
    while max_tasks <= 0 or done < max_tasks:
        if not conn.poll(1.0):
            if os.getppid() != parent_pid:
                os._exit(1)
            continue
        batch = conn.recv()
        if batch is None:
            break
        _drop_dead_connections()
        for values in batch:
            task = Task.from_db(None, FIELDS, values)
            # The supervisor may already have queued the next task: the log travels with the outcome.
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            with execution.capture(fd, os_level=True):
                outcome = execution.run(task, sink)
            outcome.log = _read_back(fd, log_limit)
            db.close_old_connections()
            # One message per task, at once: if a later task kills this process, the supervisor
            # still reads these from the pipe.
            conn.send(("done", _sendable(outcome)))
            done += 1
    os.close(fd)
    db.connections.close_all()


def _read_back(fd: int, limit: int) -> str | None:
    if not os.fstat(fd).st_size:
        return None
    data = os.pread(fd, limit + 1, 0)
    return truncate(data.decode("utf-8", "replace"), limit)


@dataclass
class Child:
    process: Any
    conn: Connection
    log_path: str
    max_tasks: int
    runs: int = 0
    # Tasks sent to this child, in the order it runs them: the first one is running.
    queue: deque[Task] = field(default_factory=deque)
    started: float = 0.0
    deadline: float | None = None
    # Why the supervisor is stopping this child's task: "timeout", "cancel", "shutdown" or "lost".
    stop_reason: str | None = None
    timeouts: dict[Any, int | None] = field(default_factory=dict)

    @property
    def task(self) -> Task | None:
        """The task this child is running (the supervisor's view), or None."""
        return self.queue[0] if self.queue else None

    @property
    def busy(self) -> bool:
        return bool(self.queue)

    @property
    def idle(self) -> bool:
        """Free for another task: not busy, alive, and not about to exit after its last task."""
        return not self.busy and self.room() > 0

    def room(self, depth: int = 1) -> int:
        """How many more tasks this child may be sent now, holding at most ``depth``."""
        if self.stop_reason is not None or not self.process.is_alive():
            return 0
        left = self.max_tasks - self.runs if self.max_tasks > 0 else depth
        return max(min(depth - len(self.queue), left), 0)

    def start(self, tasks: list[Task], timeouts: list[int | None]) -> None:
        """Send ``tasks`` in one message; each starts when the ones before it are done."""
        first = not self.queue
        for task, timeout in zip(tasks, timeouts, strict=True):
            self.queue.append(task)
            self.timeouts[task.id] = timeout
        self.runs += len(tasks)
        if first:
            self._begin(time.monotonic())
        self.conn.send([task_message(task) for task in tasks])

    def _begin(self, now: float) -> None:
        assert self.queue
        timeout = self.timeouts.get(self.queue[0].id)
        self.started = now
        self.deadline = now + timeout if timeout else None
        self.stop_reason = None

    def finished_one(self) -> Task:
        """The running task is done: the next queued one (if any) is running from now on."""
        task = self.queue.popleft()
        self.timeouts.pop(task.id, None)
        if self.queue:
            self._begin(time.monotonic())
        return task

    def waiting(self) -> list[Task]:
        """Tasks sent to this child that have not started: given back when the child is lost."""
        rest = list(self.queue)[1:]
        for task in rest:
            self.timeouts.pop(task.id, None)
        while len(self.queue) > 1:
            self.queue.pop()
        return rest

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


def spawn(count: int, max_tasks: int, log_limit: int = 10 * 1024 * 1024) -> list[Child]:
    """Fork ``count`` children; each drops the supervisor's database connections (``_forget_connections``)."""
    # Objects that exist now are never freed by the children: keep the collector from touching
    # (and so copying) their memory pages.
    gc.freeze()
    children = []
    for _ in range(count):
        parent_conn, child_conn = _fork.Pipe()
        fd, log_path = tempfile.mkstemp(prefix="dsq-", suffix=".log")
        os.close(fd)
        process = _fork.Process(
            target=child_main,
            args=(child_conn, os.getpid(), log_path, max_tasks, log_limit),
            daemon=True,
        )
        process.start()
        child_conn.close()
        children.append(
            Child(process=process, conn=parent_conn, log_path=log_path, max_tasks=max_tasks)
        )
    return children
