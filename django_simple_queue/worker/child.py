"""What runs inside a child: the tasks the supervisor sends, one after another.

Each task runs with ``execution.run``, its output and progress streamed back over the pipe, its
stdout, stderr and logging captured to the child's log file and sent back with its outcome.
"""

from __future__ import annotations

import logging
import os
import select
from multiprocessing.connection import Connection

from django import db

from django_simple_queue import callables, execution
from django_simple_queue.output import truncate
from django_simple_queue.worker import forkserver, protocol


def child_main(conn: Connection, parent_pid: int, fd: int, max_tasks: int, log_limit: int) -> None:
    """A child's life: run the tasks the supervisor sends, writing each one's log to ``fd``."""
    # The child leads its own process group: a signal to the worker's group (Ctrl-C, a service
    # manager) does not reach it; the supervisor decides what stops, and signals the whole group.
    # The fork server has no database connection for it to inherit.
    forkserver.die_with_parent(parent_pid)
    sink = protocol.PipeSink(conn)
    readable = select.poll()
    readable.register(conn.fileno(), select.POLLIN)
    done = 0
    while max_tasks <= 0 or done < max_tasks:
        if not readable.poll(1000):
            if os.getppid() != parent_pid:
                os._exit(1)
            continue
        tasks = protocol.receive_tasks(conn)
        if tasks is None:
            break
        _drop_dead_connections()
        for task in tasks:
            # The supervisor may already have queued the next task: the log travels with the outcome.
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            with execution.capture(fd, os_level=True):
                outcome = execution.run(task, sink)
            outcome.log = read_back(fd, log_limit)
            db.close_old_connections()
            # One message per task, at once: if a later task kills this process, the supervisor
            # still reads these from the pipe.
            protocol.send_outcome(conn, outcome)
            done += 1
    db.connections.close_all()


def _drop_dead_connections() -> None:
    """Close connections the server dropped while this child was idle, before a task uses them."""
    for conn in db.connections.all(initialized_only=True):
        if conn.connection is not None and not conn.is_usable():
            conn.close()


def read_back(fd: int, limit: int) -> str | None:
    """What a task wrote to the log file ``fd``, up to ``limit`` bytes (None if nothing)."""
    if not os.fstat(fd).st_size:
        return None
    data = os.pread(fd, limit + 1, 0)
    return truncate(data.decode("utf-8", "replace"), limit)


def log_everything() -> None:
    """Children capture every log record of their tasks (``execution.capture``). Set once in the
    fork server: a change of level clears the cache of every logger, which costs a fresh child a
    copy-on-write fault for each page of them."""
    logging.getLogger().setLevel(logging.DEBUG)


def prepare_task(path: str) -> None:
    """Import a task and work out its signature in the fork server, once for all children."""
    callables.signature(callables.import_callable(path))
