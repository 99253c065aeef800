"""Settings of the demo site: SQLite in the repository by default, PostgreSQL with DATABASE_URL.

Environment: ``DATABASE_URL`` (``postgres://user:password@host:5432/name``), ``DEMO_DB_PATH`` (the
SQLite file, default ``demo.sqlite3`` at the repository root), ``DJANGO_SECRET_KEY``, ``DEMO_DEBUG``.
"""

from __future__ import annotations

import os
from pathlib import Path

from sample_site.dburl import database_from_url, sqlite_database

BASE_DIR = Path(__file__).resolve().parent.parent

# A demo on localhost: the fallback key must never serve anything public.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "demo-only-insecure-key")
DEBUG = os.environ.get("DEMO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "import_export",
    "django_simple_queue",
    "sample_site",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "sample_site.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

if os.environ.get("DATABASE_URL"):
    DATABASES = {"default": database_from_url(os.environ["DATABASE_URL"])}
else:
    DATABASES = {
        "default": sqlite_database(
            Path(os.environ.get("DEMO_DB_PATH") or BASE_DIR / "demo.sqlite3")
        )
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
STATIC_URL = "static/"

# The demo "sends" mail by printing it: a task's prints land in its log.
EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"

DJANGO_SIMPLE_QUEUE_ALLOWED_TASKS = {
    "sample_site.tasks.send_welcome_email",
    "sample_site.tasks.count_primes",
    "sample_site.tasks.check_services",
    "sample_site.tasks.build_report",
    "sample_site.tasks.import_contacts",
    "sample_site.tasks.call_flaky_api",
}
DJANGO_SIMPLE_QUEUE_TASK_TIMEOUT = 300
# Short, so that the retry demo retries within seconds and Ctrl-C stops the worker quickly.
DJANGO_SIMPLE_QUEUE_RETRY_BACKOFF = 1.0
DJANGO_SIMPLE_QUEUE_SHUTDOWN_GRACE = 5.0
DJANGO_SIMPLE_QUEUE_POLL_INTERVAL = 0.5

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_simple_queue": {"handlers": ["console"], "level": "INFO"}},
}
