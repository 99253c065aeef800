from __future__ import annotations

import re
import subprocess
import sys
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import connection
from django.utils import timezone

from django_simple_queue import checks
from django_simple_queue.checks import check_settings, worker_warnings
from tests.conftest import ROOT, worker_env
from tests.factories import TaskFactory


def messages(prefix: str = "django_simple_queue."):
    return {m.id: m for m in check_settings() if m.id.startswith(prefix)}


@pytest.mark.parametrize("value", [5, 1.5, "tests.tasks.add", {"tests.tasks.add": 1}, [1, 2]])
def test_allowed_tasks_of_a_wrong_type_is_an_error_not_a_crash(settings, value):
    settings.DJANGO_SIMPLE_QUEUE_ALLOWED_TASKS = value
    assert "django_simple_queue.E001" in messages()


def test_allowed_tasks_as_a_list_or_tuple_is_fine(settings):
    settings.DJANGO_SIMPLE_QUEUE_ALLOWED_TASKS = ["tests.tasks.add", "tests.tasks.echo"]
    assert messages() == {}
    settings.DJANGO_SIMPLE_QUEUE_ALLOWED_TASKS = ("tests.tasks.add",)
    assert messages() == {}


def test_allowed_tasks_that_do_not_import_are_named(settings):
    settings.DJANGO_SIMPLE_QUEUE_ALLOWED_TASKS = {
        "tests.tasks.add",
        "tests.nosuchmodule.task",
        "tests.tasks.NOT_CALLABLE",
        "nodots",
    }
    found = [m for m in check_settings() if m.id == "django_simple_queue.W002"]
    text = " ".join(m.msg for m in found)
    assert len(found) == 3
    assert "tests.nosuchmodule.task" in text
    assert "tests.tasks.NOT_CALLABLE" in text and "not callable" in text
    assert "nodots" in text


def test_a_tasks_api_task_in_allowed_tasks_is_named_as_such(settings):
    settings.DJANGO_SIMPLE_QUEUE_ALLOWED_TASKS = {"tests.tasks.add", "tests.backend_tasks.add"}
    (found,) = [m for m in check_settings() if m.id == "django_simple_queue.W002"]
    assert "'tests.backend_tasks.add' is a Django @task" in found.msg
    assert "not callable" not in found.msg
    assert found.hint == "Remove it from the set."


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("MAX_ATTEMPTS", 1.5),
        ("MAX_ATTEMPTS", True),
        ("MAX_OUTPUT_SIZE", "10MB"),
        ("MAX_ARGS_SIZE", -1),
        ("HEARTBEAT_INTERVAL", 0),
        ("POLL_INTERVAL", None),
        ("RETRY_BACKOFF", -0.5),
        ("SHUTDOWN_GRACE", "30"),
    ],
)
def test_number_settings_of_a_wrong_type_or_range(settings, key, value):
    setattr(settings, "DJANGO_SIMPLE_QUEUE_" + key, value)
    found = [m for m in check_settings() if m.id == "django_simple_queue.E002"]
    assert len(found) == 1
    assert key in found[0].msg and repr(value) in found[0].msg


def test_zero_is_fine_where_it_means_something(settings):
    settings.DJANGO_SIMPLE_QUEUE_RETRY_BACKOFF = 0
    settings.DJANGO_SIMPLE_QUEUE_SHUTDOWN_GRACE = 0
    settings.DJANGO_SIMPLE_QUEUE_TASK_TIMEOUT = 0
    assert set(messages()) == {"django_simple_queue.W002"}  # tests.settings lists broken paths


@pytest.mark.parametrize("value", [None, 0, 60, 1.5])
def test_task_timeout_accepts_none_and_numbers(settings, value):
    settings.DJANGO_SIMPLE_QUEUE_TASK_TIMEOUT = value
    assert "django_simple_queue.E003" not in messages()


@pytest.mark.parametrize(
    ("beat", "stale", "error"),
    [(5, 30, False), (5, 16, False), (5, 15, True), (10, 15, True), (1, 3.5, False)],
)
def test_stale_after_must_be_larger_than_three_heartbeats(settings, beat, stale, error):
    settings.DJANGO_SIMPLE_QUEUE_HEARTBEAT_INTERVAL = beat
    settings.DJANGO_SIMPLE_QUEUE_STALE_AFTER = stale
    assert ("django_simple_queue.E004" in messages()) is error


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("public", False),
        ("staff", False),
        ("authenticated", False),
        ("tests.tasks.add", False),
        ("everyone", True),
        ("tests.tasks.missing", True),
        ("tests.tasks.NOT_CALLABLE", True),
        (42, True),
    ],
)
def test_status_view(settings, value, error):
    settings.DJANGO_SIMPLE_QUEUE_STATUS_VIEW = value
    assert ("django_simple_queue.E005" in messages()) is error


