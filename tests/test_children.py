"""The supervisor's view of a child (``children.Child``) and its process (``forkserver.ChildProcess``)."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import time
from pathlib import Path

import pytest

from django_simple_queue.worker import children
from django_simple_queue.worker.children import StopReason
from tests.child_pipes import make_child
from tests.conftest import process_running, wait_for
from tests.factories import TaskFactory

needs_proc = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="reads process states in /proc"
)


def test_a_child_that_died_unnoticed_is_sent_nothing_and_holds_nothing():
    child, theirs, _ = make_child()
    theirs.close()  # the child is gone
    task = TaskFactory.build()
    assert child.free_slots() == 1, "its death is not known yet"

    assert child.start([task], [None]) is False
    assert not child.busy
    assert child.runs == 0
    assert child.free_slots() == 0, "nothing more is sent to it"


def test_child_process_learns_pid_then_exit_code_from_the_fork_server():
    child, _, status = make_child()
    process = child.process
    os.write(status, struct.pack("i", 4242))
    assert process.pid == 4242
    assert process.is_alive()
    os.write(status, struct.pack("i", -9))
    os.close(status)
    process.join(1)
    assert not process.is_alive()
    assert process.exitcode == -9


def test_child_process_whose_fork_server_is_gone_is_dead_with_no_exit_code():
    child, _, status = make_child()
    os.write(status, struct.pack("i", 4242))
    os.close(status)  # the fork server died without a word
    child.process.join(1)
    assert not child.process.is_alive()
    assert child.process.exitcode is None
    assert "killed with the worker's fork server" in child.death_outcome().error


@needs_proc
def test_a_stop_sends_sigterm_to_the_whole_group_then_sigkill_after_the_grace():
    # A child (in a session of its own, as the fork server makes them) whose task ignores SIGTERM
    # and started a subprocess, which inherited that.
    child, _theirs, status = make_child()
    group = subprocess.Popen(
        ["sh", "-c", 'trap "" TERM USR1; sleep 60 & echo $!; wait'],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    assert group.stdout is not None
    grandchild = int(group.stdout.readline())
    os.write(status, struct.pack("i", group.pid))
    assert child.start([TaskFactory.build()], [1])

    now = time.monotonic()
    child.stop_task(StopReason.TIMEOUT, now)
    child.escalate(now + children.STOP_GRACE - 0.1)
    time.sleep(0.3)
    assert group.poll() is None, "SIGTERM first: ignored here"
    child.escalate(now + children.STOP_GRACE)
    assert group.wait(5) == -signal.SIGKILL
    wait_for(lambda: not process_running(grandchild), timeout=5)  # stopped with the task
    group.stdout.close()


def test_only_a_timeout_or_a_cancel_lets_the_task_clean_up():
    assert {reason for reason in StopReason if reason.gentle} == {
        StopReason.TIMEOUT,
        StopReason.CANCEL,
    }


@pytest.mark.parametrize(
    ("reason", "stopped_first", "released"),
    [
        (None, True, False),  # died on its own: its task failed
        (StopReason.SHUTDOWN, True, True),
        (StopReason.TIMEOUT, True, False),
        (StopReason.CANCEL, True, False),
        (StopReason.LOST, True, False),
        (StopReason.TIMEOUT, False, True),  # the kill caught the next task, which did nothing
        (StopReason.LOST, False, True),
    ],
)
def test_which_deaths_give_the_task_back(reason, stopped_first, released):
    child, _theirs, _status = make_child()
    first, second = TaskFactory.build(), TaskFactory.build()
    assert child.start([first, second], [None, None])
    child.stop_reason = reason
    child.stopped = first.id if reason is not None else None
    if not stopped_first:
        child.finished_one()
    assert child.released_by_stop() is released
