"""The supervisor: the loop that claims tasks, hands them to children and records their outcomes.

``Worker(...).run()`` is what ``manage.py task_worker`` calls. The rules it follows are elsewhere
in this package: what to claim and which child gets what (``prefetch``), the children
(``children``), the database going away (``outage``), outcomes kept until written (``recorder``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import time
from collections import deque
from collections.abc import Callable, Sequence
from itertools import islice
from types import FrameType
from typing import Any

from django.db import DatabaseError, InterfaceError, OperationalError, connections

from django_simple_queue import conf, db, lifecycle, listen, monitor
from django_simple_queue.inline import worker_name
from django_simple_queue.lifecycle import Outcome
from django_simple_queue.models import Task
from django_simple_queue.worker import prefetch, protocol
from django_simple_queue.worker.children import Child, Children, StopReason, wait
from django_simple_queue.worker.outage import Outage, connection_usable
from django_simple_queue.worker.recorder import Recorder

logger = logging.getLogger("django_simple_queue")

FLUSH_INTERVAL = 0.25
# While children hold queues of short tasks, their outcomes are collected this often (seconds)
# instead of waking the supervisor for every one.
BATCH_TICK = 0.004
CANCEL_CHECK_INTERVAL = 1.0
STATUS_LINE_INTERVAL = 60.0


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
        self.stale_after = float(conf.get("STALE_AFTER"))
        self.grace = float(conf.get("SHUTDOWN_GRACE"))
        self.say = say or (lambda line: None)
        # Per-task lines cost time at thousands of tasks a second: built only to be shown.
        self.verbose = say is not None
        self.recorder = Recorder(say)
        # What its claims are known by: two live workers with one name would take each other's
        # claims for their own (host:pid is not unique where hosts share a hostname).
        self.name = name or worker_name()
        self.children = Children(max_tasks_per_child)
        self.outage = Outage(self.heartbeat_interval)
        self.listener: listen.Listener | None = None
        self.claimed = 0
        self.stopping_since: float | None = None
        self.stop_now = False
        # The signal that asked this worker to stop, until the loop has said so on the console.
        self.unannounced: int | None = None
        self.last = {"flush": 0.0, "heartbeat": 0.0, "cancel": 0.0, "status": time.monotonic()}
        # Claimed tasks not yet sent to a child.
        self.backlog: deque[Task] = deque()
        self.durations = prefetch.Durations()
        # A task claimed ahead went back to the queue: claim ahead again once a child is free.
        self.gave_back = False
        # No rescue of peers' claims before this (monotonic): see _reconnect.
        self.rescue_after = 0.0

    # -- start, stop, exit -------------------------------------------------------------------

    def run(self) -> int:
        """Work until stopped (or, with ``burst``, until the queue is empty); return exit code."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        self.children.start_fork_server()
        self.listener = listen.Listener.open()
        self.say(
            f"worker {self.name} started: concurrency {self.concurrency}, queues {self.queues or 'all'}"
        )
        try:
            while not self._should_exit():
                self._announce_stop()
                self._turn()
            self._announce_stop()
        finally:
            self.children.close()
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

    def _turn(self) -> None:
        """One turn of the loop, online or off; a database error starts (or prolongs) an outage."""
        try:
            if self.outage.offline:
                self._offline_tick()
            else:
                self._tick()
        except (OperationalError, InterfaceError) as exc:
            self._database_lost(exc)
        except Exception as exc:
            # Also a driver's own error, from code that uses the DB-API cursor directly.
            if not connection_usable():
                self._database_lost(exc)
                return
            # A bug of ours must not take down tasks that are running; say so and go on.
            logger.exception("worker error; continuing")
            time.sleep(1)

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

    def _should_exit(self) -> bool:
        if self.children.busy():
            return False
        stopping = self.stopping_since is not None or self.stop_now
        if self.recorder.pending or self.backlog:
            if not self.outage.offline:
                return False
            # Wait for the database to come back, up to the grace period of a stop.
            return stopping and (self.stop_now or self._grace_over(time.monotonic()))
        if stopping:
            return True
        return self.max_tasks is not None and self.recorder.finished >= self.max_tasks

    def _grace_over(self, now: float) -> bool:
        return self.stopping_since is not None and now - self.stopping_since >= self.grace

    def _held(self) -> list[Task]:
        """Every task this worker has claimed and not yet recorded."""
        tasks = list(self.backlog)
        for child in self.children:
            tasks += child.assigned
        return tasks + self.recorder.tasks()

    # -- the database going away -------------------------------------------------------------

    def _database_lost(self, exc: Exception) -> None:
        """Running tasks go on meanwhile; their outcomes are kept until the database is back."""
        self.outage.lost(exc, time.monotonic())
        if self.listener is not None:
            self.listener.close()
            self.listener = None

    def _offline_tick(self) -> None:
        """Look after children (outcomes are kept in memory) until it is time to reconnect."""
        now = time.monotonic()
        self._enforce_stops(now)
        wait(self._waitables(), min(self.outage.wait(now), FLUSH_INTERVAL))
        for child in list(self.children):
            self._receive(child)
        self._dispatch()
        if self.outage.due(time.monotonic()):
            self._reconnect()

    def _reconnect(self) -> None:
        """Raises while the database is still away; else resumes where the worker left off."""
        db.connection().ensure_connection()
        # A database that failed over may be another server, with a clock of its own.
        db.forget_clock()
        # Our own claims first, so that no peer takes them for lost.
        self._heartbeat_claims()
        # A claim whose commit we did not hear of was never started: back to the queue.
        returned = lifecycle.release_unknown(self.name, self._held())
        written = self.recorder.pending
        self.recorder.write()
        away = self.outage.regained(time.monotonic())
        logger.info(
            "database back after %.1fs: %d outcomes written, %d unstarted claims returned",
            away,
            written,
            returned,
        )
        # Peers were cut off too: give them a full STALE_AFTER to heartbeat before judging them.
        self.rescue_after = time.monotonic() + self.stale_after

    # -- one turn of the loop, online --------------------------------------------------------

    def _tick(self) -> None:
        self._enforce_stops(time.monotonic())
        claimed = self._claim()
        timeout = self._wait_timeout(claimed)
        batching = self._batching()
        if batching:
            timeout = min(timeout, BATCH_TICK)
        # Never sleep through a heartbeat: claims are refreshed every HEARTBEAT_INTERVAL.
        next_beat = self.last["heartbeat"] + self.heartbeat_interval
        # Nor through a SIGKILL that is due after a SIGTERM.
        kills = [child.kill_at for child in self.children if child.kill_at is not None]
        wake = min(next_beat, self.recorder.due(), *kills) - time.monotonic()
        ready = wait(self._waitables(), max(min(timeout, wake), 0.0))
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
        self._periodic(time.monotonic())

    def _batching(self) -> bool:
        """Children hold queues of short tasks: read their pipes every BATCH_TICK, not per message."""
        return any(len(child.assigned) > 1 for child in self.children)

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
            return 0.0 if claimed and self._claim_count() else FLUSH_INTERVAL
        if self.children.busy():
            return FLUSH_INTERVAL
        if self.burst:
            return 0.0
        if self.listener is not None:
            return self.heartbeat_interval * random.uniform(0.5, 1.0)
        return self.poll_interval * random.uniform(0.75, 1.25)

    # -- claiming and dispatching (the rules are in prefetch) -------------------------------

    def _prefetching(self) -> bool:
        now = time.monotonic()
        running = [
            None if child.task is None else (child.task.task, now - child.started)
            for child in self.children
        ]
        return prefetch.prefetching(self.durations.short, self.gave_back, running)

    def _claim_count(self) -> int:
        if self.stopping_since is not None:
            return 0
        return prefetch.claim_count(
            prefetching=self._prefetching(),
            concurrency=self.concurrency,
            held=len(self.backlog) + sum(len(child.assigned) for child in self.children),
            claimed=self.claimed,
            max_tasks=self.max_tasks,
        )

    def _claim(self) -> int:
        if self.stopping_since is not None and self.backlog:
            while self.backlog:
                self._release(self.backlog.popleft())
        if len(self.children.busy()) < self.concurrency:
            self.gave_back = False
        count = self._claim_count()
        if count <= 0:
            return 0
        tasks = lifecycle.claim(self.name, limit=count, queues=self.queues, pid=os.getpid())
        if not tasks:
            if self.burst and not self.children.busy() and not self.backlog:
                self.stopping_since = time.monotonic()
            return 0
        for task in tasks:
            self.children.preload(task.task)
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
        """Tasks claimed ahead that no child could start go back unless they are short."""
        long = [
            task for task in self.backlog if prefetch.gives_back(task.task, self.durations.short)
        ]
        for task in long:
            self.backlog.remove(task)
            self._release(task)
        if long:
            self.gave_back = True

    def _release(self, task: Task) -> None:
        """Back to the queue without an attempt counted; written with the outcomes."""
        self.claimed -= 1
        self.recorder.release(task)

    def _dispatch(self) -> None:
        """Send tasks from the backlog to children with room, forking children as needed."""
        if self.stop_now or self._grace_over(time.monotonic()):
            return  # running tasks are being stopped: nothing starts; _claim releases the rest
        while self.backlog:
            depth = prefetch.depth(self._prefetching())
            loads = [prefetch.Load(len(c.assigned), c.free_slots(depth)) for c in self.children]
            index = prefetch.pick(loads, self.concurrency)
            if index is None:
                return
            child = self.children.spawn() if index == prefetch.SPAWN else self.children.all[index]
            if self.stopping_since is not None and child.busy:
                # Stopping: what was claimed may still start in a free child, but nothing queues
                # behind a running task; _claim releases the rest.
                return
            free_children = sum(1 for load in loads if load.free) + (index == prefetch.SPAWN)
            count = min(child.free_slots(depth), prefetch.share(len(self.backlog), free_children))
            ahead = child.assigned[-1].task if child.assigned else None
            paths = [task.task for task in islice(self.backlog, count)]
            taken = prefetch.take(ahead, paths, count, self.durations.short)
            if not taken:
                return  # the next task waits for a child with nothing to run
            tasks = [self.backlog.popleft() for _ in range(taken)]
            timeouts = [task.timeout or conf.get_task_timeout() for task in tasks]
            if not child.start(tasks, timeouts):
                self.backlog.extendleft(reversed(tasks))

    def _keep_a_spare(self) -> None:
        """With a fresh process per task, fork the next child while this one runs, not after."""
        if self.max_tasks_per_child != 1 or self.stopping_since is not None:
            return
        if not self.backlog and not self.children.busy():
            return
        if not any(child.idle for child in self.children):
            self.children.spawn()

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
        self.children.remove(child)

    def _read(self, child: Child) -> None:
        """Take in the messages ``child`` has sent, each about the first of its assigned tasks."""
        while child.task is not None:
            try:
                if not child.conn.poll():
                    return
                kind, payload = protocol.receive(child.conn)
            except (EOFError, OSError):
                return
            except Exception as exc:
                # Output and progress are plain text: what cannot be read is the running task's
                # outcome. Failing that task keeps the messages in step with the tasks.
                logger.exception("could not read the outcome of %s", child.task.id)
                error = f"The worker could not read this task's outcome: {exc!r}"
                self._complete(child, Outcome(ok=False, error=error))
                continue
            if kind == protocol.OUTPUT:
                self.recorder.output(child.task, payload)
            elif kind == protocol.PROGRESS:
                self.recorder.progress(child.task, payload)
            elif kind == protocol.DONE:
                self._complete(child, child.reported(payload))

    def _died(self, child: Child) -> None:
        """``child`` died running the first of its assigned tasks: record how, or give it back."""
        if child.released_by_stop():
            self._release(child.finished_one())
            return
        outcome = child.death_outcome()
        outcome.log = child.read_log(conf.get_max_output_size())
        self._complete(child, outcome)

    def _complete(self, child: Child, outcome: Outcome) -> None:
        duration = time.monotonic() - child.started
        task = child.finished_one()
        self.durations.record(task.task, duration)
        self.recorder.outcome(task, outcome, duration)

    def _record(self) -> None:
        """Write the outcomes received; while children are busy, they wait up to RECORD_DELAY
        to be written together."""
        busy = self.children.busy()
        waiting = busy and not self.recorder.releases and self.stopping_since is None
        if waiting and time.monotonic() < self.recorder.due():
            return
        self.recorder.write()

    # -- running tasks: stops, cancels, heartbeats -------------------------------------------

    def _periodic(self, now: float) -> None:
        if now - self.last["flush"] >= FLUSH_INTERVAL:
            self.last["flush"] = now
            self.recorder.flush_all(child.task for child in self.children if child.task is not None)
        if self.children.busy() and now - self.last["cancel"] >= CANCEL_CHECK_INTERVAL:
            self.last["cancel"] = now
            self._check_cancels()
        if now - self.last["heartbeat"] >= self.heartbeat_interval:
            self.last["heartbeat"] = now
            self._heartbeat()
        if now - self.last["status"] >= STATUS_LINE_INTERVAL:
            self.last["status"] = now
            busy = len(self.children.busy())
            self.say(f"alive: {busy} running, {self.recorder.finished} finished")

    def _check_cancels(self) -> None:
        busy = self.children.busy()
        held = lifecycle.held_claims([child.task for child in busy if child.task is not None])
        for child in busy:
            if child.task is None:
                continue
            if child.task.id not in held:
                # Rescued while this worker was cut off or frozen: the task runs elsewhere now.
                self.say(f"lost the claim on {child.task.id}; stopping its run")
                child.stop_task(StopReason.LOST, time.monotonic())
            elif held[child.task.id]:
                self._stop(child, StopReason.CANCEL)

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
        shutting_down = self.stop_now or self._grace_over(now)
        for child in self.children.busy():
            if shutting_down:
                child.stop_task(StopReason.SHUTDOWN, now)
            elif child.deadline is not None and now >= child.deadline:
                self._stop(child, StopReason.TIMEOUT)
        for child in self.children:
            child.escalate(now)

    def _stop(self, child: Child, reason: StopReason) -> None:
        """Stop the task ``child`` runs, unless its outcome is already in the pipe: it finished
        first, and that outcome counts (a task that ends once signalled was stopped)."""
        task = child.task
        if child.stop_reason is not None:
            return
        self._read(child)
        if child.task is task:
            child.stop_task(reason, time.monotonic())
