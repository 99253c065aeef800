"""The worker's child processes: forked by its fork server, reused for several tasks.

The supervisor sends a child tasks (as plain field values) over a pipe, several at once while
tasks are short; the child runs them in order with ``execution.run``, streams output and progress
back, and reports each outcome with its captured log. A child that crashes, is killed, or outlives
its supervisor takes nothing else down with it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import operator
import os
import pickle
import select
import signal
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, BinaryIO

from django import db

from django_simple_queue import callables, execution, forkserver
from django_simple_queue.lifecycle import Outcome
from django_simple_queue.models import Task
from django_simple_queue.output import truncate

# Tasks a reused child may hold at once while tasks are short: one running, the rest waiting in its
# pipe, so that it never waits for the supervisor between two tasks.
QUEUE_DEPTH = 32
# Seconds between the SIGTERM that stops a task on its timeout or a cancel and the SIGKILL that
# follows if the task's process group is still there: time for the task to clean up.
STOP_GRACE = 5.0
# Stopped with SIGTERM first; a shutdown whose grace is over, or a lost claim, kills at once.
GENTLE_STOPS = ("timeout", "cancel")


class PipeSink:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def output(self, text: str) -> None:
        self.conn.send(("output", text))

    def progress(self, value: float | None, message: str | None) -> None:
        self.conn.send(("progress", (value, message)))


def _drop_dead_connections() -> None:
    """Close connections the server dropped while this child was idle, before a task uses them."""
    for conn in db.connections.all(initialized_only=True):
        if conn.connection is not None and not conn.is_usable():
            conn.close()


def pack(outcome: Outcome) -> tuple[Outcome, bytes | None, str]:
    """An outcome as a child sends it: its exception apart, pickled, with its repr.

    Some exceptions pickle but do not unpickle (an ``__init__`` with more required arguments, a
    class only the child can import): the message itself must always be readable.
    """
    exception, outcome.exception = outcome.exception, None
    if exception is None:
        return outcome, None, ""
    try:
        data = pickle.dumps(exception)
    except Exception:
        data = None
    return outcome, data, repr(exception)


def unpack(message: tuple[Outcome, bytes | None, str]) -> Outcome:
    """The outcome a child sent, its exception unpickled, or a RuntimeError with its repr."""
    outcome, data, text = message
    if text:
        try:
            outcome.exception = pickle.loads(data) if data is not None else RuntimeError(text)
        except Exception:
            outcome.exception = RuntimeError(text)
    return outcome


FIELDS = Task.FIELD_NAMES
_values = operator.attrgetter(*FIELDS)


def task_message(task: Task) -> tuple[Any, ...]:
    """A task as the plain field values a child needs: cheaper to pickle than a model instance."""
    return _values(task)


def child_main(conn: Connection, parent_pid: int, fd: int, max_tasks: int, log_limit: int) -> None:
    """A child's life: run the tasks the supervisor sends, writing each one's log to ``fd``."""
    # The child leads its own process group: a signal to the worker's group (Ctrl-C, a service
    # manager) does not reach it; the supervisor decides what stops, and signals the whole group.
    # The fork server has no database connection for it to inherit.
    forkserver.die_with_parent(parent_pid)
    sink = PipeSink(conn)
    readable = select.poll()
    readable.register(conn.fileno(), select.POLLIN)
    done = 0
    while max_tasks <= 0 or done < max_tasks:
        if not readable.poll(1000):
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
            conn.send(("done", pack(outcome)))
            done += 1
    db.connections.close_all()


def _read_back(fd: int, limit: int) -> str | None:
    if not os.fstat(fd).st_size:
        return None
    data = os.pread(fd, limit + 1, 0)
    return truncate(data.decode("utf-8", "replace"), limit)


@dataclass
class Child:
    process: forkserver.ChildProcess
    conn: Connection
    # The file the child writes its tasks' logs to (it has no name: it goes with its last fd).
    log: BinaryIO
    max_tasks: int
    runs: int = 0
    # Tasks sent to this child, in the order it runs them: the first one is running.
    queue: deque[Task] = field(default_factory=deque)
    started: float = 0.0
    deadline: float | None = None
    # Why the supervisor is stopping this child: "timeout", "cancel", "shutdown" or "lost", and the
    # id of the task that was running. Final: a child being stopped is sent nothing more.
    stop_reason: str | None = None
    stopped: Any = None
    # When the SIGKILL that follows a SIGTERM is due (monotonic clock), or None.
    kill_at: float | None = None
    timeouts: dict[Any, int | None] = field(default_factory=dict)
    # Its pipe is broken: it died, and is sent nothing more until its death is handled.
    gone: bool = False

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
        if self.gone or self.stop_reason is not None or not self.process.is_alive():
            return 0
        left = self.max_tasks - self.runs if self.max_tasks > 0 else depth
        return max(min(depth - len(self.queue), left), 0)

    def start(self, tasks: list[Task], timeouts: list[int | None]) -> bool:
        """Send ``tasks`` in one message; each starts when the ones before it are done.

        False if the child is gone (it died since its sentinel was last read): nothing was sent.
        """
        try:
            self.conn.send([task_message(task) for task in tasks])
        except OSError:
            self.gone = True
            return False
        first = not self.queue
        for task, timeout in zip(tasks, timeouts, strict=True):
            self.queue.append(task)
            self.timeouts[task.id] = timeout
        self.runs += len(tasks)
        if first:
            self._begin(time.monotonic())
        return True

    def _begin(self, now: float) -> None:
        assert self.queue
        timeout = self.timeouts.get(self.queue[0].id)
        self.started = now
        self.deadline = now + timeout if timeout else None

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

    def stop_task(self, reason: str, now: float) -> None:
        """Stop this child's process group, and so its running task and what the task started.

        On a timeout or a cancel, SIGTERM first and SIGKILL ``STOP_GRACE`` seconds later (see
        ``escalate``); otherwise, or if a SIGKILL is already due, SIGKILL at once.
        """
        if self.stop_reason is None:
            self.stop_reason = reason
            self.stopped = self.task.id if self.task is not None else None
            if reason in GENTLE_STOPS:
                self.kill_at = now + STOP_GRACE
                self.process.terminate()
                return
        elif self.kill_at is None:
            return  # killed already
        self.kill_at = None
        self.process.kill()

    def escalate(self, now: float) -> None:
        """SIGKILL the group of a child that outlived the grace after its SIGTERM."""
        if self.kill_at is not None and now >= self.kill_at:
            self.kill_at = None
            self.process.kill()

    def reported(self, outcome: Outcome) -> Outcome:
        """What to record of the outcome the child sent for its running task.

        A task that was stopped, caught the SIGTERM and returned (or raised) was still stopped:
        it timed out, or was cancelled.
        """
        task = self.task
        if self.stop_reason in GENTLE_STOPS and task is not None and task.id == self.stopped:
            stopped = self.death_outcome()
            stopped.log = outcome.log
            return stopped
        return outcome

    def killed_for_another(self) -> bool:
        """Killed while running a task other than the one it was stopped for: that one finished
        first (its outcome was on its way), and the kill caught the next one."""
        return (
            self.stop_reason is not None and self.task is not None and self.task.id != self.stopped
        )

    def death_outcome(self) -> Outcome:
        """The outcome of the task this child was running when it died."""
        if self.stop_reason == "timeout":
            timeout = int(self.deadline - self.started) if self.deadline else None
            return Outcome(
                ok=False,
                timed_out=True,
                error=f"Task timed out after {timeout} seconds",
                exception=TimeoutError(f"Task exceeded {timeout}s timeout"),
            )
        if self.stop_reason == "cancel":
            return Outcome(ok=False, cancelled=True, error="Cancelled while running.")
        how = _exit_description(self.process.exitcode)
        return Outcome(ok=False, error=f"The task's process {how} before the task finished.")

    def read_log(self, limit: int) -> str | None:
        """What the child's current task has logged (read after the child died)."""
        return _read_back(self.log.fileno(), limit)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.close()
        self.log.close()