@pytest.mark.parametrize("value", [None, "password", 3, {"password": 1}, ["password", 1]])
def test_redact_keys_of_a_wrong_type(settings, value):
    settings.DJANGO_SIMPLE_QUEUE_REDACT_KEYS = value
    assert "django_simple_queue.E006" in messages()


def test_an_unknown_setting_is_named(settings):
    settings.DJANGO_SIMPLE_QUEUE_TIMEOUT = 30
    found = messages()["django_simple_queue.W007"]
    assert "DJANGO_SIMPLE_QUEUE_TIMEOUT" in found.msg
    assert "DJANGO_SIMPLE_QUEUE_TASK_TIMEOUT" in found.hint


@pytest.mark.skipif(connection.vendor != "sqlite", reason="an SQLite configuration check")
def test_sqlite_without_immediate_transactions_warns(settings):
    assert "django_simple_queue.W005" not in messages()
    options = connection.settings_dict["OPTIONS"]
    saved = dict(options)
    try:
        options.pop("transaction_mode")
        found = messages()["django_simple_queue.W005"]
        assert "IMMEDIATE" in found.hint
    finally:
        options.clear()
        options.update(saved)


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite only")
@pytest.mark.django_db
def test_worker_warnings_on_sqlite_with_concurrency():
    assert worker_warnings(1) == []
    (warning,) = worker_warnings(2)
    assert warning.id == "django_simple_queue.W006"
    assert "--concurrency 2" in warning.msg


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite only")
def test_worker_warnings_on_sqlite_beside_another_live_worker(settings):
    settings.DJANGO_SIMPLE_QUEUE_STALE_AFTER = 30
    TaskFactory(running=True, worker_id="old:1", heartbeat_at=timezone.now() - timedelta(minutes=5))
    assert worker_warnings(1) == []
    TaskFactory(running=True, worker_id="other:7")
    (warning,) = worker_warnings(1)
    assert warning.id == "django_simple_queue.W006"
    assert "other:7" in warning.msg and "old:1" not in warning.msg


@pytest.mark.django_db
@pytest.mark.server_db
def test_no_worker_warning_on_a_database_server():
    assert worker_warnings(8) == []


@pytest.mark.django_db  # Django 6's check command also runs the database checks
def test_errors_stop_manage_py_check(settings):
    settings.DJANGO_SIMPLE_QUEUE_MAX_ATTEMPTS = "3"
    with pytest.raises(SystemCheckError, match=r"django_simple_queue\.E002"):
        call_command("check")


@pytest.mark.django_db
def test_mariadb_or_mysql_without_skip_locked_warns(monkeypatch):
    assert checks.check_databases(databases=["default"]) == []
    monkeypatch.setattr(connection, "vendor", "mysql")
    monkeypatch.setattr(connection.features, "has_select_for_update_skip_locked", False)
    (warning,) = checks.check_databases(databases=["default"])
    assert warning.id == "django_simple_queue.W008"
    assert "Database 'default'" in warning.msg and "SKIP LOCKED" in warning.msg
    assert checks.check_databases() == [], "only with --database, as Django's own"


def test_every_check_id_in_the_code_is_in_the_table_once():
    sources = [
        *ROOT.joinpath("django_simple_queue").rglob("*.py"),
        *ROOT.joinpath("admin_ext").rglob("*.py"),
    ]
    found = set()
    for source in sources:
        found |= set(re.findall(r'id="django_simple_queue\.([EW]\d{3})"', source.read_text()))
    assert {"E001", "E004", "W002", "W006"} <= found
    table = checks.__doc__ or ""
    for check_id in found:
        assert table.count(f"| {check_id} |") == 1, check_id


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite only")
def test_task_worker_says_w005_at_start_on_sqlite():
    result = subprocess.run(
        [sys.executable, "-m", "django", "task_worker", "--burst", "--concurrency", "2"],
        env=worker_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "django_simple_queue.W006" in result.stderr
    assert "PostgreSQL" in result.stderr
    quiet = subprocess.run(
        [sys.executable, "-m", "django", "task_worker", "--burst"],
        env=worker_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "W006" not in quiet.stderr


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite only")
def test_worker_warnings_on_sqlite_beside_an_idle_worker(settings):
    from tests.factories import WorkerFactory

    settings.DJANGO_SIMPLE_QUEUE_STALE_AFTER = 30
    WorkerFactory(name="gone:1", lost=True)
    assert worker_warnings(1) == []
    WorkerFactory(name="idle:2")
    (warning,) = worker_warnings(1)
    assert warning.id == "django_simple_queue.W006"
    assert "idle:2" in warning.msg and "gone:1" not in warning.msg
