"""Lean settings for ``task_worker``: the demo's database and tasks, none of the web site.

``DJANGO_SETTINGS_MODULE=sample_site.task_worker_settings python manage.py task_worker``
"""

from __future__ import annotations

from sample_site.settings import *  # noqa: F403
from sample_site.settings import DATABASES

# No admin, auth, sessions, messages or static files: a worker only needs the queue and the apps
# whose tasks (and models, such as sample_site's ApiCall) it runs.
INSTALLED_APPS = [
    "django_simple_queue",
    "sample_site",
]
MIDDLEWARE: list[str] = []
TEMPLATES: list[dict[str, object]] = []
ROOT_URLCONF = None
# One long-lived connection in the worker process.
DATABASES["default"]["CONN_MAX_AGE"] = None
