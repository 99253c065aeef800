"""System checks for django-simple-queue's settings (ids ``django_simple_queue.E…/W…``).

| id | what |
|---|---|
| E001 | ``ALLOWED_TASKS`` is not None or a collection of dotted paths |
| E002 | a number setting has the wrong type or range |
| E003 | ``TASK_TIMEOUT`` is not a number of seconds or None |
| E004 | ``STALE_AFTER`` is not larger than three heartbeats |
| E005 | ``STATUS_VIEW`` is not a known rule or an importable callable |
| E006 | ``REDACT_KEYS`` is not a collection of argument names |
| E008 | ``DATABASE`` is not an alias of ``DATABASES`` |
| E009 | a yes/no setting (``STATUS_FULL_ERRORS``, ``ESCAPE_FORMULAE``) is not True or False |
| E010 | a schedule in ``SCHEDULES`` cannot run (its timing, task or arguments) |
| E011 | ``METRICS_TOKEN`` is not None or a string of at least ``MIN_TOKEN_LENGTH`` characters |
| W001 | ``ALLOWED_TASKS`` is not set |
| W002 | an ``ALLOWED_TASKS`` entry does not import to a callable |
| W003 | the admin is installed without ``import_export`` |
| W005 | SQLite without ``transaction_mode: IMMEDIATE`` |
| W006 | a worker on SQLite with ``--concurrency`` above 1, or beside another live worker (said by ``task_worker``) |
| W007 | a ``DJANGO_SIMPLE_QUEUE_`` setting that does not exist (a typo?) |
| W008 | MariaDB before 10.6 or MySQL before 8.0.1, without ``SKIP LOCKED`` (said by ``migrate`` and ``check --database``) |
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.db import DatabaseError, connections
from django.db.models import Q
from django.utils.module_loading import import_string

from django_simple_queue import conf, db

# Setting -> (integers only?, zero allowed?)
NUMBERS = {
    "MAX_OUTPUT_SIZE": (True, False),
    "MAX_ARGS_SIZE": (True, False),
    "MAX_ATTEMPTS": (True, False),
    "RETRY_BACKOFF": (False, True),
    "HEARTBEAT_INTERVAL": (False, False),
    "STALE_AFTER": (False, False),
    "POLL_INTERVAL": (False, False),
    "SHUTDOWN_GRACE": (False, True),
}
FLAGS = ("STATUS_FULL_ERRORS", "ESCAPE_FORMULAE")
STATUS_RULES = ("public", "authenticated", "staff")
# A metrics token shorter than this is guessable.
MIN_TOKEN_LENGTH = 16
# Heartbeats a worker may miss (a slow query, a short network stall) before its tasks are taken.
MIN_HEARTBEATS = 3


def _name(key: str) -> str:
    return conf.PREFIX + key


def _is_number(value: Any, integer: bool) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) if integer else isinstance(value, int | float)


def _strings(value: Any) -> bool:
    """A collection of strings (a set, list, tuple …), but not a string or a mapping."""
    if isinstance(value, str | bytes | dict) or not isinstance(value, Iterable):
        return False
    return all(isinstance(item, str) for item in value)


def _check_allowed_tasks() -> list[CheckMessage]:
    allowed = conf.get("ALLOWED_TASKS")
    if allowed is None:
        return [
            Warning(
                f"{_name('ALLOWED_TASKS')} is not set: code may enqueue any importable callable, "
                "and the admin's enqueue form offers nothing.",
                hint="Set it to the set of dotted paths of your task functions.",
                id="django_simple_queue.W001",
            )
        ]
    if not _strings(allowed):
        return [
            Error(
                f"{_name('ALLOWED_TASKS')} must be a set of dotted paths (strings) or None, "
                f"not {allowed!r}.",
                id="django_simple_queue.E001",
            )
        ]
    from django_simple_queue.callables import import_callable
    from django_simple_queue.exceptions import InvalidTaskPath

    errors: list[CheckMessage] = []
    for path in sorted(allowed):
        try:
            import_callable(path)
        except InvalidTaskPath as exc:
            if _is_tasks_api_task(path):
                problem = (
                    f"'{path}' is a Django @task: it runs through a Tasks backend "
                    "(call its .enqueue()), and needs no entry here."
                )
                hint = "Remove it from the set."
            else:
                problem, hint = str(exc), "Fix the path, or remove it from the set."
            errors.append(
                Warning(
                    f"{_name('ALLOWED_TASKS')} names a task that cannot be used: {problem}",
                    hint=hint,
                    id="django_simple_queue.W002",
                )
            )
    return errors


def _is_tasks_api_task(path: str) -> bool:
    try:
        value = import_string(path)
    except ImportError:
        return False
    # Its module imported the Tasks API if it made a @task: nothing more to import for this.
    api = sys.modules.get("django.tasks.base") or sys.modules.get("django_tasks.base")
    return api is not None and isinstance(value, api.Task)


def _check_numbers() -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    for key, (integer, zero_ok) in NUMBERS.items():
        value = conf.get(key)
        bad = not _is_number(value, integer) or value < 0 or (value == 0 and not zero_ok)
        if bad:
            kind = "an integer" if integer else "a number"
            sign = "non-negative" if zero_ok else "positive"
            errors.append(
                Error(
                    f"{_name(key)} must be {kind}, {sign}, not {value!r}.",
                    id="django_simple_queue.E002",
                )
            )
    timeout = conf.get("TASK_TIMEOUT")
    if timeout is not None and not _is_number(timeout, integer=False):
        errors.append(
            Error(
                f"{_name('TASK_TIMEOUT')} must be a number of seconds or None, not {timeout!r}.",
                id="django_simple_queue.E003",
            )
        )
    beat, stale = conf.get("HEARTBEAT_INTERVAL"), conf.get("STALE_AFTER")
    if (
        _is_number(beat, integer=False)
        and _is_number(stale, integer=False)
        and beat > 0
        and stale <= MIN_HEARTBEATS * beat
    ):
        errors.append(
            Error(
                f"{_name('STALE_AFTER')} ({stale}) must be more than {MIN_HEARTBEATS} heartbeats "
                f"({_name('HEARTBEAT_INTERVAL')} = {beat}), or the tasks of live workers are "
                "taken from them and run twice.",
                hint=f"Set {_name('STALE_AFTER')} to at least {MIN_HEARTBEATS * 2} × "
                f"{_name('HEARTBEAT_INTERVAL')} (the defaults are 30 and 5).",
                id="django_simple_queue.E004",
            )
        )
    return errors


def _check_status_view() -> list[CheckMessage]:
    view = conf.get("STATUS_VIEW")
    if callable(view) or view in STATUS_RULES:
        return []
    if isinstance(view, str) and "." in view:
        try:
            if callable(import_string(view)):
                return []
        except ImportError:
            pass
    return [
        Error(
            f"{_name('STATUS_VIEW')} must be 'public', 'authenticated', 'staff', or the dotted path "
            f"of a function (request, task) -> bool, not {view!r}.",
            id="django_simple_queue.E005",
        )
    ]


def _check_redact_keys() -> list[CheckMessage]:
    keys = conf.get("REDACT_KEYS")
    if _strings(keys):
        return []
    return [
        Error(
            f"{_name('REDACT_KEYS')} must be a set of argument names, not {keys!r}.",
            id="django_simple_queue.E006",
        )
    ]


def _check_flags() -> list[CheckMessage]:
    return [
        Error(
            f"{_name(key)} must be True or False, not {conf.get(key)!r}.",
            id="django_simple_queue.E009",
        )
        for key in FLAGS
        if not isinstance(conf.get(key), bool)
    ]


def _check_schedules() -> list[CheckMessage]:
    from django_simple_queue import scheduler, schedules

    try:
        problems = scheduler.declaration_errors()
    except schedules.InvalidSchedule as exc:
        problems = [str(exc)]
    return [
        Error(
            problem,
            hint="Fix it in DJANGO_SIMPLE_QUEUE_SCHEDULES (docs/schedules.md).",
            id="django_simple_queue.E010",
        )
        for problem in problems
    ]


def _check_metrics_token() -> list[CheckMessage]:
    token = conf.get("METRICS_TOKEN")
    if token is None or (isinstance(token, str) and len(token.strip()) >= MIN_TOKEN_LENGTH):
        return []
    # The value itself stays out of the message: it may be a real secret, only too short.
    given = f"{len(token)} characters" if isinstance(token, str) else type(token).__name__
    return [
        Error(
            f"{_name('METRICS_TOKEN')} must be None or a secret string of at least "
            f"{MIN_TOKEN_LENGTH} characters, not {given}.",
            hint="Generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'",
            id="django_simple_queue.E011",
        )
    ]


def _check_database() -> list[CheckMessage]:
    alias = conf.get("DATABASE")
    if alias in settings.DATABASES:
        return []
    return [
        Error(
            f"{_name('DATABASE')} is {alias!r}, which is not a key of DATABASES.",
            hint="Name one of " + ", ".join(repr(name) for name in settings.DATABASES) + ".",
            id="django_simple_queue.E008",
        )
    ]


def _check_unknown_settings() -> list[CheckMessage]:
    unknown = sorted(
        name
        for name in dir(settings)
        if name.startswith(conf.PREFIX) and name[len(conf.PREFIX) :] not in conf.DEFAULTS
    )
    return [
        Warning(
            f"{name} is not a setting of django-simple-queue and has no effect.",
            hint="The settings are " + ", ".join(_name(key) for key in conf.DEFAULTS) + ".",
            id="django_simple_queue.W007",
        )
        for name in unknown
    ]


def _check_sqlite() -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    for alias in settings.DATABASES:
        connection = connections[alias]
        if connection.vendor != "sqlite":
            continue
        mode = connection.settings_dict.get("OPTIONS", {}).get("transaction_mode")
        if str(mode).upper() != "IMMEDIATE":
            errors.append(
                Warning(
                    f"Database '{alias}' is SQLite without transaction_mode IMMEDIATE: the web "
                    "process and a worker can fail each other with 'database is locked'.",
                    hint=f"Set DATABASES['{alias}']['OPTIONS'] = "
                    "{'transaction_mode': 'IMMEDIATE'}, or use PostgreSQL.",
                    id="django_simple_queue.W005",
                )
            )
    return errors


@register(Tags.compatibility)
def check_settings(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """Every check of this package's settings."""
    errors: list[CheckMessage] = []
    errors += _check_allowed_tasks()
    errors += _check_numbers()
    errors += _check_status_view()
    errors += _check_redact_keys()
    errors += _check_flags()
    errors += _check_database()
    errors += _check_schedules()
    errors += _check_metrics_token()
    errors += _check_unknown_settings()
    errors += _check_sqlite()
    if apps.is_installed("django.contrib.admin") and not apps.is_installed("import_export"):
        errors.append(
            Warning(
                "The task admin works without CSV export and import because 'import_export' "
                "is not installed.",
                hint="pip install django-import-export and add 'import_export' to INSTALLED_APPS.",
                id="django_simple_queue.W003",
            )
        )
    return errors


