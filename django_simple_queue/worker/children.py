"""The supervisor's children: its handle on each (``Child``), and the set of them (``Children``).

Children are forked by the fork server and reused for several tasks. The supervisor sends a child
tasks over a pipe, several at once while tasks are short (``protocol``); a child that crashes, is
killed, or outlives its supervisor takes nothing else down with it.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import logging
import select
import signal
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, BinaryIO

from django_simple_queue import conf
from django_simple_queue.lifecycle import Ending, Outcome
from django_simple_queue.models import Task
from django_simple_queue.worker import child as child_side
from django_simple_queue.worker import forkserver, protocol

logger = logging.getLogger("django_simple_queue")

# Seconds between the SIGTERM that stops a task on its timeout or a cancel and the SIGKILL that
# follows if the task's process group is still there: time for the task to clean up.
STOP_GRACE = 5.0


class StopReason(enum.Enum):
    """Why the supervisor stops a child's running task."""

    TIMEOUT = "timeout"
    CANCEL = "cancel"
    SHUTDOWN = "shutdown"  # the worker's grace is over, or a second signal
    LOST = "lost"  # the claim was rescued by another worker

    @property
    def gentle(self) -> bool:
        """SIGTERM first, SIGKILL after STOP_GRACE: the task may clean up. Else SIGKILL at once."""
        return self in (StopReason.TIMEOUT, StopReason.CANCEL)


@dataclass
class Child:
    process: forkserver.ChildProcess
    conn: Connection
    # The file the child writes its tasks' logs to (it has no name: it goes with its last fd).
    log: BinaryIO
    max_tasks: int
    runs: int = 0
    # Tasks sent to this child, in the order it runs them: the first one is running.
    assigned: deque[Task] = field(default_factory=deque)
    started: float = 0.0
    deadline: float | None = None
    # Why the supervisor is stopping this child, and the id of the task that was running then.
    # Final: a child being stopped is sent nothing more.
    stop_reason: StopReason | None = None
    stopped: uuid.UUID | None = None
    # When the SIGKILL that follows a SIGTERM is due (monotonic clock), or None.
    kill_at: float | None = None
    timeouts: dict[uuid.UUID, int | None] = field(default_factory=dict)
    # Its pipe is broken: it died, and is sent nothing more until its death is handled.
    gone: bool = False

    @property
    def task(self) -> Task | None:
        """The task this child is running (the supervisor's view), or None."""
        return self.assigned[0] if self.assigned else None

    @property
    def busy(self) -> bool:
        return bool(self.assigned)

    @property
    def idle(self) -> bool:
        """Free for another task: not busy, alive, and not about to exit after its last task."""
        return not self.busy and self.free_slots() > 0

    def free_slots(self, depth: int = 1) -> int:
        """How many more tasks this child may be sent now, holding at most ``depth``."""
        if self.gone or self.stop_reason is not None or not self.process.is_alive():
            return 0
        left = self.max_tasks - self.runs if self.max_tasks > 0 else depth
        return max(min(depth - len(self.assigned), left), 0)

    def start(self, tasks: list[Task], timeouts: list[int | None]) -> bool:
        """Send ``tasks`` in one message; each starts when the ones before it are done.

        False if the child is gone (it died since its sentinel was last read): nothing was sent.
        """
        try:
            protocol.send_tasks(self.conn, tasks)
        except OSError:
            self.gone = True
            return False
        first = not self.assigned
        for task, timeout in zip(tasks, timeouts, strict=True):
            self.assigned.append(task)
            self.timeouts[task.id] = timeout
        self.runs += len(tasks)
        if first:
            self._begin(time.monotonic())
        return True

    def _begin(self, now: float) -> None:
        assert self.assigned
        timeout = self.timeouts.get(self.assigned[0].id)
        self.started = now
        self.deadline = now + timeout if timeout else None

    def finished_one(self) -> Task:
        """The running task is done: the next assigned one (if any) is running from now on."""
        task = self.assigned.popleft()
        self.timeouts.pop(task.id, None)
        if self.assigned:
            self._begin(time.monotonic())
        return task

    def waiting(self) -> list[Task]:
        """Tasks sent to this child that have not started: given back when the child is lost."""
        rest = list(self.assigned)[1:]
        for task in rest:
            self.timeouts.pop(task.id, None)
        while len(self.assigned) > 1:
            self.assigned.pop()
        return rest

    def stop_task(self, reason: StopReason, now: float) -> None:
        """Stop this child's process group, and so its running task and what the task started.

        A gentle stop sends SIGTERM, and SIGKILL ``STOP_GRACE`` seconds later (see ``escalate``);
        any other, or a second stop while a SIGKILL is due, SIGKILL at once.
        """
        if self.stop_reason is None:
            self.stop_reason = reason
            self.stopped = self.task.id if self.task is not None else None
            if reason.gentle:
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
        gentle = self.stop_reason is not None and self.stop_reason.gentle
        if gentle and task is not None and task.id == self.stopped:
            stopped = self.death_outcome()
            stopped.log = outcome.log
            return stopped
        return outcome

    def released_by_stop(self) -> bool:
        """Whether the task this child died running goes back to the queue (attempt not counted):
        killed by a shutdown, or killed while running a task other than the one it was stopped
        for (that one finished first, its outcome on its way, and the kill caught the next)."""
        if self.stop_reason is None:
            return False
        return self.stop_reason is StopReason.SHUTDOWN or (
            self.task is not None and self.task.id != self.stopped
        )

    def death_outcome(self) -> Outcome:
        """The outcome of the task this child was running when it died."""
        if self.stop_reason is StopReason.TIMEOUT:
            timeout = int(self.deadline - self.started) if self.deadline else None
            return Outcome(
                Ending.TIMED_OUT,
                error=f"Task timed out after {timeout} seconds",
                exception=TimeoutError(f"Task exceeded {timeout}s timeout"),
            )
        if self.stop_reason is StopReason.CANCEL:
            return Outcome(Ending.CANCELLED, error="Cancelled while running.")
        how = _exit_description(self.process.exitcode)
        return Outcome(Ending.FAILED, error=f"The task's process {how} before the task finished.")

    def read_log(self, limit: int) -> str | None:
        """What the child's current task has logged (read after the child died)."""
        return child_side.read_back(self.log.fileno(), limit)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.close()
        self.log.close()


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


