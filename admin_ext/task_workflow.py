"""A task page's workflow: its batch, the batch it completes, what it waits for and what waits
for it, each shown only when the task has one."""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib import admin
from django.db.models import QuerySet
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from admin_ext.display import dotted, status_badge
from django_simple_queue.models import Batch, Task

# A task page lists at most this many of the tasks it waits for, or that wait for it; a link
# leads to the task list of all of them.
LINKED_SHOWN = 20


class TaskWorkflowFields:
    """Read-only fields of TaskAdmin; ``workflow_fields(obj)`` names those that apply to ``obj``."""

    FIELDS: ClassVar[tuple[str, ...]] = (
        "batch_link",
        "completes_batch_link",
        "waits_for",
        "waited_on_by",
    )
    admin_site: admin.AdminSite

    def workflow_fields(self, obj: Task) -> list[str]:
        fields = []
        if obj.batch_id is not None:
            fields.append("batch_link")
        if Batch.objects.filter(callback=obj).exists():
            fields.append("completes_batch_link")
        if obj.dependencies.exists():
            fields.append("waits_for")
        if obj.waited_on and obj.dependants.exists():
            fields.append("waited_on_by")
        return fields

    def _url(self, name: str, *args: Any) -> str:
        return reverse(f"{self.admin_site.name}:django_simple_queue_{name}", args=args)

    def _batch(self, batch: Batch | None) -> str:
        if batch is None:
            return "—"
        return format_html('<a href="{}">{}</a>', self._url("batch_change", batch.pk), batch)

    @admin.display(description=_("Batch"))
    def batch_link(self, obj: Task) -> str:
        return self._batch(obj.batch)

    @admin.display(description=_("On complete of batch"))
    def completes_batch_link(self, obj: Task) -> str:
        return self._batch(Batch.objects.filter(callback=obj).first())

    @admin.display(description=_("Waits for"))
    def waits_for(self, obj: Task) -> str:
        return self._linked(obj.dependencies.all(), "waited_on_by", obj)

    @admin.display(description=_("Waited on by"))
    def waited_on_by(self, obj: Task) -> str:
        return self._linked(obj.dependants.all(), "waits_for", obj)

    def _linked(self, tasks: QuerySet[Task], parameter: str, obj: Task) -> str:
        """The first LINKED_SHOWN of ``tasks``, each linked with its status; a link to the rest."""
        shown = list(tasks.order_by("created", "id").only("id", "task", "status")[:LINKED_SHOWN])
        rows = [
            (
                self._url("task_change", task.pk),
                str(task.pk)[:8],
                dotted(task.task),
                status_badge(task.status),
            )
            for task in shown
        ]
        items = format_html_join("", '<li><a href="{}"><code>{}</code> {}</a> {}</li>', rows)
        listing = format_html('<ul class="dsq-linked">{}</ul>', items)
        if len(shown) < LINKED_SHOWN:
            return listing
        more = tasks.count() - len(shown)
        if more <= 0:
            return listing
        url = f"{self._url('task_changelist')}?{urlencode({parameter: str(obj.pk)})}"
        text = ngettext("and %d more", "and %d more", more) % more
        return format_html('{}<a href="{}" class="dsq-linked-more">{}</a>', listing, url, text)
