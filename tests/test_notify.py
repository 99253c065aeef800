"""Enqueue on PostgreSQL: one-statement INSERT + NOTIFY, COPY for bulk, LISTEN wake-up; ORM fallbacks."""

from __future__ import annotations

import select
import time

import pytest
from django.db import connection, transaction

from django_simple_queue import listen
from django_simple_queue.models import Task
from django_simple_queue.utils import create_task, create_tasks
from tests.conftest import wait_for


def _notified(listener: listen.Listener, timeout: float) -> bool:
    ready, _, _ = select.select([listener.fileno()], [], [], timeout)
    if not ready:
        return False
    return listener.drain() > 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_create_task_notifies_listeners_when_the_transaction_commits():
    listener = listen.Listener.open()
    assert listener is not None
    try:
        with transaction.atomic():
            task_id = create_task("tests.tasks.add", {"a": 1})
            assert not _notified(listener, 0.3), "NOTIFY must wait for the commit"
        assert _notified(listener, 5)
    finally:
        listener.close()
    assert Task.objects.get(id=task_id).status == Task.QUEUED


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_create_tasks_notifies_once_committed():
    listener = listen.Listener.open()
    assert listener is not None
    try:
        create_tasks([{"task": "tests.tasks.add", "args": {"a": i}} for i in range(3)])
        assert _notified(listener, 5)
    finally:
        listener.close()


@pytest.mark.django_db
def test_listener_is_only_for_postgresql():
    listener = listen.Listener.open()
    try:
        assert (listener is not None) == (connection.vendor == "postgresql")
    finally:
        if listener is not None:
            listener.close()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_idle_worker_wakes_on_notify_long_before_its_poll(start_worker):
    proc = start_worker("--poll-interval", "60")
    warm = create_task("tests.tasks.add", {"a": 1})
    wait_for(lambda: Task.objects.get(id=warm).status == Task.COMPLETED, timeout=30)
    time.sleep(0.5)  # idle now, waiting on LISTEN with a 60 s poll
    started = time.monotonic()
    task_id = create_task("tests.tasks.add", {"a": 2})
    wait_for(
        lambda: Task.objects.get(id=task_id).status == Task.COMPLETED, timeout=10, interval=0.005
    )
    # Neither the poll (60 s) nor the heartbeat (every 2.5-5 s at the default 5 s) woke it.
    assert time.monotonic() - started < 2
    assert proc.poll() is None
