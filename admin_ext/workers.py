"""The admin's read-only list of workers: each ``task_worker`` writes its own row."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import BooleanField, ExpressionWrapper, Q, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from django_simple_queue import db
from django_simple_queue.models import Worker


class WorkerAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "state",
        "host",
        "pid",
        "queues",
        "concurrency",
        "version",
        "started",
        "last_seen",
        "tasks_running",
        "tasks_done",
    ]
    search_fields = ["name", "host"]
    actions = ["forget_lost"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Worker]:
        lost = Q(pk__in=Worker.objects.lost(db.now()).values("pk"))
        return super().get_queryset(request).annotate(lost=ExpressionWrapper(lost, BooleanField()))

    @admin.display(description=_("State"))
    def state(self, worker: Worker) -> str:
        """As of its last heartbeat: lost (not seen for STALE_AFTER), busy or idle."""
        if getattr(worker, "lost", False):
            return str(_("lost"))
        return str(_("busy")) if worker.tasks_running else str(_("idle"))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Worker | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Worker | None = None) -> bool:
        # A live worker's row would only come back at its next heartbeat.
        if obj is not None and not getattr(obj, "lost", False):
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(self, request: HttpRequest, action_location: Any = None) -> dict[str, Any]:
        """The change list's: ``forget_lost`` instead of deleting live rows too. Django 6.1 also
        asks for the change form's: none, its Delete button is there for a lost row."""
        if getattr(action_location, "name", None) == "CHANGE_FORM":
            return {}
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.action(description=_("Remove the selected lost workers"), permissions=["delete"])
    def forget_lost(self, request: HttpRequest, queryset: QuerySet[Worker]) -> None:
        removed = queryset.lost(db.now()).delete()[0]  # type: ignore[attr-defined]
        self.message_user(
            request,
            ngettext("Removed %(count)d lost worker.", "Removed %(count)d lost workers.", removed)
            % {"count": removed},
        )
