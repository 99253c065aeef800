"""System checks for django-simple-queue's settings (ids ``django_simple_queue.E…/W…``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.apps import apps
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from django_simple_queue import conf

NUMBERS = {
    "MAX_OUTPUT_SIZE": False,
    "MAX_ARGS_SIZE": False,
    "MAX_ATTEMPTS": False,
    "RETRY_BACKOFF": True,
    "HEARTBEAT_INTERVAL": False,
    "STALE_AFTER": False,
    "POLL_INTERVAL": False,
    "SHUTDOWN_GRACE": True,
}


def _name(key: str) -> str:
    return conf.PREFIX + key


@register(Tags.compatibility)
def check_settings(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    allowed = conf.get("ALLOWED_TASKS")
    if allowed is None:
        errors.append(
            Warning(
                f"{_name('ALLOWED_TASKS')} is not set: code may enqueue any importable callable, "
                "and the admin's enqueue form offers nothing.",
                hint="Set it to the set of dotted paths of your task functions.",
                id="django_simple_queue.W001",
            )
        )
    elif isinstance(allowed, str) or not all(isinstance(path, str) for path in allowed):
        errors.append(
            Error(
                f"{_name('ALLOWED_TASKS')} must be a set of dotted paths (strings), not {allowed!r}.",
                id="django_simple_queue.E001",
            )
        )
    else:
        from django_simple_queue.callables import import_callable
        from django_simple_queue.exceptions import InvalidTaskPath

        for path in sorted(allowed):
            try:
                import_callable(path)
            except InvalidTaskPath as exc:
                errors.append(
                    Warning(
                        f"{_name('ALLOWED_TASKS')} names a task that cannot be used: {exc}",
                        id="django_simple_queue.W002",
                    )
                )
    for key, zero_ok in NUMBERS.items():
        value = conf.get(key)
        bad = isinstance(value, bool) or not isinstance(value, int | float) or value < 0
        if not bad and value == 0 and not zero_ok:
            bad = True
        if bad:
            errors.append(
                Error(
                    f"{_name(key)} must be a {'non-negative' if zero_ok else 'positive'} number, not {value!r}.",
                    id="django_simple_queue.E002",
                )
            )
    timeout = conf.get("TASK_TIMEOUT")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float)):
        errors.append(
            Error(f"{_name('TASK_TIMEOUT')} must be a number of seconds or None, not {timeout!r}.",
                  id="django_simple_queue.E003")
        )
    beat, stale = conf.get("HEARTBEAT_INTERVAL"), conf.get("STALE_AFTER")
    if isinstance(beat, int | float) and isinstance(stale, int | float) and stale < 3 * beat:
        errors.append(
            Error(
                f"{_name('STALE_AFTER')} ({stale}) must be at least three heartbeats "
                f"({_name('HEARTBEAT_INTERVAL')} = {beat}), or live workers lose their tasks.",
                id="django_simple_queue.E004",
            )
        )
    view = conf.get("STATUS_VIEW")
    if not callable(view) and not isinstance(view, str):
        errors.append(
            Error(f"{_name('STATUS_VIEW')} must be 'public', 'authenticated', 'staff' or a dotted path.",
                  id="django_simple_queue.E005")
        )
    keys = conf.get("REDACT_KEYS")
    if isinstance(keys, str) or not all(isinstance(key, str) for key in keys):
        errors.append(
            Error(f"{_name('REDACT_KEYS')} must be a set of argument names, not {keys!r}.",
                  id="django_simple_queue.E006")
        )
    if apps.is_installed("django.contrib.admin") and not apps.is_installed("import_export"):
        errors.append(
            Warning(
                "The task admin works without CSV export and import because 'import_export' is not installed.",
                hint="pip install django-import-export and add 'import_export' to INSTALLED_APPS.",
                id="django_simple_queue.W003",
            )
        )
    return errors
