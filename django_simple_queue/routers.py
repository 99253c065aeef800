"""``QueueRouter``: the queue's tables on a database of their own.

.. code-block:: python

    DATABASE_ROUTERS = ["django_simple_queue.routers.QueueRouter"]
    DJANGO_SIMPLE_QUEUE_DATABASE = "queue"

Every statement of the queue (enqueue, claims, finishes, heartbeats, NOTIFY and LISTEN, the admin,
the status page) goes to the database the routers choose for its models; this router chooses
``DJANGO_SIMPLE_QUEUE_DATABASE``. Enqueueing is then no longer atomic with the project's own
writes on its other database (docs/deployment.md).
"""

from __future__ import annotations

from typing import Any

from django.db.models import Model

from django_simple_queue import conf

APP_LABEL = "django_simple_queue"


class QueueRouter:
    def db_for_read(self, model: type[Model], **hints: Any) -> str | None:
        return conf.get("DATABASE") if model._meta.app_label == APP_LABEL else None

    db_for_write = db_for_read

    def allow_relation(self, obj1: Model, obj2: Model, **hints: Any) -> bool | None:
        ours = {obj._meta.app_label == APP_LABEL for obj in (obj1, obj2)}
        return True if ours == {True} else None

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool | None:
        """The queue's tables on its database only; nothing else there (unless it is default)."""
        queue_db = conf.get("DATABASE")
        if app_label == APP_LABEL:
            return db == queue_db
        if db == queue_db and queue_db != "default":
            return False
        return None
