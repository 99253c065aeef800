"""List filters whose choices are found without scanning the whole table."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from django_simple_queue import conf
from django_simple_queue.models import Task

# Queues are looked up among queued tasks and this many recent ones, not the whole history.
RECENT = 5_000


class QueueFilter(admin.SimpleListFilter):
    title = _("queue")
    parameter_name = "queue"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        recent = Task.objects.order_by("-created").values_list("queue", flat=True)[:RECENT]
        queued = Task.objects.queued().values_list("queue", flat=True).distinct()
        names = set(recent) | set(queued)
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
        recent = Task.objects.order_by("-created").values_list("task", flat=True)[:RECENT]
        names = allowed | set(recent)
        if self.value():
            names.add(str(self.value()))
        return [(name, name) for name in sorted(names)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Task]) -> QuerySet[Task]:
        if self.value():
            return queryset.filter(task=self.value())
        return queryset
