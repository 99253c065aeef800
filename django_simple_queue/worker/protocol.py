"""The pipe between the supervisor and a child: every message, written and read here.

Supervisor → child: a list of tasks (as plain field values) to run in order, or ``None``: exit.
Child → supervisor: ``(OUTPUT, text)``, ``(PROGRESS, (value, message))`` about the task it is
running, and ``(DONE, packed outcome)`` once per task, in the order the tasks were sent.
"""

from __future__ import annotations

import operator
import pickle
from collections.abc import Iterable
from multiprocessing.connection import Connection
from typing import Any, Final

from django_simple_queue.lifecycle import Outcome
from django_simple_queue.models import Task

# Plain strings, not an Enum: they are pickled with every message.
OUTPUT: Final = "output"
PROGRESS: Final = "progress"
DONE: Final = "done"

FIELDS = Task.FIELD_NAMES
_values = operator.attrgetter(*FIELDS)

Packed = tuple[Outcome, bytes | None, str]


def task_message(task: Task) -> tuple[Any, ...]:
    """A task as the plain field values a child needs: cheaper to pickle than a model instance."""
    return _values(task)


def send_tasks(conn: Connection, tasks: Iterable[Task]) -> None:
    """Raises OSError if the child is gone."""
    conn.send([task_message(task) for task in tasks])


def send_exit(conn: Connection) -> None:
    """Ask a child to exit once the tasks it holds are done."""
    conn.send(None)


def receive_tasks(conn: Connection) -> list[Task] | None:
    """The child's side of ``send_tasks``; None when asked to exit."""
    batch = conn.recv()
    if batch is None:
        return None
    return [Task.from_db(None, FIELDS, values) for values in batch]


class PipeSink:
    """Where a child's running task streams its output and progress."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def output(self, text: str) -> None:
        self.conn.send((OUTPUT, text))

    def progress(self, value: float | None, message: str | None) -> None:
        self.conn.send((PROGRESS, (value, message)))


def send_outcome(conn: Connection, outcome: Outcome) -> None:
    conn.send((DONE, pack(outcome)))


def receive(conn: Connection) -> tuple[str, Any]:
    """The next message from a child: ``(OUTPUT, str)``, ``(PROGRESS, (value, message))`` or
    ``(DONE, Outcome)``. Raises what ``Connection.recv`` raises (EOFError, OSError, or an
    unpickling error: that message is lost, the next ones are still readable)."""
    kind, payload = conn.recv()
    if kind == DONE:
        return kind, unpack(payload)
    return kind, payload


def pack(outcome: Outcome) -> Packed:
    """An outcome as a child sends it: its exception apart, pickled, with its repr.

    Some exceptions pickle but do not unpickle (an ``__init__`` with more required arguments, a
    class only the child can import): the message itself must always be readable.
    """
    exception, outcome.exception = outcome.exception, None
    if exception is None:
        return outcome, None, ""
    try:
        data = pickle.dumps(exception)
    except Exception:
        data = None
    return outcome, data, repr(exception)


def unpack(message: Packed) -> Outcome:
    """The outcome a child sent, its exception unpickled, or a RuntimeError with its repr."""
    outcome, data, text = message
    if text:
        try:
            outcome.exception = pickle.loads(data) if data is not None else RuntimeError(text)
        except Exception:
            outcome.exception = RuntimeError(text)
    return outcome