def wait(objects: list[Any], timeout: float) -> set[Any]:
    """Those of ``objects`` (file descriptors or objects with ``fileno()``) ready to read.

    Like ``multiprocessing.connection.wait``, for the worker's loop, which calls it several times
    per task: one poll object and nothing else built.
    """
    poller = select.poll()
    by_fd: dict[int, Any] = {}
    for obj in objects:
        fd = obj if isinstance(obj, int) else obj.fileno()
        by_fd[fd] = obj
        poller.register(fd, select.POLLIN)
    return {by_fd[fd] for fd, _ in poller.poll(timeout * 1000)}


def _exit_description(exitcode: int | None) -> str:
    if exitcode is None:
        return "was killed with the worker's fork server"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"was killed by {name}"
    return f"exited with code {exitcode}"


def stop_all(children: list[Child]) -> None:
    """Ask every child to exit after its task; kill the groups of those still running after two
    seconds (the fork server kills the group of each child it reaps: what tasks left behind)."""
    for child in children:
        with contextlib.suppress(OSError):
            child.conn.send(None)
    deadline = time.monotonic() + 2
    for child in children:
        child.process.join(max(deadline - time.monotonic(), 0))
        if child.process.is_alive():
            child.process.kill()
            child.process.join()
        child.close()


def start_fork_server(max_tasks: int, log_limit: int) -> forkserver.ForkServer:
    """A fork server whose children run ``child_main``, each for up to ``max_tasks`` tasks.

    ``preload(path)`` imports a task and works out its signature there, once for all children.
    """
    target = functools.partial(child_main, max_tasks=max_tasks, log_limit=log_limit)
    return forkserver.ForkServer.start(target, init=_log_everything, prepare=_prepare_task)


def _log_everything() -> None:
    """Children capture every log record of their tasks (``execution.capture``). Set once in the
    fork server: a change of level clears the cache of every logger, which costs a fresh child a
    copy-on-write fault for each page of them."""
    logging.getLogger().setLevel(logging.DEBUG)


def _prepare_task(path: str) -> None:
    callables.signature(callables.import_callable(path))


def spawn(server: forkserver.ForkServer, max_tasks: int) -> Child:
    """A new child from ``server``, with a log file of its own. Raise ForkServerGone."""
    log = tempfile.TemporaryFile(prefix="dsq-", suffix=".log")  # noqa: SIM115 (Child.close)
    try:
        process, conn = server.spawn(log.fileno())
    except forkserver.ForkServerGone:
        log.close()
        raise
    return Child(process=process, conn=conn, log=log, max_tasks=max_tasks)
