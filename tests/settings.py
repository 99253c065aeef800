"""Settings for the test suite.

``DSQ_TEST_DB=postgres`` (with the usual PGHOST/PGPORT/PGUSER) runs it on PostgreSQL,
``DSQ_TEST_DB=mariadb`` or ``mysql`` (with MYSQL_HOST/MYSQL_PORT/MYSQL_USER/MYSQL_PASSWORD) on MariaDB
or MySQL, anything else on SQLite. Worker processes started by the tests get ``DSQ_DB_NAME`` so they
open the test database.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent

SECRET_KEY = "tests-only"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ALLOWED_HOSTS = ["*"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "import_export",
    "django_simple_queue",
    "tests.apps.TestsConfig",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "tests.urls"
STATIC_URL = "/static/"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

DATABASES: dict[str, dict[str, Any]]
if os.environ.get("DSQ_TEST_DB", "sqlite") == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("DSQ_DB_NAME", os.environ.get("PGDATABASE", "dsq")),
            "USER": os.environ.get("PGUSER", "postgres"),
            "PASSWORD": os.environ.get("PGPASSWORD", ""),
            "HOST": os.environ.get("PGHOST", "127.0.0.1"),
            "PORT": os.environ.get("PGPORT", "54329"),
            # Worker children keep their connection between tasks when set (tests/chaos sets it).
            "CONN_MAX_AGE": float(os.environ.get("DSQ_CONN_MAX_AGE", 0)),
        }
    }
elif os.environ.get("DSQ_TEST_DB") in ("mariadb", "mysql"):
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.mysql",
            "NAME": os.environ.get("DSQ_DB_NAME", os.environ.get("MYSQL_DATABASE", "dsq")),
            "USER": os.environ.get("MYSQL_USER", "root"),
            "PASSWORD": os.environ.get("MYSQL_PASSWORD", ""),
            "HOST": os.environ.get("MYSQL_HOST", "127.0.0.1"),
            "PORT": os.environ.get("MYSQL_PORT", "33069"),
            "CONN_MAX_AGE": float(os.environ.get("DSQ_CONN_MAX_AGE", 0)),
            "OPTIONS": {"charset": "utf8mb4"},
            "TEST": {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"},
        }
    }
else:
    # A file, not :memory:, so that worker processes see the same database.
    _sqlite = os.environ.get("DSQ_DB_NAME") or str(
        Path(tempfile.gettempdir()) / f"dsq-test-{os.getpid()}.sqlite3"
    )
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": _sqlite,
            "TEST": {"NAME": _sqlite},
            "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE"},
        }
    }

DJANGO_SIMPLE_QUEUE_ALLOWED_TASKS = {
    "tests.tasks.add",
    "tests.tasks.echo",
    "tests.tasks.monthly",
    "tests.tasks.typed",
    "tests.tasks.unresolvable",
    "tests.tasks.send_report",
    "tests.tasks.count_up",
    "tests.tasks.fail",
    "tests.tasks.fail_unpicklably",
    "tests.tasks.heartbeat_after",
    "tests.tasks.sleep",
    "tests.tasks.noisy",
    "tests.tasks.async_add",
    "tests.tasks.exit_process",
    "tests.tasks.kill_self",
    "tests.tasks.record",
    "tests.tasks.with_progress",
    "tests.tasks.yield_objects",
    "tests.tasks.print_lots",
    "tests.tasks.flaky",
    "tests.tasks.uses_orm",
    "tests.tasks.connection_state",
    "tests.tasks.mark",
    "tests.tasks.span",
    "tests.tasks.poison",
    "tests.tasks.start_sleep",
    "tests.tasks.terminate_own_subprocess",
    "tests.tasks.on_sigterm",
    "tests.tasks.batch_done",
    "tests.tasks.NOT_CALLABLE",
    "tests.tasks.missing",
    "tests.nosuchmodule.task",
}
DJANGO_SIMPLE_QUEUE_POLL_INTERVAL = 0.1
# Crash-safety timings; tests/chaos shortens them for the worker processes it starts.
DJANGO_SIMPLE_QUEUE_HEARTBEAT_INTERVAL = float(os.environ.get("DSQ_HEARTBEAT_INTERVAL", 5.0))
DJANGO_SIMPLE_QUEUE_STALE_AFTER = float(os.environ.get("DSQ_STALE_AFTER", 30.0))
DJANGO_SIMPLE_QUEUE_SHUTDOWN_GRACE = float(os.environ.get("DSQ_SHUTDOWN_GRACE", 30.0))
DJANGO_SIMPLE_QUEUE_RETRY_BACKOFF = 0.0
# Schedules declared for the worker processes a test starts (tests/test_scheduler.py).
DJANGO_SIMPLE_QUEUE_SCHEDULES = json.loads(os.environ.get("DSQ_SCHEDULES", "{}"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_simple_queue": {"handlers": ["console"], "level": "INFO"}},
}
DJANGO_SIMPLE_QUEUE_MAX_OUTPUT_SIZE = int(os.environ.get("DSQ_MAX_OUTPUT_SIZE", 10 * 1024 * 1024))
SILENCED_SYSTEM_CHECKS = [
    "django_simple_queue.W002"
]  # ALLOWED_TASKS above lists broken paths on purpose
if DATABASES["default"]["ENGINE"] == "django.db.backends.mysql":
    # Partial indexes are created as full ones there, and the partial unique one not at all
    # (docs/deployment.md).
    SILENCED_SYSTEM_CHECKS += ["models.W036", "models.W037"]
# Django's Tasks API (django.tasks on Django 6, the django-tasks backport on 5.2): tests/test_backends.py.
TASKS = {
    "default": {
        "BACKEND": "django_simple_queue.backends.DatabaseBackend",
        "QUEUES": ["default", "other"],
        "OPTIONS": {},
    }
}
