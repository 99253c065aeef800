"""The supervisor's view of a child (``pool.Child``) and its process (``forkserver.ChildProcess``)."""

from __future__ import annotations

import os
import struct
import tempfile
from multiprocessing import Pipe
from multiprocessing.connection import Connection

from django_simple_queue.forkserver import ChildProcess
from django_simple_queue.pool import Child
from tests.factories import TaskFactory


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
    assert child.room() == 1, "its death is not known yet"

    assert child.start([task], [None]) is False
    assert not child.busy
    assert child.runs == 0
    assert child.room() == 0, "nothing more is sent to it"


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
    from django_simple_queue.worker import Worker

    worker = Worker()
    (idle, _idle_end, _), (busy, _busy_end, _) = make_child(), make_child()
    assert busy.start([TaskFactory.build()], [None])
    worker.children = [idle, busy]

    waitables = worker._waitables()
    assert idle.conn not in waitables
    assert idle.process.sentinel in waitables, "its exit still wakes the worker"
    assert busy.conn in waitables
