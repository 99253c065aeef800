from __future__ import annotations

from django.apps import AppConfig


class AdminExtConfig(AppConfig):
    """The staff admin's templates and static files; the ModelAdmin is registered by
    ``django_simple_queue.admin``."""

    name = "admin_ext"
    verbose_name = "Django simple queue admin"