class Children:
    """A worker's children, and the fork server they come from."""

    def __init__(self, max_tasks_per_child: int) -> None:
        self.max_tasks_per_child = max_tasks_per_child
        self.all: list[Child] = []
        self.forkserver: forkserver.ForkServer | None = None
        # Task paths the fork server was asked to prepare (import, signature).
        self.preloaded: set[str] = set()

    def __iter__(self) -> Iterator[Child]:
        return iter(self.all)

    def busy(self) -> list[Child]:
        return [child for child in self.all if child.busy]

    def start_fork_server(self) -> None:
        """Forked while the supervisor is small: every child is forked from it, not from there."""
        target = functools.partial(
            child_side.child_main,
            max_tasks=self.max_tasks_per_child,
            log_limit=conf.get_max_output_size(),
        )
        self.forkserver = forkserver.ForkServer.start(
            target, init=child_side.log_everything, prepare=child_side.prepare_task
        )
        self.preloaded.clear()  # a new fork server has imported nothing yet

    def preload(self, path: str) -> None:
        """Import a task in the fork server once, instead of in every child."""
        if self.forkserver is None or path in self.preloaded or not conf.is_task_allowed(path):
            return
        self.preloaded.add(path)
        self.forkserver.preload(path)

    def spawn(self) -> Child:
        """A new child, with a log file of its own; a new fork server first if it is gone."""
        if self.forkserver is not None and not self.forkserver.alive():
            # Killed by someone, or by the OOM killer; its children went with it.
            logger.warning("the fork server is gone; starting another")
            self.forkserver.close()
            self.forkserver = None
        if self.forkserver is None:
            self.start_fork_server()
        assert self.forkserver is not None
        log = tempfile.TemporaryFile(prefix="dsq-", suffix=".log")  # noqa: SIM115 (Child.close)
        try:
            process, conn = self.forkserver.spawn(log.fileno())
        except forkserver.ForkServerGone:
            log.close()
            raise
        child = Child(process=process, conn=conn, log=log, max_tasks=self.max_tasks_per_child)
        self.all.append(child)
        return child

    def remove(self, child: Child) -> None:
        child.close()
        self.all.remove(child)

    def close(self) -> None:
        """Stop every child (``stop_all``), then the fork server."""
        stop_all(self.all)
        self.all = []
        if self.forkserver is not None:
            self.forkserver.close()


def stop_all(children: list[Child]) -> None:
    """Ask every child to exit after its task; kill the groups of those still running after two
    seconds (the fork server kills the group of each child it reaps: what tasks left behind)."""
    for child in children:
        with contextlib.suppress(OSError):
            protocol.send_exit(child.conn)
    deadline = time.monotonic() + 2
    for child in children:
        child.process.join(max(deadline - time.monotonic(), 0))
        if child.process.is_alive():
            child.process.kill()
            child.process.join()
        child.close()


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
