"""Task functions used by the test suite (listed in tests/settings.py's ALLOWED_TASKS)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from django_simple_queue.progress import Progress, set_progress

if TYPE_CHECKING:
    from decimal import Decimal

NOT_CALLABLE = 42


def add(a, b=1):
    """Add two numbers."""
    return a + b


class Colour(Enum):
    RED = "red"
    GREEN = "green"


# This module says ``from __future__ import annotations``: these hints are strings until resolved.
def monthly(month: int, note: str = "") -> str:
    """Report on one month."""
    return f"{month}:{note}"


def typed(
    count: int,
    ratio: float = 0.5,
    name: str = "x",
    flag: bool = False,
    day: date | None = None,
    at: datetime | None = None,
    size: Literal["small", "large"] = "small",
    colour: Colour = Colour.RED,
    tags: list[str] | None = None,
    options: dict[str, int] | None = None,
) -> dict:
    """Take one argument of each kind the enqueue form has a field for, and return them all, which
    is what a task with a long docstring whose first line goes on and on past any sane width does."""
    return locals()


def unresolvable(amount: Decimal) -> str:
    """Annotated with a name imported only for type checkers: not checked."""
    return str(amount)


def echo(**kwargs):
    return kwargs


def send_report(recipient, api_key="sk-default-secret"):
    """Send a report through a service whose key has a default."""
    return recipient


def count_up(n=3):
    for i in range(n):
        yield f"{i};"


def yield_objects():
    yield 1
    yield {"a": 1}
    yield None
    yield b"bytes"


def fail(message="boom"):
    raise ValueError(message)


class TwoPartError(Exception):
    """Pickles, but does not unpickle: ``__init__`` needs two arguments, ``args`` holds one."""

    def __init__(self, code, detail):
        super().__init__(f"{code}: {detail}")


def fail_unpicklably(code=7):
    raise TwoPartError(code, "no unpickling me")


def heartbeat_after(seconds=0.6):
    """Sleep, then say how long after its start this running task's heartbeat was last refreshed."""
    from django_simple_queue.models import Task

    time.sleep(seconds)
    row = Task.objects.get(task="tests.tasks.heartbeat_after", status=Task.PROGRESS)
    return (row.heartbeat_at - row.started_at).total_seconds()


def sleep(seconds=1.0):
    time.sleep(seconds)
    return "slept"


def noisy():
    print("to stdout")
    print("to stderr", file=sys.stderr)
    logging.getLogger("tests").warning("a log record")
    logging.getLogger("tests").info("an info record")
    os.write(1, b"raw fd write\n")
    return "done"


async def async_add(a, b):
    await asyncio.sleep(0.01)
    return a + b


def exit_process(code=3):
    os._exit(code)


def kill_self():
    os.kill(os.getpid(), signal.SIGKILL)


def print_lots(megabytes=50):
    chunk = "x" * 1023 + "\n"
    for _ in range(megabytes * 1024):
        sys.stdout.write(chunk)
    return "printed"


def with_progress():
    set_progress(0.5, "half way")
    yield "a"
    yield Progress(0.75, "three quarters")
    yield "b"


def record(key, fail_first=0):
    """Count executions in a side table written by the task itself."""
    from tests.models import Execution

    Execution.objects.create(key=key)
    if Execution.objects.filter(key=key).count() <= fail_first:
        raise RuntimeError(f"failing attempt for {key}")
    return key


def flaky(key):
    return record(key, fail_first=1)


def uses_orm():
    from django_simple_queue.models import Task

    return Task.objects.count()


def connection_state():
    """Whether this process inherited an open database connection (it must not)."""
    from django.db import connection

    return "open" if connection.connection is not None else "closed"


def mark(key, seconds=0.0):
    """Count one execution in the side table, then sleep; return this process's pid."""
    from tests.models import Execution

    Execution.objects.create(key=key, pid=os.getpid())
    if seconds:
        time.sleep(seconds)
    return os.getpid()


def span(key, seconds=0.0):
    """Record its start and its end in the side table (this host's clock), sleeping between."""
    from tests.models import Execution

    Execution.objects.create(key=f"{key}:start", pid=os.getpid())
    time.sleep(seconds)
    Execution.objects.create(key=f"{key}:end", pid=os.getpid())


def poison(key, how="raise"):
    """Count one execution, then fail every time: raise, or end the process with ``os._exit(1)``."""
    from tests.models import Execution

    Execution.objects.create(key=key, pid=os.getpid())
    if how == "exit":
        os._exit(1)
    raise RuntimeError(f"poison {key}")


def start_sleep(pid_file, seconds=60):
    """Start ``sleep 120`` and write its pid to ``pid_file``, then sleep: a task with a subprocess."""
    proc = subprocess.Popen(["sleep", "120"])
    Path(pid_file).write_text(str(proc.pid))
    time.sleep(seconds)
    return "slept"


def terminate_own_subprocess():
    """Start a subprocess and stop it with SIGTERM; return how it ended."""
    proc = subprocess.Popen(["sleep", "120"])
    proc.terminate()
    return proc.wait(timeout=5)


def on_sigterm(path, action="clean up", seconds=60):
    """Write this process's pid to ``path``, sleep, and on SIGTERM: clean up (write ``path`` and
    exit), or ignore it."""

    def clean_up(signum, frame):
        Path(path).write_text("cleaned up")
        sys.exit(0)

    signal.signal(signal.SIGTERM, clean_up if action == "clean up" else signal.SIG_IGN)
    Path(path).write_text(str(os.getpid()))
    time.sleep(seconds)
    return "slept"


def batch_done(batch_id, label=""):
    """A batch's callback: count its runs in the side table, by batch."""
    from tests.models import Execution

    Execution.objects.create(key=f"batch:{batch_id}", pid=os.getpid())
    return label
