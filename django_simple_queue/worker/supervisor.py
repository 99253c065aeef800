"""The supervisor: the loop that claims tasks, hands them to children and records their outcomes.

``Worker(...).run()`` is what ``manage.py task_worker`` calls. It keeps the loop, the signals and
the exit, the database going away (``outage``) and the periodic duties; the rest is elsewhere in
this package: the work in flight, claimed, sent to children and taken back (``dispatcher``), the
rules it follows (``prefetch``), the children (``children``), outcomes kept until written
(``recorder``).
"""

from __future__ import annotations

import contextlib
import logging
import random
import signal
import time
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

from django.db import DatabaseError, InterfaceError, OperationalError, connections

from django_simple_queue import conf, db, lifecycle, listen, monitor, workers
from django_simple_queue.inline import worker_name
from django_simple_queue.worker.children import Children, StopReason, wait
from django_simple_queue.worker.dispatcher import Dispatcher, Stop
from django_simple_queue.worker.metrics import NoMetrics
from django_simple_queue.worker.outage import Outage, bound_network_waits, connection_usable
from django_simple_queue.worker.recorder import Recorder
from django_simple_queue.worker.scheduling import Scheduling

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
        schedules: bool = True,
        say: Callable[[str], None] | None = None,
        metrics: NoMetrics | None = None,
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
        self.say = say or (lambda line: None)
        # What --metrics-port serves; a NoMetrics without it.
        self.metrics = metrics or NoMetrics()
        self.recorder = Recorder(say, self.metrics)
        # What its claims are known by: two live workers with one name would take each other's
        # claims for their own (host:pid is not unique where hosts share a hostname).
        self.name = name or worker_name()
        self.identity = workers.Identity(self.name, self.queues, self.concurrency)
        self.children = Children(max_tasks_per_child)
        self.metrics.watch(lambda: len(self.children.busy()))
        self.outage = Outage(self.heartbeat_interval)
        self.listener: listen.Listener | None = None
        self.stop = Stop(float(conf.get("SHUTDOWN_GRACE")))
        # The signal that asked this worker to stop, until the loop has said so on the console.
        self.unannounced: int | None = None
        self.last = {"flush": 0.0, "heartbeat": 0.0, "cancel": 0.0, "status": time.monotonic()}
        self.dispatcher = Dispatcher(
            name=self.name,
            queues=self.queues,
            concurrency=self.concurrency,
            max_tasks=max_tasks,
            children=self.children,
            recorder=self.recorder,
            stop=self.stop,
            say=say,
            metrics=self.metrics,
        )
        # No rescue of peers' claims before this (monotonic): see _reconnect.
        self.rescue_after = 0.0
        # A burst worker drains the queue and exits: it does not add to it.
        self.scheduling = Scheduling(self.say) if schedules and not burst else None

    # -- start, stop, exit -------------------------------------------------------------------

    def run(self) -> int:
        """Work until stopped (or, with ``burst``, until the queue is empty); return exit code."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        bound_network_waits(self.stale_after)
        self.children.start_fork_server()
        self.listener = listen.Listener.open()
        self.say(
            f"worker {self.name} started: concurrency {self.concurrency}, queues {self.queues or 'all'}"
        )
        try:
            self._register()
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
                if self.identity.started is not None:
                    workers.unregister(self.identity)
                connections.close_all()
        self.say(f"worker {self.name} stopped: {self.recorder.finished} tasks finished")
        return 0

    def _register(self) -> None:
        """Our row, for all to see; with the database away, the first heartbeat writes it."""
        try:
            workers.register(self.identity)
        except (OperationalError, InterfaceError) as exc:
            self._database_lost(exc)

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
        if self.stop.since is None:
            self.stop.since = time.monotonic()
            self.unannounced = signum
        else:
            self.stop.at_once = True

    def _announce_stop(self) -> None:
        signum, self.unannounced = self.unannounced, None
        if signum is not None:
            self.say(
                f"{signal.Signals(signum).name}: no new tasks; waiting up to {self.stop.grace:g}s for running ones"
            )

    def _should_exit(self) -> bool:
        if self.children.busy():
            return False
        stopping = self.stop.since is not None or self.stop.at_once
        if self.recorder.pending or self.dispatcher.backlog:
            if not self.outage.offline:
                return False
            # Wait for the database to come back, up to the grace period of a stop.
            return stopping and self.stop.halted(time.monotonic())
        if stopping:
            return True
        return self.max_tasks is not None and self.recorder.finished >= self.max_tasks

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
            self.dispatcher.receive(child)
        self.dispatcher.dispatch()
        if self.outage.due(time.monotonic()):
            self._reconnect()

    def _reconnect(self) -> None:
        """Raises while the database is still away; else resumes where the worker left off."""
        db.connection().ensure_connection()
        # A database that failed over may be another server, with a clock of its own.
        db.forget_clock()
        # Our own claims (and row) first, so that no peer takes them for lost.
        self._beat()
        # A claim whose commit we did not hear of was never started: back to the queue.
        returned = lifecycle.release_unknown(self.name, self.dispatcher.held())
        written = self.recorder.pending
        self.recorder.write()
        away = self.outage.regained(time.monotonic())
        self.metrics.reconnected()
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
        # Nor through a schedule's run.
        runs = [self.scheduling.at] if self.scheduling and self.stop.since is None else []
        wake = min(next_beat, self.recorder.due(), *kills, *runs) - time.monotonic()
        ready = wait(self._waitables(), max(min(timeout, wake), 0.0))
        for child in list(self.children):
            if child.conn in ready or child.process.sentinel in ready or (batching and child.busy):
                self.dispatcher.receive(child)
        self.dispatcher.dispatch()
        self._record()
        self.dispatcher.keep_a_spare()
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
        if claimed or self.stop.since is not None:
            return 0.0 if claimed and self.dispatcher.claim_count() else FLUSH_INTERVAL
        if self.children.busy():
            return FLUSH_INTERVAL
        if self.burst:
            return 0.0
        if self.listener is not None:
            return self.heartbeat_interval * random.uniform(0.5, 1.0)
        return self.poll_interval * random.uniform(0.75, 1.25)

    def _claim(self) -> int:
        claimed = self.dispatcher.claim()
        if claimed is None:
            # With --burst, an empty queue is the end of the work.
            if self.burst and not self.children.busy() and not self.dispatcher.backlog:
                self.stop.since = time.monotonic()
            return 0
        return claimed

    def _record(self) -> None:
        """Write the outcomes received; while children are busy, they wait up to RECORD_DELAY
        to be written together."""
        busy = self.children.busy()
        waiting = busy and not self.recorder.releases and self.stop.since is None
        if waiting and time.monotonic() < self.recorder.due():
            return
        self.recorder.write()

    # -- running tasks: stops, cancels, heartbeats -------------------------------------------

    def _periodic(self, now: float) -> None:
        if self.scheduling and self.stop.since is None and now >= self.scheduling.at:
            self.scheduling.run()
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
                self.dispatcher.stop_unless_done(child, StopReason.CANCEL)

    def _beat(self) -> None:
        """Refresh our claims and our row (the dashboard's "last seen")."""
        lifecycle.heartbeat(self.dispatcher.held())
        running = len(self.children.busy())
        workers.beat(self.identity, running=running, done=self.recorder.finished)
        self.last["heartbeat"] = time.monotonic()

    def _heartbeat(self) -> None:
        self._beat()
        if self.listener is None:
            self.listener = listen.Listener.open()
        if time.monotonic() >= self.rescue_after:
            for task in lifecycle.rescue_stale():
                self.say(f"rescued {task.id} {task.task} from lost worker {task.worker_id}")
            lifecycle.settle_left()
            workers.forget_lost()
        for task in monitor.detect_orphaned_tasks():
            pid = task.worker_pid
            self.say(f"orphaned {task.id} {task.task}: worker process {pid} on this host is gone")

    def _enforce_stops(self, now: float) -> None:
        shutting_down = self.stop.halted(now)
        for child in self.children.busy():
            if shutting_down:
                child.stop_task(StopReason.SHUTDOWN, now)
            elif child.deadline is not None and now >= child.deadline:
                self.dispatcher.stop_unless_done(child, StopReason.TIMEOUT)
        for child in self.children:
            child.escalate(now)
