"""The work in flight: claiming tasks, sending them to children, taking in what children say.

``Dispatcher`` acts on the rules in ``prefetch`` (how many to claim, which child gets what, what
goes back); the supervisor's loop calls it every turn and keeps the signals, the exit, the outage
and the periodic duties.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import islice

from django_simple_queue import conf, lifecycle
from django_simple_queue.lifecycle import Ending, Outcome
from django_simple_queue.models import Task
from django_simple_queue.queues import Controls
from django_simple_queue.worker import prefetch, protocol
from django_simple_queue.worker.children import Child, Children, StopReason
from django_simple_queue.worker.metrics import NoMetrics
from django_simple_queue.worker.recorder import Recorder

logger = logging.getLogger("django_simple_queue")


@dataclass
class Stop:
    """The worker being asked to stop: set by the supervisor, read by it and the dispatcher."""

    # Seconds that running tasks are given to finish (SHUTDOWN_GRACE).
    grace: float
    # When the worker was asked to stop (monotonic), or None: from then on nothing is claimed.
    since: float | None = None
    # A second signal: running tasks are stopped now, not after the grace.
    at_once: bool = False

    def grace_over(self, now: float) -> bool:
        return self.since is not None and now - self.since >= self.grace

    def halted(self, now: float) -> bool:
        """Running tasks are being stopped: nothing starts."""
        return self.at_once or self.grace_over(now)


# How often a worker reads the queues' controls: a pause or a cap takes effect within this.
CONTROLS_TTL = 1.0


class Dispatcher:
    """A worker's claimed tasks, from the claim until their outcomes are with the recorder."""

    def __init__(
        self,
        *,
        name: str,
        queues: Sequence[str],
        concurrency: int,
        max_tasks: int | None,
        children: Children,
        recorder: Recorder,
        stop: Stop,
        say: Callable[[str], None] | None = None,
        metrics: NoMetrics | None = None,
    ) -> None:
        self.name = name
        self.queues = queues
        self.concurrency = concurrency
        self.max_tasks = max_tasks
        self.children = children
        self.recorder = recorder
        self.stop = stop
        self.say = say or (lambda line: None)
        self.metrics = metrics or NoMetrics()
        # Per-task lines cost time at thousands of tasks a second: built only to be shown.
        self.verbose = say is not None
        # Claimed and not given back: what --max-tasks counts.
        self.claimed = 0
        # Claimed tasks not yet sent to a child.
        self.backlog: deque[Task] = deque()
        self.durations = prefetch.Durations()
        # A task claimed ahead went back to the queue: claim ahead again once a child is free.
        self.gave_back = False
        # Paused and capped queues, keyed tasks waiting: read again every CONTROLS_TTL seconds.
        self.controls = Controls()
        self.controls_read = -CONTROLS_TTL

    def held(self) -> list[Task]:
        """Every task this worker has claimed and not yet recorded."""
        tasks = list(self.backlog)
        for child in self.children:
            tasks += child.assigned
        return tasks + self.recorder.tasks()

    # -- claiming (the rules are in prefetch) ------------------------------------------------

    def _prefetching(self) -> bool:
        now = time.monotonic()
        running = [
            None if child.task is None else (child.task.task, now - child.started)
            for child in self.children
        ]
        return prefetch.prefetching(self.durations.short, self.gave_back, running)

    def claim_count(self) -> int:
        if self.stop.since is not None:
            return 0
        return prefetch.claim_count(
            prefetching=self._prefetching(),
            concurrency=self.concurrency,
            held=len(self.backlog) + sum(len(child.assigned) for child in self.children),
            claimed=self.claimed,
            max_tasks=self.max_tasks,
        )

    def claim(self) -> int | None:
        """Claim what the rules allow and send it to children: how many were claimed, or None if
        the queue had none to give."""
        if self.stop.since is not None and self.backlog:
            while self.backlog:
                self._release(self.backlog.popleft())
        if len(self.children.busy()) < self.concurrency:
            self.gave_back = False
        count = self.claim_count()
        if count <= 0:
            return 0
        now = time.monotonic()
        if now - self.controls_read >= CONTROLS_TTL:
            self.controls, self.controls_read = Controls.read(), now
        tasks = lifecycle.claim(
            self.name,
            limit=count,
            queues=self.queues,
            pid=os.getpid(),
            controls=self.controls,
            # A limited task is claimed only for a child that can start it now.
            limited_limit=self.concurrency - len(self.children.busy()) - len(self.backlog),
        )
        self.metrics.claimed(tasks)
        if not tasks:
            return None
        for task in tasks:
            self.children.preload(task.task)
            self.claimed += 1
            self.recorder.track(task)
            if self.verbose:
                self.say(
                    f"claimed {task.id} {task.task} (attempt {task.attempts}/{task.max_attempts})"
                )
        self.backlog.extend(tasks)
        self.dispatch()
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

    # -- sending tasks to children -----------------------------------------------------------

    def dispatch(self) -> None:
        """Send tasks from the backlog to children with room, forking children as needed."""
        if self.stop.halted(time.monotonic()):
            return  # running tasks are being stopped: nothing starts; claim releases the rest
        while self.backlog:
            depth = prefetch.depth(self._prefetching())
            loads = [prefetch.Load(len(c.assigned), c.free_slots(depth)) for c in self.children]
            index = prefetch.pick(loads, self.concurrency)
            if index is None:
                return
            child = self.children.spawn() if index == prefetch.SPAWN else self.children.all[index]
            if self.stop.since is not None and child.busy:
                # Stopping: what was claimed may still start in a free child, but nothing queues
                # behind a running task; claim releases the rest.
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

    def keep_a_spare(self) -> None:
        """With a fresh process per task, fork the next child while this one runs, not after."""
        if self.children.max_tasks_per_child != 1 or self.stop.since is not None:
            return
        if not self.backlog and not self.children.busy():
            return
        if not any(child.idle for child in self.children):
            self.children.spawn()

    # -- what children say -------------------------------------------------------------------

    def receive(self, child: Child) -> None:
        """Take in what ``child`` has sent; if it has exited, what its exit means."""
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
                self._complete(child, Outcome(Ending.FAILED, error=error))
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

    def stop_unless_done(self, child: Child, reason: StopReason) -> None:
        """Stop the task ``child`` runs, unless its outcome is already in the pipe: it finished
        first, and that outcome counts (a task that ends once signalled was stopped)."""
        task = child.task
        if child.stop_reason is not None:
            return
        self._read(child)
        if child.task is task:
            child.stop_task(reason, time.monotonic())
