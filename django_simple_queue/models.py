"""The Task row: what to run, with which arguments, and what happened when it ran; the Schedule
row, which enqueues tasks on a cron expression or an interval; the Worker row: one running
``task_worker``.

State changes of tasks (claim, finish, retry, cancel, rescue …) live in ``lifecycle.py``; those of
schedules (a tick enqueued, run now, settings synced) in ``scheduler.py``; a worker's row is written
by ``workers.py``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any, ClassVar

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Exists, OuterRef, Q
from django.db.models.lookups import Exact, In
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from django_simple_queue import callables, conf, db, schedules
from django_simple_queue.exceptions import InvalidTaskArguments, InvalidTaskPath


class TaskQuerySet(models.QuerySet["Task"]):
    def queued(self) -> TaskQuerySet:
        return self.filter(status=Task.QUEUED)

    def ready(self, now: Any = None) -> TaskQuerySet:
        """Queued tasks whose ``run_after`` has passed, in claim order."""
        now = now or db.now(self.db)
        return (
            self.filter(status=Task.QUEUED)
            .filter(Q(run_after__isnull=True) | Q(run_after__lte=now))
            .order_by("-priority", "created")
        )

    def running(self) -> TaskQuerySet:
        return self.filter(status=Task.PROGRESS)

    def stale(self, now: Any = None) -> TaskQuerySet:
        """Running tasks whose worker has not heartbeat within STALE_AFTER.

        A row with no heartbeat at all (left In progress by 0.1.x, which had none) is judged by
        its last change instead.
        """
        now = now or db.now(self.db)
        cutoff = now - timedelta(seconds=float(conf.get("STALE_AFTER")))
        never = Q(heartbeat_at__isnull=True, modified__lt=cutoff)
        # A claim made by a worker whose row is live is never stale: that worker is there (its
        # row and its claims are refreshed by the same heartbeat) and still holds it.
        held = Worker.objects.filter(
            name=OuterRef("worker_id"), last_seen__gte=cutoff, started__lte=OuterRef("started_at")
        )
        return self.running().filter(Q(heartbeat_at__lt=cutoff) | never).exclude(Exists(held))

    def finished(self) -> TaskQuerySet:
        return self.filter(status__in=Task.FINISHED)

    def failed(self) -> TaskQuerySet:
        return self.filter(status=Task.FAILED)


class Task(models.Model):
    QUEUED = 0
    PROGRESS = 1
    COMPLETED = 2
    FAILED = 3
    CANCELLED = 4
    # Not claimable until every task it depends on has completed (workflows.py).
    WAITING = 5

    STATUS_CHOICES = (
        (QUEUED, _("Queued")),
        (PROGRESS, _("In progress")),
        (COMPLETED, _("Completed")),
        (FAILED, _("Failed")),
        (CANCELLED, _("Cancelled")),
        (WAITING, _("Waiting")),
    )
    FINISHED = (COMPLETED, FAILED, CANCELLED)
    UNFINISHED = (WAITING, QUEUED, PROGRESS)
    # What a waiting task becomes when a task it depends on fails or is cancelled.
    CANCEL = "cancel"
    FAIL = "fail"
    DEPENDENCY_FAILURE_CHOICES = ((CANCEL, _("Cancel it")), (FAIL, _("Fail it")))
    # What staff may change while a task is queued; the enqueue form has these and ``task``.
    EDITABLE_FIELDS = ("args", "queue", "priority", "run_after", "max_attempts", "timeout")
    # Every column, as attribute names in table order (set below, once the fields exist).
    FIELD_NAMES: ClassVar[tuple[str, ...]]

    # The original's fields: names, types and meaning kept.
    id = models.UUIDField(_("ID"), primary_key=True, default=uuid.uuid4, editable=False)
    created = models.DateTimeField(_("Created"), auto_now_add=True)
    modified = models.DateTimeField(_("Modified"), auto_now=True)
    task = models.CharField(
        _("Task"), max_length=127, help_text=_("Name of the function to be called.")
    )
    args = models.TextField(
        _("Arguments"), null=True, blank=True, help_text=_("Arguments in JSON format")
    )
    status = models.IntegerField(_("Status"), default=QUEUED, choices=STATUS_CHOICES)
    output = models.TextField(_("Output"), null=True, blank=True)
    worker_pid = models.IntegerField(_("Worker PID"), null=True, blank=True)
    error = models.TextField(_("Error"), null=True, blank=True)
    log = models.TextField(_("Log"), null=True, blank=True)

    # Scheduling.
    queue = models.CharField(_("Queue"), max_length=64, default="default")
    priority = models.IntegerField(_("Priority"), default=0, help_text=_("Higher runs first."))
    run_after = models.DateTimeField(_("Run after"), null=True, blank=True)
    attempts = models.PositiveIntegerField(_("Attempts"), default=0)
    max_attempts = models.PositiveIntegerField(_("Max attempts"), default=1)
    timeout = models.PositiveIntegerField(
        _("Timeout"),
        null=True,
        blank=True,
        help_text=_("Seconds; empty uses DJANGO_SIMPLE_QUEUE_TASK_TIMEOUT."),
    )
    enqueued_by = models.CharField(_("Enqueued by"), max_length=150, blank=True, default="")
    # Queue control (queues.py): one active task per unique key; at most concurrency_limit tasks
    # of one concurrency key running at once, across every worker.
    unique_key = models.CharField(
        _("Unique key"),
        max_length=255,
        null=True,
        blank=True,
        help_text=_("While a task with this key is queued or running, no other is enqueued."),
    )
    concurrency_key = models.CharField(_("Concurrency key"), max_length=255, null=True, blank=True)
    concurrency_limit = models.PositiveIntegerField(
        _("Concurrency limit"),
        null=True,
        blank=True,
        help_text=_("How many tasks of its concurrency key may run at once."),
    )
    requeued_from = models.ForeignKey(
        "self",
        verbose_name=_("Requeued from"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="requeues",
    )

    # The schedule that enqueued it, and for which of its ticks: one task per tick.
    schedule = models.ForeignKey(
        "Schedule",
        verbose_name=_("Schedule"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="tasks",
        db_index=False,  # the unique constraint's index leads with it
    )
    scheduled_for = models.DateTimeField(_("Scheduled for"), null=True, blank=True)

    # Workflows (workflows.py): the batch it belongs to; what becomes of it if a task it depends on
    # fails; whether a task depends on it (set when one is enqueued: its finish looks for them).
    batch = models.ForeignKey(
        "Batch",
        verbose_name=_("Batch"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="tasks",
        db_index=False,  # dsq_task_batch_idx leads with it
    )
    on_dependency_failure = models.CharField(
        _("If a dependency fails"),
        max_length=8,
        choices=DEPENDENCY_FAILURE_CHOICES,
        default=CANCEL,
        db_default=CANCEL,
    )
    waited_on = models.BooleanField(_("Waited on"), default=False, db_default=False, editable=False)
    # Ended on PostgreSQL by a worker's batch finish, which then settles what waits for it in a
    # transaction of its own; a rescue pass settles it if that worker died in between.
    settle_pending = models.BooleanField(
        _("Settle pending"), default=False, db_default=False, editable=False
    )
    dependencies = models.ManyToManyField(
        "self",
        verbose_name=_("Depends on"),
        through="Dependency",
        through_fields=("task", "depends_on"),
        symmetrical=False,
        related_name="dependants",
        blank=True,
    )

    # Execution, written by the worker.
    started_at = models.DateTimeField(_("Started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("Finished"), null=True, blank=True)
    worker_id = models.CharField(_("Worker"), max_length=255, blank=True, default="")
    claim_token = models.UUIDField(_("Claim token"), null=True, blank=True, editable=False)
    heartbeat_at = models.DateTimeField(_("Heartbeat"), null=True, blank=True)
    cancel_requested = models.BooleanField(_("Cancel requested"), default=False)
    progress = models.FloatField(_("Progress"), null=True, blank=True)
    progress_message = models.CharField(
        _("Progress message"), max_length=255, blank=True, default=""
    )
    exception_type = models.CharField(
        _("Exception type"),
        max_length=255,
        blank=True,
        default="",
        # In the table too: code that predates the column (a worker not yet restarted) can insert.
        db_default="",
        help_text=_("Qualified class of the last attempt's exception, e.g. builtins.ValueError."),
    )
    attempt_log = models.JSONField(
        _("Attempts' history"),
        default=list,
        blank=True,
        help_text=_("One entry per attempt: worker, start, end, outcome and error."),
    )

    # Django's Tasks API (backends.py): positional arguments and a JSON return value.
    backend = models.CharField(_("Tasks backend"), max_length=64, blank=True, default="")
    positional_args = models.JSONField(_("Positional arguments"), default=list, blank=True)
    return_value = models.JSONField(_("Return value"), null=True, blank=True)
    # The span that enqueued the task, as W3C trace context headers in JSON (tracing.py).
    trace_context = models.TextField(_("Trace context"), null=True, blank=True, editable=False)

    objects = TaskQuerySet.as_manager()

    class Meta:
        verbose_name = _("Task")
        verbose_name_plural = _("Tasks")
        indexes = [
            models.Index(
                fields=["-priority", "created"],
                condition=Q(status=0),
                name="dsq_task_ready_idx",
            ),
            models.Index(
                fields=["heartbeat_at"], condition=Q(status=1), name="dsq_task_running_idx"
            ),
            models.Index(fields=["status", "-created"], name="dsq_task_status_idx"),
            models.Index(fields=["-created"], name="dsq_task_created_idx"),
            models.Index(fields=["finished_at"], name="dsq_task_finished_idx"),
            # What the claim counts and looks for when keys or queue caps are in use: small,
            # as they hold running or keyed rows only.
            models.Index(
                fields=["concurrency_key"],
                condition=Q(status=1, concurrency_key__isnull=False),
                name="dsq_task_running_key_idx",
            ),
            models.Index(
                fields=["queue"], condition=Q(status=1), name="dsq_task_running_queue_idx"
            ),
            models.Index(
                fields=["concurrency_key"],
                condition=Q(status=0, concurrency_key__isnull=False),
                name="dsq_task_queued_key_idx",
            ),
            # Finishes whose workflow is not settled yet: none, but for a worker that just died.
            models.Index(
                fields=["modified"], condition=Q(settle_pending=True), name="dsq_task_settle_idx"
            ),
            # A batch's counts by status; partial, so a task outside batches costs it nothing.
            models.Index(
                fields=["batch", "status"],
                condition=Q(batch__isnull=False),
                name="dsq_task_batch_idx",
            ),
            # The failures page groups failed tasks by cause: an index-only GROUP BY, and the
            # latest of a group read backwards.
            models.Index(
                fields=["task", "exception_type", "finished_at"],
                condition=Q(status=3),
                name="dsq_task_failures_idx",
            ),
        ]
        constraints = [
            # One queued or running task per unique key (PostgreSQL and SQLite: docs/queues.md).
            models.UniqueConstraint(
                fields=["unique_key"],
                condition=Q(status__in=[0, 1], unique_key__isnull=False),
                name="dsq_task_unique_active",
            ),
            # The database itself refuses a second task for one tick of a schedule.
            models.UniqueConstraint(
                fields=["schedule", "scheduled_for"], name="dsq_task_one_per_tick"
            ),
        ]

    def __str__(self) -> str:
        return str(self.id)

    @property
    def as_dict(self) -> dict[str, Any]:
        """The original's JSON view of a task: status as its label, dates as text."""
        return {
            "id": str(self.id),
            "created": str(self.created),
            "modified": str(self.modified),
            "task": self.task,
            "args": self.args,
            "status": self.get_status_display(),
            "output": self.output,
            "worker_pid": self.worker_pid,
            "error": self.error,
            "log": self.log,
        }

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def duration(self) -> timedelta | None:
        if self.started_at is None:
            return None
        return (self.finished_at or db.now(self._state.db)) - self.started_at

    @property
    def kwargs(self) -> dict[str, Any]:
        """The stored keyword arguments; raises InvalidTaskArguments for a poison row."""
        return callables.load_args(self.args)

    @property
    def redacted_args(self) -> str | None:
        return callables.redacted_text(self.args)

    @staticmethod
    def _callable_task(task: str) -> Callable[..., Any]:
        """The callable for a dotted path; raises ImportError, AttributeError or TypeError."""
        try:
            return callables.import_callable(task)
        except InvalidTaskPath as exc:
            raise exc.__cause__ or TypeError(str(exc)) from exc

    def clean_task(self) -> None:
        try:
            callables.import_callable(self.task)
        except InvalidTaskPath as exc:
            raise ValidationError(
                {
                    "task": ValidationError(
                        _("Invalid callable: %(error)s"), code="invalid", params={"error": str(exc)}
                    )
                }
            ) from exc

    def clean_args(self) -> None:
        if self.args is None or self.args == "":
            return
        try:
            json.loads(self.args)
        except (TypeError, ValueError) as exc:
            raise ValidationError(
                {
                    "args": ValidationError(
                        _("Invalid JSON: %(error)s"), code="invalid", params={"error": str(exc)}
                    )
                }
            ) from exc
        try:
            callables.load_args(self.args)
            callables.check_size(self.args)
        except InvalidTaskArguments as exc:
            raise ValidationError({"args": ValidationError(str(exc), code="invalid")}) from exc

    def clean(self) -> None:
        errors: dict[str, list[ValidationError]] = {}
        for check in (self.clean_task, self.clean_args):
            try:
                check()
            except ValidationError as exc:
                for field, messages in exc.error_dict.items():
                    errors.setdefault(field, []).extend(messages)
        if errors:
            raise ValidationError(errors)


