"""Settings of django-simple-queue, read here and nowhere else.

Every setting is ``DJANGO_SIMPLE_QUEUE_<NAME>`` in the project's settings module; ``DEFAULTS``
holds each default. ``checks.py`` validates the values at start-up.
"""

from __future__ import annotations

import functools
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

PREFIX = "DJANGO_SIMPLE_QUEUE_"

DEFAULTS: dict[str, Any] = {
    # None allows any importable callable from code; the admin then offers nothing.
    "ALLOWED_TASKS": None,
    # Seconds a task may run before its child is stopped; None or 0 disables the limit.
    "TASK_TIMEOUT": 3600,
    "MAX_OUTPUT_SIZE": 10 * 1024 * 1024,
    "MAX_ARGS_SIZE": 1024 * 1024,
    "MAX_ATTEMPTS": 1,
    # Base delay in seconds before retry n: RETRY_BACKOFF * 2 ** (n - 1), with jitter.
    "RETRY_BACKOFF": 5.0,
    "HEARTBEAT_INTERVAL": 5.0,
    "STALE_AFTER": 30.0,
    "POLL_INTERVAL": 1.0,
    "SHUTDOWN_GRACE": 30.0,
    # "public" (anyone with the id, as the original), "staff", "authenticated", or a dotted
    # path to a callable ``(request, task) -> bool``.
    "STATUS_VIEW": "public",
    # True: a failed task's whole error (the traceback) on the status page for every visitor, as
    # 0.1.x showed it; False: its last line, and the whole error for staff only.
    "STATUS_FULL_ERRORS": False,
    # A leading ' before cells of CSV and spreadsheet exports that would start a formula.
    "ESCAPE_FORMULAE": True,
    "REDACT_KEYS": frozenset({"password", "secret", "token", "api_key", "apikey", "authorization"}),
    # The database alias that routers.QueueRouter sends the queue's tables to.
    "DATABASE": "default",
    # Recurring tasks declared in code: {"name": {"task": …, "cron": … or "interval": …, …}}.
    "SCHEDULES": {},
    # The bearer token that may read /django_simple_queue/metrics; None: staff only.
    "METRICS_TOKEN": None,
}

REDACTED = "•••"


@functools.cache
def get(name: str) -> Any:
    """Return the value of setting ``name`` (without prefix), or its default.

    Read once: a setting left at its default costs ``settings`` an exception at every look-up,
    and some are read for every task. Settings changed in tests (``override_settings``) are read
    again.
    """
    return getattr(settings, PREFIX + name, DEFAULTS[name])


@receiver(setting_changed)
def _setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith(PREFIX):
        get.cache_clear()


def get_allowed_tasks() -> set[str] | None:
    """Dotted paths that may be enqueued and run; None when every path is allowed."""
    allowed = get("ALLOWED_TASKS")
    if allowed is None:
        return None
    return set(allowed)


def is_task_allowed(task_path: str) -> bool:
    allowed = get_allowed_tasks()
    return allowed is None or task_path in allowed


def get_task_timeout() -> int | None:
    """The default timeout in seconds, or None when tasks may run forever."""
    timeout = get("TASK_TIMEOUT")
    if not timeout or timeout <= 0:
        return None
    return int(timeout)


def get_max_output_size() -> int:
    return int(get("MAX_OUTPUT_SIZE"))


def get_max_args_size() -> int:
    return int(get("MAX_ARGS_SIZE"))


def get_redact_keys() -> frozenset[str]:
    return frozenset(key.lower() for key in get("REDACT_KEYS"))
