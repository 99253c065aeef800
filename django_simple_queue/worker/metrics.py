"""A worker's own metrics, served by its supervisor with ``task_worker --metrics-port``.

Without the option the worker holds a ``NoMetrics``, whose updates do nothing: the loop pays a
method call per claim and per outcome written, no more. With it, ``PrometheusMetrics`` keeps
counters and histograms in a registry of its own (not prometheus-client's global one) and serves
them from a thread. Each worker serves its own figures; the queue's state is the web's
``/django_simple_queue/metrics`` (docs/observability.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django_simple_queue.lifecycle import Ending
from django_simple_queue.models import Task

PREFIX = "django_simple_queue_"
# Seconds: from a millisecond task to the default TASK_TIMEOUT of an hour.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
MISSING = "--metrics-port needs prometheus-client: pip install 'django-simple-queue[metrics]'"


def outcome_label(status: int | None, ending: Ending) -> str:
    """What became of an attempt, from the status written and how the attempt ended."""
    if status is None:
        return "lost"  # rescued by another worker meanwhile: nothing was written
    if status == Task.QUEUED:
        return "retried"
    if status == Task.FAILED and ending is Ending.TIMED_OUT:
        return "timed_out"
    return {Task.COMPLETED: "completed", Task.CANCELLED: "cancelled"}.get(status, "failed")


class NoMetrics:
    """A worker without ``--metrics-port``: every update does nothing."""

    def watch(self, busy: Callable[[], int]) -> None:
        """Read the number of busy children from ``busy`` at each scrape."""

    def claimed(self, tasks: Sequence[Task]) -> None:
        """One claim statement, and the tasks it returned (maybe none)."""

    def finished(self, task: Task, status: int | None, ending: Ending, duration: float) -> None:
        """An attempt's outcome, written as ``status`` (None: its claim was lost)."""

    def reconnected(self) -> None:
        """The database came back after an outage."""


class PrometheusMetrics(NoMetrics):
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.tasks_finished = Counter(
            PREFIX + "tasks_finished",
            "Attempts finished by this worker, by task and outcome.",
            ["task", "outcome"],
            registry=self.registry,
        )
        self.duration = Histogram(
            PREFIX + "task_duration_seconds",
            "Seconds an attempt ran, from its start in a child to its outcome.",
            ["task"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.pickup = Histogram(
            PREFIX + "pickup_delay_seconds",
            "Seconds from a task being ready (created or run_after) to the claim of an attempt "
            "that ran.",
            ["queue"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.busy = Gauge(
            PREFIX + "children_busy", "Child processes running a task.", registry=self.registry
        )
        self.claims = Counter(
            PREFIX + "claims",
            "Claim statements run (including those that found nothing).",
            registry=self.registry,
        )
        self.batch = Histogram(
            PREFIX + "claim_batch_size",
            "Tasks returned by a claim that found some.",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.reconnects = Counter(
            PREFIX + "database_reconnects",
            "Times the database came back after an outage.",
            registry=self.registry,
        )
        self._counters: dict[tuple[str, str], Any] = {}
        self._durations: dict[str, Any] = {}

    def watch(self, busy: Callable[[], int]) -> None:
        self.busy.set_function(busy)

    def claimed(self, tasks: Sequence[Task]) -> None:
        self.claims.inc()
        if not tasks:
            return
        self.batch.observe(len(tasks))

    def finished(self, task: Task, status: int | None, ending: Ending, duration: float) -> None:
        # The labelled children are kept: ``labels()`` takes a lock and builds a key each time.
        key = (task.task, outcome_label(status, ending))
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = self.tasks_finished.labels(*key)
        counter.inc()
        histogram = self._durations.get(task.task)
        if histogram is None:
            histogram = self._durations[task.task] = self.duration.labels(task.task)
        histogram.observe(duration)
        # Observed here, not at the claim: a task claimed ahead and given back was not picked up.
        if task.started_at is not None:
            ready = max(task.created, task.run_after) if task.run_after else task.created
            delay = (task.started_at - ready).total_seconds()
            self.pickup.labels(task.queue).observe(max(delay, 0.0))

    def reconnected(self) -> None:
        self.reconnects.inc()


def serve(host: str, port: int) -> tuple[PrometheusMetrics, int]:
    """Metrics served on ``host:port`` (0: any free port) from a thread; (metrics, port).

    Raises ImportError with MISSING when prometheus-client is not installed.
    """
    try:
        from prometheus_client import start_http_server
    except ModuleNotFoundError as exc:
        raise ImportError(MISSING) from exc
    metrics = PrometheusMetrics()
    server, _ = start_http_server(port, addr=host, registry=metrics.registry)
    return metrics, int(server.server_port)
