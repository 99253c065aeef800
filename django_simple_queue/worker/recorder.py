"""What a worker owes the database: the outcomes, releases and streamed output of its tasks.

Everything is kept in memory until it is written, so that nothing is lost while the database is
away, and written in batches: one statement for many outcomes costs about what one for a single
task does.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from django_simple_queue import conf, lifecycle, tracing
from django_simple_queue.lifecycle import Outcome
from django_simple_queue.models import Task
from django_simple_queue.output import capped
from django_simple_queue.worker.metrics import NoMetrics, outcome_label

# Outcomes received while children are busy wait up to this long (seconds), to be written together.
RECORD_DELAY = 0.01


class Recorder:
    def __init__(
        self, say: Callable[[str], None] | None = None, metrics: NoMetrics | None = None
    ) -> None:
        # Per-task lines cost time at thousands of tasks a second: built only to be shown.
        self.say = say
        self.metrics = metrics or NoMetrics()
        # A span per attempt when the project has OpenTelemetry; nothing at all without it.
        self.tracing = tracing.enabled()
        self.results: list[tuple[Task, Outcome, float]] = []
        self.results_since = 0.0
        # Tasks stopped by a shutdown: back to the queue, the attempt not counted.
        self.releases: list[Task] = []
        # Streamed output and progress reports of each claimed task, not yet written.
        self.buffers: dict[uuid.UUID, list[tuple[str, Any]]] = {}
        self.output_sizes: dict[uuid.UUID, int] = {}
        self.finished = 0

    def track(self, task: Task) -> None:
        """Start keeping the streamed output of a task just claimed."""
        self.buffers[task.id] = []
        self.output_sizes[task.id] = 0

    def output(self, task: Task, text: str) -> None:
        size = self.output_sizes[task.id]
        kept = capped(text, size, conf.get_max_output_size())
        self.output_sizes[task.id] = size + len(text.encode())
        if kept is not None:
            self.buffers[task.id].append(("output", kept))

    def progress(self, task: Task, report: tuple[float | None, str | None]) -> None:
        self.buffers[task.id].append(("progress", report))

    def outcome(self, task: Task, outcome: Outcome, duration: float) -> None:
        if not self.results:
            self.results_since = time.monotonic()
        self.results.append((task, outcome, duration))

    def release(self, task: Task) -> None:
        self.releases.append(task)

    @property
    def pending(self) -> int:
        """Outcomes and releases not written yet."""
        return len(self.results) + len(self.releases)

    def tasks(self) -> list[Task]:
        """The tasks whose outcome or release is not written yet (their claims are still held)."""
        return [task for task, _, _ in self.results] + self.releases

    def due(self) -> float:
        """When the outcomes kept should be written even though children are still busy."""
        return self.results_since + RECORD_DELAY if self.results else float("inf")

    def write(self) -> None:
        """Write what is kept; on a database error, all of it stays for the next try."""
        if self.releases:
            for task in self.releases:
                self.flush(task)
            lifecycle.release(self.releases)
            for task in self.releases:
                if self.say:
                    self.say(f"released {task.id} back to the queue")
                self._forget(task)
            self.releases = []
        if not self.results:
            return
        results = list(self.results)
        for task, _, _ in results:
            self.flush(task)
        # Fenced by claim tokens: nothing is written for a task that was rescued meanwhile.
        statuses = lifecycle.finish_many([(task, outcome) for task, outcome, _ in results])
        del self.results[: len(results)]
        for (task, outcome, duration), status in zip(results, statuses, strict=True):
            self.finished += 1
            self._forget(task)
            self.metrics.finished(task, status, outcome.ending, duration)
            if self.tracing:
                label = outcome_label(status, outcome.ending)
                tracing.record_attempt(task, label, duration, error_line(outcome.error))
            if self.say:
                self.say(f"finished {task.id} {task.task}: {_label(status, duration, outcome)}")

    def flush(self, task: Task) -> None:
        """Write the output and progress a task has streamed since the last flush."""
        items = self.buffers.get(task.id)
        if not items:
            return
        text = "".join(payload for kind, payload in items if kind == "output")
        reports = [payload for kind, payload in items if kind == "progress"]
        value, message = reports[-1] if reports else (None, None)
        lifecycle.append_output(task, text, progress=value, message=message)
        # Only once written: output streamed while the database was away is not lost.
        items.clear()

    def flush_all(self, tasks: Iterable[Task]) -> None:
        for task in tasks:
            self.flush(task)

    def _forget(self, task: Task) -> None:
        self.buffers.pop(task.id, None)
        self.output_sizes.pop(task.id, None)


# The error on a console line is cut to this many characters.
ERROR_LINE_LIMIT = 200


def _label(status: int | None, duration: float, outcome: Outcome) -> str:
    if status is None:
        return f"lost its claim in {duration:.2f}s"
    if status == Task.QUEUED:  # the attempt failed and another is due
        label = f"Failed in {duration:.2f}s, retry queued"
    else:
        label = f"{dict(Task.STATUS_CHOICES)[status]} in {duration:.2f}s"
    if status in (Task.QUEUED, Task.FAILED):
        error = error_line(outcome.error)
        if error:
            label += f": {error}"
    return label


def error_line(error: str | None) -> str:
    """What a failure's console line says of its error: a traceback's last line, such as
    ``ValueError: row 2 is empty``, cut to ERROR_LINE_LIMIT characters."""
    lines = [line.strip() for line in (error or "").splitlines() if line.strip()]
    if not lines:
        return ""
    line = lines[-1]
    return line if len(line) <= ERROR_LINE_LIMIT else line[: ERROR_LINE_LIMIT - 1] + "…"
