from __future__ import annotations

import pytest

from django_simple_queue.checks import check_settings


def ids(messages):
    return {message.id for message in messages}


def test_default_test_settings_only_warn_about_broken_allowed_paths():
    assert ids(check_settings()) == {"django_simple_queue.W002"}


def test_unset_allowed_tasks_warns(settings):
    settings.DJANGO_SIMPLE_QUEUE_ALLOWED_TASKS = None
    assert "django_simple_queue.W001" in ids(check_settings())


def test_allowed_tasks_as_a_string_is_an_error(settings):
    settings.DJANGO_SIMPLE_QUEUE_ALLOWED_TASKS = "tests.tasks.add"
    assert "django_simple_queue.E001" in ids(check_settings())


def test_malformed_numbers_are_errors(settings):
    settings.DJANGO_SIMPLE_QUEUE_MAX_ATTEMPTS = 0
    settings.DJANGO_SIMPLE_QUEUE_POLL_INTERVAL = "1"
    settings.DJANGO_SIMPLE_QUEUE_TASK_TIMEOUT = "soon"
    messages = [
        m
        for m in check_settings()
        if m.id in {"django_simple_queue.E002", "django_simple_queue.E003"}
    ]
    text = " ".join(m.msg for m in messages)
    assert "MAX_ATTEMPTS" in text and "POLL_INTERVAL" in text and "TASK_TIMEOUT" in text


def test_stale_after_must_cover_several_heartbeats(settings):
    settings.DJANGO_SIMPLE_QUEUE_HEARTBEAT_INTERVAL = 10
    settings.DJANGO_SIMPLE_QUEUE_STALE_AFTER = 15
    assert "django_simple_queue.E004" in ids(check_settings())


def test_yes_no_settings_must_be_booleans(settings):
    settings.DJANGO_SIMPLE_QUEUE_STATUS_FULL_ERRORS = "yes"
    settings.DJANGO_SIMPLE_QUEUE_ESCAPE_FORMULAE = 0
    messages = [m for m in check_settings() if m.id == "django_simple_queue.E009"]
    text = " ".join(m.msg for m in messages)
    assert len(messages) == 2
    assert "STATUS_FULL_ERRORS" in text and "ESCAPE_FORMULAE" in text
    settings.DJANGO_SIMPLE_QUEUE_STATUS_FULL_ERRORS = True
    settings.DJANGO_SIMPLE_QUEUE_ESCAPE_FORMULAE = False
    assert "django_simple_queue.E009" not in ids(check_settings())


def test_redact_keys_must_be_names(settings):
    settings.DJANGO_SIMPLE_QUEUE_REDACT_KEYS = "password"
    assert "django_simple_queue.E006" in ids(check_settings())


@pytest.mark.parametrize("token", ["short", 12345, "", " " * 20])
def test_metrics_token_must_be_a_long_string(settings, token):
    settings.DJANGO_SIMPLE_QUEUE_METRICS_TOKEN = token
    messages = [m for m in check_settings() if m.id == "django_simple_queue.E011"]
    assert len(messages) == 1
    if isinstance(token, str) and token.strip():
        assert token not in messages[0].msg  # a real secret, only too short, stays out of logs


@pytest.mark.parametrize("token", [None, "x" * 16])
def test_metrics_token_none_or_long_is_fine(settings, token):
    settings.DJANGO_SIMPLE_QUEUE_METRICS_TOKEN = token
    assert "django_simple_queue.E011" not in ids(check_settings())
