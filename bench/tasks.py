"""The benchmark's tasks. Each execution appends to a tally file, so executions can be counted
independently of either queue's bookkeeping (the exactly-once check)."""

from __future__ import annotations

import os
import struct
import time

try:
    from django.tasks import task
except ImportError:
    from django_tasks import task  # type: ignore[no-redef]

_fd: int | None = None
_pid = 0


def _tally(data: bytes) -> None:
    global _fd, _pid
    if _fd is None or _pid != os.getpid():
        _fd = os.open(os.environ["DSQ_BENCH_TALLY"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        _pid = os.getpid()
    os.write(_fd, data)


def noop() -> None:
    """Does nothing but count itself: one byte per execution."""
    _tally(b"x")


def stamp() -> None:
    """Records when it started running (8 bytes, seconds since the epoch as a double)."""
    _tally(struct.pack("d", time.time()))


@task()
def dt_noop() -> None:
    noop()


@task()
def dt_stamp() -> None:
    stamp()
