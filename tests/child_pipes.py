"""Children over real pipes, for tests of the supervisor's side without a fork server.

Each is a ``children.Child`` whose "process" is told its pid and exit status through a pipe, as the
fork server would tell it; ``running_child`` gives it a real process that a stop can signal.
"""

from __future__ import annotations

import os
import struct
import subprocess
import tempfile
from multiprocessing import Pipe
from multiprocessing.connection import Connection

from django_simple_queue.models import Task
from django_simple_queue.worker.children import Child
from django_simple_queue.worker.forkserver import ChildProcess


def make_child() -> tuple[Child, Connection, int]:
    """A Child over real pipes; also the child's end of its pipe and the fork server's status end."""
    ours, theirs = Pipe()
    sentinel, status = os.pipe()
    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed with the child)
    child = Child(process=ChildProcess(sentinel), conn=ours, log=log, max_tasks=0)
    return child, theirs, status


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
