"""Registers the staff admin of ``admin_ext`` when ``django.contrib.admin`` is installed."""

from __future__ import annotations

from django.apps import apps

if apps.is_installed("django.contrib.admin"):
    from admin_ext.admin import register

    register()
