"""The worker: a supervisor that claims tasks and runs each in a child process.

``Worker(...).run()`` is what ``manage.py task_worker`` calls. ``execute_task`` runs one task in
the calling process, as the original did.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from types import FrameType
from typing import Any

from django.db import DatabaseError, InterfaceError, OperationalError, connections

from django_simple_queue import conf, db, execution, lifecycle, listen, monitor, pool
from django_simple_queue.execution import ManagedEventLoop
from django_simple_queue.forkserver import ForkServer
from django_simple_queue.lifecycle import Outcome
from django_simple_queue.models import Task
from django_simple_queue.output import capped
from django_simple_queue.pool import Child
from django_simple_queue.recorder import Recorder

__all__ = ["ManagedEventLoop", "Worker", "execute_task"]

logger = logging.getLogger("django_simple_queue")

FLUSH_INTERVAL = 0.25
# Claim more tasks than there are free children (and queue one behind a running one) only of task
# paths whose runs lately took less than this: a short task held back costs little; a long one
# would wait in this worker while others are idle.
PREFETCH_MAX_DURATION = 0.05
# A run of a short path that has lasted this long is not short this time: stop claiming ahead.
LONG_RUN = 4 * PREFETCH_MAX_DURATION
# While children hold queues of short tasks, their outcomes are collected this often (seconds)
# instead of waking the supervisor for every one.
BATCH_TICK = 0.004
CANCEL_CHECK_INTERVAL = 1.0
STATUS_LINE_INTERVAL = 60.0
# After a first reconnection attempt at once (a dropped connection is usually all it was), attempts
# start this far apart and double up to the heartbeat interval (at most MAX_RECONNECT_DELAY), so
# that a worker is back soon after its database, well before peers would take its claims for lost.
FIRST_RECONNECT_DELAY = 0.25
MAX_RECONNECT_DELAY = 5.0


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Worker:
    def __init__(
        self,
        *,
        queues: Sequence[str] | None = None,
        concurrency: int = 1,
        max_tasks_per_child: int = 100,
        max_tasks: int | None = None,
        burst: bool = False,
        poll_interval: float | None = None,
        name: str | None = None,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.queues = list(queues or [])
        self.concurrency = max(1, concurrency)
        self.max_tasks_per_child = max_tasks_per_child
        self.max_tasks = max_tasks
        self.burst = burst
        self.poll_interval = float(
            conf.get("POLL_INTERVAL") if poll_interval is None else poll_interval
        )
        self.heartbeat_interval = float(conf.get("HEARTBEAT_INTERVAL"))
        self.grace = float(conf.get("SHUTDOWN_GRACE"))
        self.say = say or (lambda line: None)
        # Per-task lines cost time at thousands of tasks a second: built only to be shown.
        self.verbose = say is not None
        self.recorder = Recorder(say)
        # What its claims are known by: two live workers with one name would take each other's
        # claims for their own (host:pid is not unique where hosts share a hostname).
        self.name = name or worker_name()
        self.children: list[Child] = []
        self.claimed = 0
        self.stopping_since: float | None = None
        self.stop_now = False
        # The signal that asked this worker to stop, until the loop has said so on the console.
        self.unannounced: int | None = None
        self.last = {"flush": 0.0, "heartbeat": 0.0, "cancel": 0.0, "status": time.monotonic()}
        self.listener: listen.Listener | None = None
        self.forkserver: ForkServer | None = None
        # Task paths the fork server was asked to prepare (import, signature).
        self.preloaded: set[str] = set()
        # Claimed tasks not yet sent to a child.
        self.backlog: deque[Task] = deque()
        # How long each task path's runs took lately (seconds), and the paths that are short.
        self.durations: dict[str, float] = {}
        self.short: set[str] = set()
        # A task claimed ahead went back to the queue: claim ahead again once a child is free.
        self.gave_back = False
        self.stale_after = float(conf.get("STALE_AFTER"))
        self.db_lost_since: float | None = None
        self.db_failures = 0
        self.db_retry_at = 0.0
        self.rescue_after = 0.0

    # -- lifecycle -------------------------------------------------------------------------

    def run(self) -> int:
        """Work until stopped (or, with ``burst``, until the queue is empty); return exit code."""
        self._install_signal_handlers()
        # Forked first, while this process is small: every child is forked from it, not from here.
        self._start_fork_server()
        self.listener = listen.Listener.open()
        self.say(
            f"worker {self.name} started: concurrency {self.concurrency}, queues {self.queues or 'all'}"
        )
        try:
            while not self._should_exit():
                self._announce_stop()
                try:
                    if self.db_lost_since is None:
                        self._tick()
                    else:
                        self._offline_tick()
                except (OperationalError, InterfaceError) as exc:
                    self._database_lost(exc)
                except Exception as exc:
                    # Also a driver's own error, from code that uses the DB-API cursor directly.
                    if not self._connection_usable():
                        self._database_lost(exc)
                        continue
                    # A bug of ours must not take down tasks that are running; say so and go on.
                    logger.exception("worker error; continuing")
                    time.sleep(1)
            self._announce_stop()
        finally:
            self._shutdown_children()
            if self.forkserver is not None:
                self.forkserver.close()
            if self.listener is not None:
                self.listener.close()
            if self.recorder.pending:
                logger.warning(
                    "exiting with %d outcomes unwritten; their tasks are rescued after STALE_AFTER",
                    self.recorder.pending,
                )
            with contextlib.suppress(DatabaseError):
                connections.close_all()
        self.say(f"worker {self.name} stopped: {self.recorder.finished} tasks finished")
        return 0

    def _install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # Only flags: a write to the console here could interrupt one the loop was making.
        if self.stopping_since is None:
            self.stopping_since = time.monotonic()
            self.unannounced = signum
        else:
            self.stop_now = True

    def _announce_stop(self) -> None:
        signum, self.unannounced = self.unannounced, None
        if signum is not None:
            self.say(
                f"{signal.Signals(signum).name}: no new tasks; waiting up to {self.grace:g}s for running ones"
            )

    def _busy(self) -> list[Child]:
        return [child for child in self.children if child.busy]

    def _held(self) -> list[Task]:
        """Every task this worker has claimed and not yet recorded."""
        tasks = list(self.backlog)
        for child in self.children:
            tasks += child.queue
        return tasks + self.recorder.tasks()

    def _should_exit(self) -> bool:
        if self._busy():
            return False
        stopping = self.stopping_since is not None or self.stop_now
        if self.recorder.pending or self.backlog:
            if self.db_lost_since is None:
                return False
            # Wait for the database to come back, up to the grace period of a stop.
            return stopping and (self.stop_now or self._grace_over(time.monotonic()))
        if stopping:
            return True
        return self.max_tasks is not None and self.recorder.finished >= self.max_tasks

    def _grace_over(self, now: float) -> bool:
        return self.stopping_since is not None and now - self.stopping_since >= self.grace

    # -- the database going away -------------------------------------------------------------

    def _connection_usable(self) -> bool:
        """False when the connection broke; a connection not opened yet will be when needed."""
        try:
            connection = db.connection()
            return connection.connection is None or connection.is_usable()
        except Exception:
            return False

    def _database_lost(self, exc: Exception) -> None:
        """Drop every connection and plan a reconnection; running tasks go on meanwhile."""
        now = time.monotonic()
        if self.db_lost_since is None:
            self.db_lost_since = now
            self.db_failures = 0
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            logger.warning("database unavailable (%s); tasks go on, reconnecting", first_line)
        self.db_failures += 1
        for conn in connections.all():
            with contextlib.suppress(DatabaseError):
                conn.close()
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        if self.db_failures == 1:
            self.db_retry_at = now
            return
        ceiling = min(max(self.heartbeat_interval, FIRST_RECONNECT_DELAY), MAX_RECONNECT_DELAY)
        delay = min(FIRST_RECONNECT_DELAY * 2 ** (self.db_failures - 2), ceiling)
        self.db_retry_at = now + delay * random.uniform(0.5, 1.0)

    def _offline_tick(self) -> None:
        """Look after children (outcomes are kept in memory) until it is time to reconnect."""
        now = time.monotonic()
        self._enforce_stops(now)
        timeout = min(max(self.db_retry_at - now, 0.0), FLUSH_INTERVAL)
        pool.wait(self._waitables(), timeout)
        for child in list(self.children):
            self._receive(child)
        self._dispatch()
        if time.monotonic() >= self.db_retry_at:
            self._reconnect()

    def _reconnect(self) -> None:
        """Raises while the database is still away; else resumes where the worker left off."""
        assert self.db_lost_since is not None
        db.connection().ensure_connection()
        # A database that failed over may be another server, with a clock of its own.
        db.forget_clock()
        # Our own claims first, so that no peer takes them for lost.
        self._heartbeat_claims()
        # A claim whose commit we did not hear of was never started: back to the queue.
        returned = lifecycle.release_unknown(self.name, self._held())
        written = self.recorder.pending
        self.recorder.write()
        logger.info(
            "database back after %.1fs: %d outcomes written, %d unstarted claims returned",
            time.monotonic() - self.db_lost_since,
            written,
            returned,
        )
        self.db_lost_since = None
        # Peers were cut off too: give them a full STALE_AFTER to heartbeat before judging them.
        self.rescue_after = time.monotonic() + self.stale_after

    # -- one turn of the loop --------------------------------------------------------------

    def _tick(self) -> None:
        now = time.monotonic()
        self._enforce_stops(now)
        idle_claim = self._claim()
        timeout = self._wait_timeout(idle_claim)
        batching = self._batching()
        if batching:
            timeout = min(timeout, BATCH_TICK)
        # Never sleep through a heartbeat: claims are refreshed every HEARTBEAT_INTERVAL.
        next_beat = self.last["heartbeat"] + self.heartbeat_interval
        # Nor through a SIGKILL that is due after a SIGTERM.
        kills = [child.kill_at for child in self.children if child.kill_at is not None]
        wake = min(next_beat, self.recorder.due(), *kills) - time.monotonic()
        ready = pool.wait(self._waitables(), max(min(timeout, wake), 0.0))
        for child in list(self.children):
            if child.conn in ready or child.process.sentinel in ready or (batching and child.busy):
                self._receive(child)
        self._dispatch()
        self._record()
        self._keep_a_spare()
        if self.listener is not None and self.listener.fileno() in ready:
            try:
                self.listener.drain()
            except Exception as exc:
                # The main connection notices if the database is away; reopened at next heartbeat.
                logger.debug("lost the LISTEN connection (%s); polling until it is back", exc)
                self.listener.close()
                self.listener = None
        now = time.monotonic()
        if now - self.last["flush"] >= FLUSH_INTERVAL:
            self._flush()
        if self._busy() and now - self.last["cancel"] >= CANCEL_CHECK_INTERVAL:
            self.last["cancel"] = now
            self._check_cancels()
        if now - self.last["heartbeat"] >= self.heartbeat_interval:
            self.last["heartbeat"] = now
            self._heartbeat()
        if now - self.last["status"] >= STATUS_LINE_INTERVAL:
            self.last["status"] = now
            self.say(f"alive: {len(self._busy())} running, {self.recorder.finished} finished")

    def _batching(self) -> bool:
        """Children hold queues of short tasks: read their pipes every BATCH_TICK, not per message."""
        return any(len(child.queue) > 1 for child in self.children)

    def _waitables(self) -> list[Any]:
        items: list[Any] = []
        batching = self._batching()
        for child in self.children:
            # A child with no task has nothing to say (a pipe closed at its exit reads as ready).
            if child.busy and not batching:
                items.append(child.conn)
            items.append(child.process.sentinel)
        if self.listener is not None:
            items.append(self.listener.fileno())
        return items

    def _wait_timeout(self, claimed: int) -> float:
        if claimed or self.stopping_since is not None:
            return 0.0 if claimed and self._room() else FLUSH_INTERVAL
        if self._busy():
            return FLUSH_INTERVAL
        if self.burst:
            return 0.0
        if self.listener is not None:
            return self.heartbeat_interval * random.uniform(0.5, 1.0)
        return self.poll_interval * random.uniform(0.75, 1.25)

    def _prefetching(self) -> bool:
        """Claim ahead, and queue tasks behind running ones, while all that runs here is short:
        a task held behind a long one would wait while other workers are idle."""
        if not self.short or self.gave_back:
            return False
        now = time.monotonic()
        return all(
            child.task is None or (child.task.task in self.short and now - child.started < LONG_RUN)
            for child in self.children
        )

    def _room(self) -> int:
        """How many more tasks to claim now: free children, and some ahead while tasks are short."""
        if self.stopping_since is not None:
            return 0
        held = len(self.backlog) + sum(len(child.queue) for child in self.children)
        if self._prefetching():
            ahead = max(2 * self.concurrency, 8)
            target = self.concurrency * self._depth() + ahead
            # Claim in large batches (a statement's cost is mostly per statement, not per row):
            # wait until half of the target has been used.
            free = target - held if held <= target // 2 else 0
        else:
            free = self.concurrency - held
        if self.max_tasks is not None:
            free = min(free, self.max_tasks - self.claimed)
        return max(free, 0)

    def _claim(self) -> int:
        if self.stopping_since is not None and self.backlog:
            while self.backlog:
                self._release(self.backlog.popleft())
        if len(self._busy()) < self.concurrency:
            self.gave_back = False
        free = self._room()
        if free <= 0:
            return 0
        tasks = lifecycle.claim(self.name, limit=free, queues=self.queues, pid=os.getpid())
        if not tasks:
            if self.burst and not self._busy() and not self.backlog:
                self.stopping_since = time.monotonic()
            return 0
        for task in tasks:
            self._preload(task.task)
            self.claimed += 1
            self.recorder.track(task)
            if self.verbose:
                self.say(
                    f"claimed {task.id} {task.task} (attempt {task.attempts}/{task.max_attempts})"
                )
        self.backlog.extend(tasks)
        self._dispatch()
        self._give_back_long()
        return len(tasks)

    def _give_back_long(self) -> None:
        """Tasks claimed ahead that are not known to be short, and that no child could start, go
        back to the queue at once (the attempt not counted): another worker may be free now."""
        long = [task for task in self.backlog if task.task not in self.short]
        for task in long:
            self.backlog.remove(task)
            self._release(task)
        if long:
            self.gave_back = True

    def _release(self, task: Task) -> None:
        """Back to the queue without an attempt counted; written with the outcomes."""
        self.claimed -= 1
        self.recorder.release(task)

    def _depth(self) -> int:
        """Tasks a child may hold: one at a time, or a queue of them while tasks are short."""
        return pool.QUEUE_DEPTH if self._prefetching() else 1

    def _dispatch(self) -> None:
        """Send tasks from the backlog to children with room, forking children as needed."""
        if self.stop_now or self._grace_over(time.monotonic()):
            return  # running tasks are being stopped: nothing starts; _claim releases the rest
        while self.backlog:
            child = self._child_with_room()
            if child is None:
                return
            if self.stopping_since is not None and child.busy:
                # Stopping: what was claimed may still start in a free child, but nothing queues
                # behind a running task; _claim releases the rest.
                return
            # Share the backlog between the children that can take some, one message each.
            share = max(1, len(self.backlog) // max(1, self._free_children()))
            count = min(child.room(self._depth()), share, len(self.backlog))
            tasks: list[Task] = []
            while len(tasks) < count:
                ahead = tasks[-1] if tasks else (child.queue[-1] if child.queue else None)
                # Only a short task waits, and only behind short ones.
                if ahead is not None and not (
                    ahead.task in self.short and self.backlog[0].task in self.short
                ):
                    break
                tasks.append(self.backlog.popleft())
            if not tasks:
                return  # the next task waits for a child with nothing to run
            timeouts = [task.timeout or conf.get_task_timeout() for task in tasks]
            if not child.start(tasks, timeouts):
                self.backlog.extendleft(reversed(tasks))

    def _free_children(self) -> int:
        depth = self._depth()
        return sum(1 for child in self.children if child.room(depth) > 0)

    def _child_with_room(self) -> Child | None:
        if sum(1 for child in self.children if child.busy) < self.concurrency:
            idle = [child for child in self.children if child.idle]
            if idle:
                return idle[0]
            return self._spawn()
        depth = self._depth()
        queued = [child for child in self.children if child.busy and child.room(depth) > 0]
        return min(queued, key=lambda child: len(child.queue)) if queued else None

    def _start_fork_server(self) -> None:
        self.forkserver = pool.start_fork_server(
            self.max_tasks_per_child, conf.get_max_output_size()
        )
        self.preloaded.clear()  # a new fork server has imported nothing yet

    def _preload(self, path: str) -> None:
        """Import a task in the fork server once, instead of in every child."""
        if self.forkserver is None or path in self.preloaded or not conf.is_task_allowed(path):
            return
        self.preloaded.add(path)
        self.forkserver.preload(path)

    def _spawn(self) -> Child:
        if self.forkserver is not None and not self.forkserver.alive():
            # Killed by someone, or by the OOM killer; its children went with it.
            logger.warning("the fork server is gone; starting another")
            self.forkserver.close()
            self.forkserver = None
        if self.forkserver is None:
            self._start_fork_server()
        assert self.forkserver is not None
        child = pool.spawn(self.forkserver, self.max_tasks_per_child)
        self.children.append(child)
        return child

    def _keep_a_spare(self) -> None:
        """With a fresh process per task, fork the next child while this one runs, not after."""
        if self.max_tasks_per_child != 1 or self.stopping_since is not None:
            return
        if not self.backlog and not self._busy():
            return
        if not any(child.idle for child in self.children):
            self._spawn()

    # -- messages from children -------------------------------------------------------------

    def _receive(self, child: Child) -> None:
        self._read(child)
        if child.process.is_alive():
            return
        child.process.join()
        child.process.kill_leftovers()
        # What it sent between the last read and its exit: a last outcome, not a death.
        self._read(child)
        if child.task is not None:
            # Tasks queued behind the lost one never started: another child runs them.
            self.backlog.extendleft(reversed(child.waiting()))
            self._died(child)
        child.close()
        self.children.remove(child)

    def _read(self, child: Child) -> None:
        """Take in the messages ``child`` has sent, each about the first task of its queue."""
        while child.task is not None:
            try:
                if not child.conn.poll():
                    return
                kind, payload = child.conn.recv()
            except (EOFError, OSError):
                return
            except Exception as exc:
                # Output and progress are plain text: what cannot be read is the running task's
                # outcome. Failing that task keeps the messages in step with the tasks.
                logger.exception("could not read the outcome of %s", child.task.id)
                error = f"The worker could not read this task's outcome: {exc!r}"
                self._complete(child, Outcome(ok=False, error=error))
                continue
            if kind == "output":
                self.recorder.output(child.task, payload)
            elif kind == "progress":
                self.recorder.progress(child.task, payload)
            elif kind == "done":
                self._complete(child, child.reported(pool.unpack(payload)))

    def _died(self, child: Child) -> None:
        """``child`` died running the first task of its queue: record how, or give it back."""
        if child.stop_reason == "shutdown" or child.killed_for_another():
            # Killed by this worker, not by the task: back to the queue, the attempt not counted.
            self._release(child.finished_one())
            return
        outcome = child.death_outcome()
        outcome.log = child.read_log(conf.get_max_output_size())
        self._complete(child, outcome)

    def _complete(self, child: Child, outcome: Outcome) -> None:
        duration = time.monotonic() - child.started
        task = child.finished_one()
        lately = self.durations.get(task.task)
        lately = duration if lately is None else 0.8 * lately + 0.2 * duration
        self.durations[task.task] = lately
        if lately < PREFETCH_MAX_DURATION:
            self.short.add(task.task)
        else:
            self.short.discard(task.task)
        self.recorder.outcome(task, outcome, duration)

    def _record(self) -> None:
        """Write the outcomes received, unless the database is away.

        While children are busy, outcomes wait up to RECORD_DELAY to be written together.
        """
        if self.db_lost_since is not None:
            return
        waiting = self._busy() and not self.recorder.releases and self.stopping_since is None
        if waiting and time.monotonic() < self.recorder.due():
            return
        self.recorder.write()

    # -- periodic work ---------------------------------------------------------------------

    def _flush(self) -> None:
        self.last["flush"] = time.monotonic()
        self.recorder.flush_all(child.task for child in self._busy() if child.task is not None)

    def _check_cancels(self) -> None:
        tasks = [child.task for child in self._busy() if child.task is not None]
        held = lifecycle.held_claims(tasks)
        for child in self._busy():
            if child.task is None:
                continue
            if child.task.id not in held:
                # Rescued while this worker was cut off or frozen: the task runs elsewhere now.
                self.say(f"lost the claim on {child.task.id}; stopping its run")
                child.stop_task("lost", time.monotonic())
            elif held[child.task.id]:
                self._stop(child, "cancel")

    def _heartbeat_claims(self) -> None:
        lifecycle.heartbeat(self._held())
        self.last["heartbeat"] = time.monotonic()

    def _heartbeat(self) -> None:
        self._heartbeat_claims()
        if self.listener is None:
            self.listener = listen.Listener.open()
        if time.monotonic() >= self.rescue_after:
            for task in lifecycle.rescue_stale():
                self.say(f"rescued {task.id} {task.task} from lost worker {task.worker_id}")
        for task in monitor.detect_orphaned_tasks():
            pid = task.worker_pid
            self.say(f"orphaned {task.id} {task.task}: worker process {pid} on this host is gone")

    def _enforce_stops(self, now: float) -> None:
        shutting_down = self.stopping_since is not None and (
            self.stop_now or now - self.stopping_since >= self.grace
        )
        for child in self._busy():
            if shutting_down:
                child.stop_task("shutdown", now)
            elif child.deadline is not None and now >= child.deadline:
                self._stop(child, "timeout")
        for child in self.children:
            child.escalate(now)

    def _stop(self, child: Child, reason: str) -> None:
        """Stop the task ``child`` runs, unless its outcome is already in the pipe: it finished
        first, and that outcome counts (a task that ends once signalled was stopped)."""
        task = child.task
        if child.stop_reason is not None:
            return
        self._read(child)
        if child.task is task:
            child.stop_task(reason, time.monotonic())

    def _shutdown_children(self) -> None:
        pool.stop_all(self.children)
        self.children = []


class _DatabaseSink:
    """Writes a task's streamed output and progress straight to its row (``execute_task``)."""

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


def execute_task(task_id: uuid.UUID | str, log_fd: int | None = None) -> None:
    """Run one task in this process, as the original's worker did, and record its outcome.

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