Task.FIELD_NAMES = tuple(field.attname for field in Task._meta.concrete_fields)


class Dependency(models.Model):
    """``task`` waits for ``depends_on`` to complete."""

    task = models.ForeignKey(
        Task,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,  # the constraint's
    )
    depends_on = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="+")

    class Meta:
        verbose_name = _("Dependency")
        verbose_name_plural = _("Dependencies")
        constraints = [
            models.UniqueConstraint(fields=["task", "depends_on"], name="dsq_dependency_unique")
        ]

    def __str__(self) -> str:
        return f"{self.task_id} waits for {self.depends_on_id}"


class Batch(models.Model):
    """Tasks enqueued together, followed as one; when all have finished, ``callback`` (a task that
    waits meanwhile) is queued, with ``batch_id`` among its arguments."""

    id = models.UUIDField(_("ID"), primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(_("Name"), max_length=255, blank=True, default="")
    callback = models.OneToOneField(
        Task,
        verbose_name=_("On complete"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="completes_batch",
    )
    enqueued_by = models.CharField(_("Enqueued by"), max_length=150, blank=True, default="")
    created = models.DateTimeField(_("Created"))
    finished_at = models.DateTimeField(_("Finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("Batch")
        verbose_name_plural = _("Batches")
        ordering = ("-created",)

    def __str__(self) -> str:
        return self.name or str(self.id)

    @property
    def is_finished(self) -> bool:
        return self.finished_at is not None


class ScheduleQuerySet(models.QuerySet["Schedule"]):
    def enabled(self) -> ScheduleQuerySet:
        return self.filter(enabled=True)

    def due(self, now: Any) -> ScheduleQuerySet:
        """Enabled schedules whose next run has come, the most overdue first."""
        return self.enabled().filter(next_run_at__lte=now).order_by("next_run_at")


class Schedule(models.Model):
    """A recurring enqueue of one task: on a cron expression or every ``interval`` seconds."""

    SETTINGS = "settings"
    ADMIN = "admin"
    SOURCE_CHOICES = ((SETTINGS, _("Settings")), (ADMIN, _("Admin")))
    MISFIRE_CHOICES = (
        (schedules.LATEST, _("Enqueue the latest missed run")),
        (schedules.SKIP, _("Skip missed runs")),
        (
            schedules.ALL,
            format_lazy(_("Enqueue every missed run (up to {})"), schedules.CATCH_UP_CAP),
        ),
    )

    name = models.CharField(_("Name"), max_length=100, unique=True)
    task = models.CharField(
        _("Task"), max_length=127, help_text=_("Dotted path of the function to enqueue.")
    )
    args = models.TextField(
        _("Arguments"),
        blank=True,
        default="{}",
        help_text=_("A JSON object of keyword arguments, checked like a task's."),
    )
    cron = models.CharField(
        _("Cron"),
        max_length=100,
        blank=True,
        default="",
        help_text=_("minute hour day-of-month month day-of-week, e.g. 30 3 * * *"),
    )
    interval = models.PositiveIntegerField(
        _("Interval"), null=True, blank=True, help_text=_("Seconds between runs, instead of cron.")
    )
    timezone = models.CharField(
        _("Timezone"),
        max_length=64,
        blank=True,
        default="",
        help_text=_("IANA name such as Europe/Berlin; empty uses TIME_ZONE."),
    )
    enabled = models.BooleanField(_("Enabled"), default=True)
    queue = models.CharField(_("Queue"), max_length=64, default="default")
    priority = models.IntegerField(_("Priority"), default=0, help_text=_("Higher runs first."))
    max_attempts = models.PositiveIntegerField(
        _("Max attempts"),
        null=True,
        blank=True,
        help_text=_("Empty uses DJANGO_SIMPLE_QUEUE_MAX_ATTEMPTS."),
    )
    timeout = models.PositiveIntegerField(
        _("Timeout"),
        null=True,
        blank=True,
        help_text=_("Seconds; empty uses DJANGO_SIMPLE_QUEUE_TASK_TIMEOUT."),
    )
    misfire = models.CharField(
        _("After downtime"), max_length=10, choices=MISFIRE_CHOICES, default=schedules.LATEST
    )
    next_run_at = models.DateTimeField(_("Next run"), null=True, blank=True)
    last_run_at = models.DateTimeField(_("Last run"), null=True, blank=True)
    last_error = models.TextField(
        _("Last error"),
        blank=True,
        default="",
        help_text=_("Why the last run could not enqueue its task; empty when it could."),
    )
    source = models.CharField(
        _("Declared in"), max_length=10, choices=SOURCE_CHOICES, default=ADMIN, editable=False
    )
    created = models.DateTimeField(_("Created"), auto_now_add=True)
    modified = models.DateTimeField(_("Modified"), auto_now=True)

    objects = ScheduleQuerySet.as_manager()

    class Meta:
        verbose_name = _("Schedule")
        verbose_name_plural = _("Schedules")
        ordering = ("name",)
        indexes = [models.Index(fields=["next_run_at"], name="dsq_schedule_next_run_idx")]

    def __str__(self) -> str:
        return self.name

    @property
    def timing(self) -> schedules.Timing:
        return schedules.Timing(cron=self.cron, interval=self.interval, timezone=self.timezone)

    @property
    def kwargs(self) -> dict[str, Any]:
        return callables.load_args(self.args)


class Queue(models.Model):
    """A named queue's controls: paused, and a cap on its tasks running at once across every
    worker. A queue without a row runs freely; ``queues.py`` makes the row on first control."""

    name = models.CharField(_("Name"), max_length=64, unique=True)
    paused = models.BooleanField(_("Paused"), default=False)
    max_running = models.PositiveIntegerField(
        _("Max running"),
        null=True,
        blank=True,
        help_text=_("Tasks of this queue running at once, across all workers; empty: no cap."),
    )
    modified = models.DateTimeField(_("Modified"), auto_now=True)

    class Meta:
        verbose_name = _("Queue")
        verbose_name_plural = _("Queues")
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class WorkerQuerySet(models.QuerySet["Worker"]):
    def _cutoff(self, now: Any) -> Any:
        now = now or db.now(self.db)
        return now - timedelta(seconds=float(conf.get("STALE_AFTER")))

    def live(self, now: Any = None) -> WorkerQuerySet:
        """Workers seen within STALE_AFTER."""
        return self.filter(last_seen__gte=self._cutoff(now))

    def lost(self, now: Any = None) -> WorkerQuerySet:
        """Workers not seen for longer than STALE_AFTER: killed, frozen or cut off."""
        return self.filter(last_seen__lt=self._cutoff(now))


class Worker(models.Model):
    """One ``task_worker`` process: created at its start, seen at each heartbeat, deleted at its
    clean exit. A row whose worker died stays, shown as lost, until ``workers.FORGET_LOST_AFTER``."""

    name = models.CharField(
        _("Name"),
        max_length=255,
        unique=True,
        help_text=_("As written on its tasks' worker column: host:pid, or its --name."),
    )
    host = models.CharField(_("Host"), max_length=255)
    pid = models.IntegerField(_("PID"))
    queues = models.JSONField(
        _("Queues"), default=list, blank=True, help_text=_("The queues it serves; empty for all.")
    )
    concurrency = models.PositiveIntegerField(_("Concurrency"), default=1)
    version = models.CharField(_("Version"), max_length=32, blank=True, default="")
    started = models.DateTimeField(_("Started"))
    last_seen = models.DateTimeField(_("Last seen"))
    tasks_running = models.PositiveIntegerField(_("Tasks running"), default=0)
    tasks_done = models.PositiveBigIntegerField(_("Tasks done"), default=0)

    objects = WorkerQuerySet.as_manager()

    class Meta:
        verbose_name = _("Worker")
        verbose_name_plural = _("Workers")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class _BytewiseMixin:
    """On MySQL and MariaDB, compare the column byte for byte.

    Their usual collations (``utf8mb4_unicode_ci``, ``utf8mb4_general_ci``) take "Emails" and
    "emails " for "emails": a worker would claim another queue's tasks, or put back the claims of
    another worker whose name differs only in case.
    """

    def process_lhs(self, compiler: Any, connection: Any, lhs: Any = None) -> tuple[str, Any]:
        sql, params = super().process_lhs(compiler, connection, lhs)  # type: ignore[misc]
        if connection.vendor == "mysql":
            sql = f"CAST({sql} AS BINARY)"
        return sql, params


class _BytewiseExact(_BytewiseMixin, Exact):
    pass


class _BytewiseIn(_BytewiseMixin, In):
    pass


def _match_names_exactly() -> None:
    """Task paths, queues and worker names match exactly on every database.

    Registered on the fields rather than declared by a field class, so that migrations do not change.
    """
    for model, name in ((Task, "task"), (Task, "queue"), (Task, "worker_id"), (Worker, "name")):
        field = model._meta.get_field(name)
        assert isinstance(field, models.CharField)
        field.register_lookup(_BytewiseExact, "exact")
        field.register_lookup(_BytewiseIn, "in")


_match_names_exactly()
