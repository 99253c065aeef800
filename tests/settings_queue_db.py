"""The test settings with the queue on a PostgreSQL database of its own (``queue``) and the
project's own tables elsewhere: tests/test_routers.py runs real processes with them."""

from __future__ import annotations

import os

from tests.settings import *  # noqa: F403

_POSTGRES = {
    "ENGINE": "django.db.backends.postgresql",
    "USER": os.environ.get("PGUSER", "postgres"),
    "PASSWORD": os.environ.get("PGPASSWORD", ""),
    "HOST": os.environ.get("PGHOST", "127.0.0.1"),
    "PORT": os.environ.get("PGPORT", "54329"),
}
DATABASES = {
    # The project's own data: a SQLite file, or (DSQ_WEB_DB=postgres:NAME) a PostgreSQL database.
    "default": (
        {**_POSTGRES, "NAME": os.environ["DSQ_WEB_DB"].removeprefix("postgres:")}
        if os.environ["DSQ_WEB_DB"].startswith("postgres:")
        else {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ["DSQ_WEB_DB"],
            "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE"},
        }
    ),
    "queue": {**_POSTGRES, "NAME": os.environ["DSQ_QUEUE_DB"]},
}
DATABASE_ROUTERS = ["django_simple_queue.routers.QueueRouter"]
DJANGO_SIMPLE_QUEUE_DATABASE = "queue"
