"""The supervisor's view of a child (``children.Child``) and its process (``forkserver.ChildProcess``)."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import tempfile
import time
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from pathlib import Path

import pytest

from django_simple_queue.lifecycle import Outcome
from django_simple_queue.models import Task
from django_simple_queue.worker import children, protocol
from django_simple_queue.worker.children import Child, StopReason
from django_simple_queue.worker.forkserver import ChildProcess
from tests.conftest import process_running, wait_for
from tests.factories import TaskFactory

needs_proc = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="reads process states in /proc"
)


def make_child() -> tuple[Child, Connection, int]:
    """A Child over real pipes; also the child's end of its pipe and the fork server's status end."""
    ours, theirs = Pipe()
    sentinel, status = os.pipe()
    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed with the child)
    child = Child(process=ChildProcess(sentinel), conn=ours, log=log, max_tasks=0)
    return child, theirs, status


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


def test_the_worker_waits_only_on_pipes_of_children_with_tasks():
    # The pipe of a child that has exited reads as ready until its exit is reported: waiting on it
    # made the supervisor spin (45 turns of its loop per task with a fresh process per task).
    from django_simple_queue.worker.supervisor import Worker

    worker = Worker()
    (idle, _idle_end, _), (busy, _busy_end, _) = make_child(), make_child()
    assert busy.start([TaskFactory.build()], [None])
    worker.children.all = [idle, busy]

    waitables = worker._waitables()
    assert idle.conn not in waitables
    assert idle.process.sentinel in waitables, "its exit still wakes the worker"
    assert busy.conn in waitables


def running_child(
    *tasks: Task, timeout: int | None = None
) -> tuple[Child, Connection, int, subprocess.Popen[bytes]]:
    """A Child running ``tasks`` in its queue, whose process is a real one that can be killed."""
    child, theirs, status = make_child()
    stand_in = subprocess.Popen(["sleep", "60"])  # what the supervisor's kill reaches
    os.write(status, struct.pack("i", stand_in.pid))
    assert child.start(list(tasks), [timeout] * len(tasks))
    return child, theirs, status, stand_in


def report_exit(status: int, stand_in: subprocess.Popen[bytes]) -> None:
    """Say what the fork server would once the stand-in is reaped."""
    os.write(status, struct.pack("i", stand_in.wait(5)))
    os.close(status)


@pytest.mark.django_db
@pytest.mark.parametrize("reason", [StopReason.SHUTDOWN, StopReason.LOST])
def test_an_outcome_sent_before_the_kill_counts_and_the_task_the_kill_caught_goes_back(reason):
    # The first task finished (its outcome unread) as the worker decided to stop it; the kill
    # caught the next one in the child's queue, which did nothing wrong.
    from django_simple_queue.worker.supervisor import Worker

    worker = Worker()
    first, second = TaskFactory(), TaskFactory()
    child, theirs, status, stand_in = running_child(first, second)
    worker.children.all = [child]
    protocol.send_outcome(theirs, Outcome(ok=True, output="first's"))
    child.stop_task(reason, time.monotonic())
    report_exit(status, stand_in)

    worker._receive(child)
    assert [(task.id, outcome.output) for task, outcome, _ in worker.recorder.results] == [
        (first.id, "first's")
    ]
    assert [task.id for task in worker.recorder.releases] == [second.id]
    assert worker.children.all == []


@pytest.mark.django_db
@pytest.mark.parametrize("reason", [StopReason.CANCEL, StopReason.TIMEOUT])
def test_a_task_whose_outcome_is_on_its_way_is_not_stopped(reason):
    # It finished as the worker decided to stop it: what it sent counts, and the next one runs.
    from django_simple_queue.worker.supervisor import Worker

    worker = Worker()
    first, second = TaskFactory(), TaskFactory()
    child, theirs, _status, stand_in = running_child(first, second, timeout=3)
    worker.children.all = [child]
    protocol.send_outcome(theirs, Outcome(ok=True, output="first's"))
    worker._stop(child, reason)

    assert [(task.id, outcome.output) for task, outcome, _ in worker.recorder.results] == [
        (first.id, "first's")
    ]
    assert child.stop_reason is None and child.task == second
    assert stand_in.poll() is None, "not signalled"
    stand_in.kill()


@pytest.mark.django_db
@pytest.mark.parametrize("reason", [StopReason.CANCEL, StopReason.TIMEOUT])
def test_a_task_that_returns_once_signalled_was_still_stopped(reason):
    # It caught the SIGTERM and returned (or raised): cancelled or timed out all the same. The next
    # task in the child's queue, caught by the SIGKILL that follows, goes back to the queue.
    from django_simple_queue.worker.supervisor import Worker

    worker = Worker()
    first, second = TaskFactory(), TaskFactory()
    child, theirs, status, stand_in = running_child(first, second, timeout=3)
    worker.children.all = [child]
    child.stop_task(reason, time.monotonic())
    protocol.send_outcome(theirs, Outcome(ok=True, output="cleaned up", log="its log"))
    report_exit(status, stand_in)

    worker._receive(child)
    ((recorded, outcome, _),) = worker.recorder.results
    assert recorded.id == first.id and not outcome.ok
    assert outcome.log == "its log"
    if reason is StopReason.CANCEL:
        assert outcome.cancelled
    else:
        assert outcome.timed_out and outcome.error == "Task timed out after 3 seconds"
    assert [task.id for task in worker.recorder.releases] == [second.id]


@pytest.mark.django_db
def test_a_task_killed_for_its_own_timeout_fails_as_timed_out():
    from django_simple_queue.worker.supervisor import Worker

    worker = Worker()
    task = TaskFactory()
    child, _theirs, status, stand_in = running_child(task)
    worker.children.all = [child]
    child.stop_task(StopReason.TIMEOUT, time.monotonic())
    report_exit(status, stand_in)

    worker._receive(child)
    ((recorded, outcome, _),) = worker.recorder.results
    assert recorded.id == task.id and outcome.timed_out and not worker.recorder.releases


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


@pytest.mark.django_db
def test_an_outcome_the_supervisor_cannot_read_fails_only_its_task_and_the_next_ones_count():
    from django_simple_queue.worker.supervisor import Worker
    from tests.tasks import TwoPartError

    worker = Worker()
    bad, queued = TaskFactory(), TaskFactory()
    child, theirs, _status, stand_in = running_child(bad, queued)
    worker.children.all = [child]
    # Pickles in the child, not back in the supervisor (children send protocol.pack(outcome), which
    # keeps the exception apart: this is any other message that cannot be read).
    theirs.send((protocol.DONE, Outcome(ok=False, exception=TwoPartError(1, "x"))))
    protocol.send_outcome(theirs, Outcome(ok=True, output="queued's"))

    worker._receive(child)
    (bad_outcome, queued_outcome) = [(t.id, o) for t, o, _ in worker.recorder.results]
    assert bad_outcome[0] == bad.id and "could not read" in bad_outcome[1].error
    assert queued_outcome[0] == queued.id and queued_outcome[1].output == "queued's"
    assert child.stop_reason is None, "the child goes on"
    stand_in.kill()


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
