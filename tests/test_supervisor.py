"""The supervisor's loop (``worker.supervisor.Worker``) in this process, without a database where
it can; tests/test_worker.py runs it as a real ``task_worker`` process."""

from __future__ import annotations

import signal
import time

import pytest

from django_simple_queue.worker.supervisor import Worker
from tests.child_pipes import make_child
from tests.factories import TaskFactory


def test_the_signal_handler_only_sets_flags_and_the_loop_says_the_line():
    lines: list[str] = []
    worker = Worker(say=lines.append)
    worker._on_signal(signal.SIGTERM, None)
    assert lines == [], "no write to the console from a signal handler"
    assert worker.stop.since is not None
    worker._announce_stop()
    worker._announce_stop()
    assert lines == [
        f"SIGTERM: no new tasks; waiting up to {worker.stop.grace:g}s for running ones"
    ]
    worker._on_signal(signal.SIGINT, None)
    assert worker.stop.at_once and len(lines) == 1


def test_a_stopping_worker_claims_nothing():
    worker = Worker(concurrency=4)
    assert worker.dispatcher.claim_count() == 4
    worker._on_signal(signal.SIGTERM, None)
    assert worker.dispatcher.claim_count() == 0


def test_it_exits_once_stopped_with_nothing_running_or_unwritten():
    worker = Worker()
    assert not worker._should_exit()
    worker.stop.since = time.monotonic()
    assert worker._should_exit()


def test_max_tasks_ends_the_loop_once_that_many_are_written():
    worker = Worker(max_tasks=2)
    worker.recorder.finished = 1
    assert not worker._should_exit()
    worker.recorder.finished = 2
    assert worker._should_exit()


@pytest.mark.django_db
def test_unwritten_outcomes_hold_the_exit_until_the_database_is_back_or_the_grace_is_over():
    from tests.factories import TaskFactory

    worker = Worker()
    worker.recorder.release(TaskFactory.build())
    worker.stop.since = time.monotonic()
    assert not worker._should_exit(), "the database is there: write first"
    worker.outage.lost(RuntimeError("gone"), time.monotonic())
    assert not worker._should_exit(), "waits for the database, within the grace"
    worker.stop.since -= worker.stop.grace
    assert worker._should_exit()


def test_the_worker_waits_only_on_pipes_of_children_with_tasks():
    # The pipe of a child that has exited reads as ready until its exit is reported: waiting on it
    # made the supervisor spin (45 turns of its loop per task with a fresh process per task).
    worker = Worker()
    (idle, _idle_end, _), (busy, _busy_end, _) = make_child(), make_child()
    assert busy.start([TaskFactory.build()], [None])
    worker.children.all = [idle, busy]

    waitables = worker._waitables()
    assert idle.conn not in waitables
    assert idle.process.sentinel in waitables, "its exit still wakes the worker"
    assert busy.conn in waitables
