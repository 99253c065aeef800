from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import ngettext

from django_simple_queue import lifecycle
from django_simple_queue.models import Task


class TaskAdmin(admin.ModelAdmin):
    list_display = ("id", "task", "queue", "status_page_link", "attempts", "created", "started_at")
    list_filter = ("status", "queue", "created")
    search_fields = ("id", "task", "output", "error")
    ordering = ("-created",)
    actions = ["enqueue_tasks"]

    def get_readonly_fields(self, request: HttpRequest, obj: Task | None = None) -> list[str]:
        if obj is None:
            return []
        return [field.name for field in Task._meta.fields]

    @admin.display(description="Status", ordering="status")
    def status_page_link(self, obj: Task) -> str:
        return format_html(
            '<a href="{}?task_id={}" target="_blank">{}</a>',
            reverse("django_simple_queue:task"),
            obj.id,
            obj.get_status_display(),
        )

    @admin.action(description="Enqueue", permissions=["change"])
    def enqueue_tasks(self, request: HttpRequest, queryset: QuerySet[Task]) -> None:
        count = lifecycle.enqueue_again(queryset)
        self.message_user(
            request,
            ngettext("%d task was enqueued.", "%d tasks were enqueued.", count) % count,
            messages.SUCCESS,
        )


def register(site: admin.AdminSite = admin.site) -> None:
    if not site.is_registered(Task):
        site.register(Task, TaskAdmin)
