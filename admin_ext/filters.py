"""List filters whose choices are found without scanning the whole table."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any, Literal

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import label_for_field
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import ValidationError
from django.db import connections, router
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from admin_ext.display import dotted
from django_simple_queue import conf
from django_simple_queue.models import Batch, Task

# Queues are looked up among queued tasks and this many recent ones, not the whole history.
RECENT = 5_000
# The unique-key filter lists at most this many keys of active tasks.
RECENT_KEYS = 50


def recent_values(field: Literal["queue", "task", "exception_type"]) -> set[str]:
    """Distinct values of ``field`` among the RECENT newest tasks, made distinct by the database."""
    # A LIMIT in FROM reads the newest rows through the index on ``created``; the ORM's
    # ``pk__in=<sliced queryset>`` may make PostgreSQL join against the whole table instead.
    connection = connections[router.db_for_read(Task)]
    quote = connection.ops.quote_name
    column = quote(field)  # each of these fields has a column of its name
    sql = (
        f"SELECT DISTINCT {column} FROM (SELECT {column} FROM {quote(Task._meta.db_table)} "
        f"ORDER BY {quote('created')} DESC LIMIT %s) AS recent"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [RECENT])
        return {row[0] for row in cursor.fetchall()}


class QueueFilter(admin.SimpleListFilter):
    title = _("queue")
    parameter_name = "queue"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        queued = Task.objects.queued().order_by().values_list("queue", flat=True).distinct()
        names = recent_values("queue") | set(queued)
        if self.value():
            names.add(str(self.value()))
        return [(name, name) for name in sorted(names)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Task]) -> QuerySet[Task]:
        if self.value():
            return queryset.filter(queue=self.value())
        return queryset


class TaskPathFilter(admin.SimpleListFilter):
    title = _("task")
    parameter_name = "task"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        allowed = conf.get_allowed_tasks() or set()
        names = allowed | recent_values("task")
        if self.value():
            names.add(str(self.value()))
        return [(name, dotted(name)) for name in sorted(names)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Task]) -> QuerySet[Task]:
        if self.value():
            return queryset.filter(task=self.value())
        return queryset


class UniqueKeyFilter(admin.SimpleListFilter):
    """Tasks by unique key: the keys held by queued or running tasks (a small partial index)."""

    title = _("unique key")
    parameter_name = "unique_key"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        active = Task.objects.filter(
            status__in=(Task.QUEUED, Task.PROGRESS), unique_key__isnull=False
        ).order_by("unique_key")
        keys = list(active.values_list("unique_key", flat=True).distinct()[:RECENT_KEYS])
        if self.value() and self.value() not in keys:
            keys.append(str(self.value()))
        return [(key, key) for key in keys if key is not None]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Task]) -> QuerySet[Task]:
        if self.value():
            return queryset.filter(unique_key=self.value())
        return queryset


class ExceptionTypeFilter(admin.SimpleListFilter):
    """The cause of a failure (the failures page's groups link to the list filtered by it)."""

    title = _("exception type")
    parameter_name = "exception_type"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        names = recent_values("exception_type") - {""}
        if self.value() is not None:
            names.add(str(self.value()))
        return [(name, name or _("(none)")) for name in sorted(names)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Task]) -> QuerySet[Task]:
        if self.value() is not None:
            return queryset.filter(exception_type=self.value())
        return queryset


class _ByIdFilter(admin.SimpleListFilter):
    """Tasks related to one row, by its id (``?<parameter_name>=<uuid>``), through ``lookup``;
    offered only when a link uses it."""

    lookup = ""

    def id_value(self) -> uuid.UUID | None:
        value = self.value()
        if not value:
            return None
        try:
            return uuid.UUID(str(value))
        except ValueError:
            raise IncorrectLookupParameters(f"{self.parameter_name}: not an id") from None

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        value = self.value()
        return [(str(value), str(value)[:8])] if value else []

    def queryset(self, request: HttpRequest, queryset: QuerySet[Task]) -> QuerySet[Task]:
        value = self.id_value()
        return queryset if value is None else queryset.filter(**{self.lookup: value})


class BatchFilter(_ByIdFilter):
    """The tasks of one batch (the batch pages' links), named."""

    title = _("batch")
    parameter_name = "batch"
    lookup = "batch_id"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        value = self.value()
        if not value:
            return []
        batch = None
        with contextlib.suppress(ValidationError, ValueError):
            batch = Batch.objects.filter(pk=value).first()
        return [(str(value), str(batch) if batch is not None else str(value))]


class WaitsForFilter(_ByIdFilter):
    """The tasks that wait for one task (its dependants: a task page's "and N more")."""

    title = _("waits for")
    parameter_name = "waits_for"
    lookup = "dependencies"


class WaitedOnByFilter(_ByIdFilter):
    """The tasks that one task waits for (its dependencies)."""

    title = _("waited on by")
    parameter_name = "waited_on_by"
    lookup = "dependants"


def describe(changelist: ChangeList) -> list[tuple[str, Any]]:
    """The list's filters as the admin names them, e.g. ``[("Status", "Failed")]``."""
    described: list[tuple[str, Any]] = []
    for spec in changelist.filter_specs:
        if not spec.used_parameters:
            continue
        for choice in spec.choices(changelist):
            if choice["selected"]:
                # A SafeString display (a dotted path) is already escaped; the template keeps it.
                described.append((capfirst(str(spec.title)), choice["display"]))
    if changelist.date_hierarchy:
        field = changelist.date_hierarchy
        parts = [changelist.params.get(f"{field}__{part}") for part in ("year", "month", "day")]
        if parts[0]:
            label = capfirst(str(label_for_field(field, Task)))
            described.append((label, "-".join(str(p) for p in parts if p)))
    if changelist.query:
        described.append((str(_("Search")), changelist.query))
    return described
