"""The task admin's side of django-import-export: who may export and import, which rows an export
of selected tasks takes, and the batch page a confirmed import lands on."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from django_simple_queue.models import Task


def imported_batch(result: Any) -> uuid.UUID | None:
    """The batch an import's ``result`` queued its tasks in (import-export keeps the instances of
    a confirmed import's rows), or None."""
    for row in result.rows:
        batch_id = getattr(row.instance, "batch_id", None)
        if batch_id is not None:
            return batch_id
    return None


class TaskCsv:
    """Mixed into TaskAdmin before import-export's admin class (used only when it is installed)."""

    # TaskAdmin's, from ModelAdmin.
    admin_site: admin.AdminSite
    has_view_permission: Callable[..., bool]
    has_add_permission: Callable[..., bool]
    get_queryset: Callable[[HttpRequest], QuerySet[Task]]

    # Export is reading (view permission), import is enqueueing (add permission).
    def has_export_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def has_import_permission(self, request: HttpRequest) -> bool:
        return self.has_add_permission(request)

    def get_import_resource_classes(self, request: HttpRequest) -> list[type]:
        from admin_ext.resources import TaskImportResource

        return [TaskImportResource]

    def get_valid_export_item_pks(self, request: HttpRequest) -> Any:
        # Only the posted ids: import-export's default loads every id of the table.
        ids = []
        for value in request.POST.getlist("export_items"):
            try:
                ids.append(uuid.UUID(value))
            except ValueError:
                continue
        return self.get_queryset(request).filter(pk__in=ids).values_list("pk", flat=True)

    def process_result(self, result: Any, request: HttpRequest) -> HttpResponse:
        """After a confirmed import: the page of the batch it queued."""
        response: HttpResponse = super().process_result(result, request)  # type: ignore[misc]
        batch_id = imported_batch(result)
        if batch_id is None:
            return response
        return HttpResponseRedirect(
            reverse(f"{self.admin_site.name}:django_simple_queue_batch_change", args=[batch_id])
        )