@register(Tags.database)
def check_databases(
    app_configs: Iterable[Any] | None = None, databases: Iterable[str] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """What needs a connection to tell: MariaDB and MySQL versions without SKIP LOCKED (W008)."""
    warnings: list[CheckMessage] = []
    for alias in databases or ():
        connection = connections[alias]
        if (
            connection.vendor == "mysql"
            and not connection.features.has_select_for_update_skip_locked
        ):
            warnings.append(
                Warning(
                    f"Database '{alias}' ({connection.display_name}) has no SELECT … FOR UPDATE "
                    "SKIP LOCKED: workers would go for the same tasks and leave one another idle.",
                    hint="Use MariaDB 10.6 or newer, or MySQL 8.",
                    id="django_simple_queue.W008",
                )
            )
    return warnings


def worker_warnings(concurrency: int, using: str | None = None) -> list[CheckMessage]:
    """What ``task_worker`` says at start about running on SQLite (W006)."""
    using = using or db.alias()
    if connections[using].vendor != "sqlite":
        return []
    hint = (
        "Use SQLite for development with one worker and --concurrency 1; use PostgreSQL for more."
    )
    warnings: list[CheckMessage] = []
    if concurrency > 1:
        warnings.append(
            Warning(
                f"SQLite with --concurrency {concurrency}: SQLite lets one process write at a "
                "time, so tasks wait for each other's writes and may fail with "
                "'database is locked'.",
                hint=hint,
                id="django_simple_queue.W006",
            )
        )
    from django_simple_queue.models import Task, Worker

    # Live workers' rows, idle ones too; and claims of processes without a row (execute_task).
    now = db.now(using)
    cutoff = now - timedelta(seconds=float(conf.get("STALE_AFTER")))
    try:
        rows = Worker.objects.using(using).live(now).values_list("name", flat=True)[:10]
        claims = (
            Task.objects.using(using)
            .running()
            .exclude(Q(worker_id="") | Q(heartbeat_at__isnull=True))
            .filter(heartbeat_at__gte=cutoff)
            .values_list("worker_id", flat=True)[:10]
        )
        others = sorted({*rows, *claims})
    except DatabaseError:
        others = []  # not migrated yet: the worker itself will say what is wrong
    if others:
        warnings.append(
            Warning(
                f"Another worker runs on this SQLite database ({', '.join(others)}): SQLite lets "
                "one process write at a time, so workers wait for each other.",
                hint=hint,
                id="django_simple_queue.W006",
            )
        )
    return warnings
