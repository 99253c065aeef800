"""Settings for the benchmarks: one PostgreSQL database shared by this project and django-tasks-db."""

from __future__ import annotations

import os

SECRET_KEY = "bench-only"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django_simple_queue",
    "django_tasks_db",
]
try:
    import django.tasks  # noqa: F401  (Django 6 has the Tasks API built in)
except ImportError:
    INSTALLED_APPS.insert(1, "django_tasks")

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("DSQ_BENCH_DB", "dsq_bench"),
        "USER": os.environ.get("PGUSER", "postgres"),
        "PASSWORD": os.environ.get("PGPASSWORD", ""),
        "HOST": os.environ.get("PGHOST", "127.0.0.1"),
        "PORT": os.environ.get("PGPORT", "5432"),
    }
}

# django-tasks-db is the Tasks backend here; this project's queue is used through create_task.
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

DJANGO_SIMPLE_QUEUE_ALLOWED_TASKS = {"bench.tasks.noop", "bench.tasks.stamp"}
DJANGO_SIMPLE_QUEUE_POLL_INTERVAL = 0.1
LOGGING = {"version": 1, "disable_existing_loggers": False}
