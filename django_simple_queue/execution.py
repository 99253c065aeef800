"""Running one task in the current process: import, call, stream, capture.

Used by the worker's child processes and by ``worker.execute_task``. Nothing here writes to the
database: output, progress and the outcome go to a ``Sink`` that the caller provides.
"""

from __future__ import annotations

import asyncio
import inspect
import io
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from django_simple_queue import callables, progress, signals
from django_simple_queue.exceptions import (
    InvalidTaskArguments,
    InvalidTaskPath,
    TaskNotAllowedError,
)
from django_simple_queue.lifecycle import Ending, Outcome
from django_simple_queue.models import Task

LOG_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"


class Sink(Protocol):
    def output(self, text: str) -> None: ...

    def progress(self, value: float | None, message: str | None) -> None: ...


class ManagedEventLoop:
    """A fresh event loop for one task, closed afterwards (the original's context manager)."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None

    def __enter__(self) -> asyncio.AbstractEventLoop:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        return self.loop

    def __exit__(self, *exc: object) -> None:
        if self.loop is not None:
            self.loop.close()
            asyncio.set_event_loop(None)


def as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def prepare(task: Task) -> tuple[Callable[..., Any], list[Any], dict[str, Any]]:
    """The callable and its arguments, or a permanent error (not allowed, poison row)."""
    if task.backend:
        # Django's @task objects are allowed by construction; backends.load_task refuses the rest.
        try:
            from django_simple_queue.backends import prepare_call
        except ImportError as exc:
            raise InvalidTaskPath(f"'{task.task}' needs Django's Tasks API: {exc}") from exc
        return prepare_call(task)
    func = callables.resolve(task.task)
    kwargs = callables.load_args(task.args)
    try:
        # Names only: a call with a missing or unknown keyword cannot even start. The values were
        # checked against the type hints at enqueue; a row queued before those checks existed
        # (or by other means) runs, and the function judges its values, as in 0.1.x.
        callables.bind(func, kwargs, types=False)
    except InvalidTaskArguments as exc:
        raise InvalidTaskArguments(f"arguments do not match {task.task}: {exc}") from exc
    return func, [], kwargs


def run(task: Task, sink: Sink) -> Outcome:
    """Run ``task`` here and now and describe what happened; never raises for the task's faults."""
    try:
        func, args, kwargs = prepare(task)
    except (TaskNotAllowedError, InvalidTaskPath, InvalidTaskArguments) as exc:
        return Outcome(Ending.REFUSED, error=f"{type(exc).__name__}: {exc}", exception=exc)

    signals.before_job.send(sender=Task, task=task)
    streams = inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func)
    try:
        with progress.reporting(sink.progress):
            if inspect.isgeneratorfunction(func):
                _drain(task, func(*args, **kwargs), sink)
                return Outcome(Ending.COMPLETED)
            if inspect.isasyncgenfunction(func):
                with ManagedEventLoop() as loop:
                    _drain_async(task, loop, func(*args, **kwargs), sink)
                return Outcome(Ending.COMPLETED)
            result = func(*args, **kwargs)
            if inspect.isawaitable(result):
                with ManagedEventLoop() as loop:
                    result = loop.run_until_complete(result)
    except (Exception, SystemExit) as exc:
        # The output is what the task produced before the error, as in the original: its yields,
        # streamed already, or nothing ("", not None: the task did run).
        return Outcome(
            Ending.FAILED,
            output=None if streams else "",
            error=f"{exc!r}\n\n{traceback.format_exc()}",
            exception=exc,
        )
    output = None if result is None else as_text(result)
    # Only Django's Tasks API asks for the value itself; backends.prepare_call made it JSON-safe.
    return Outcome(Ending.COMPLETED, output=output, return_value=result if task.backend else None)


def _step(task: Task, value: Any, iteration: int, sink: Sink) -> None:
    signals.before_loop.send(sender=Task, task=task, iteration=iteration)
    if isinstance(value, progress.Progress):
        progress.set_progress(value.fraction, value.message)
    else:
        sink.output(as_text(value))
    signals.after_loop.send(sender=Task, task=task, output=value, iteration=iteration)


def _drain(task: Task, generator: Iterator[Any], sink: Sink) -> None:
    for iteration, value in enumerate(generator):
        _step(task, value, iteration, sink)


def _drain_async(task: Task, loop: asyncio.AbstractEventLoop, agen: Any, sink: Sink) -> None:
    iteration = 0
    while True:
        try:
            value = loop.run_until_complete(agen.__anext__())
        except StopAsyncIteration:
            return
        _step(task, value, iteration, sink)
        iteration += 1


@contextmanager
def capture(fd: int, *, os_level: bool) -> Iterator[None]:
    """Send the task's stdout, stderr and root logging to ``fd``.

    ``os_level`` also points file descriptors 1 and 2 there, which catches output of C code and
    of subprocesses; only a worker's child, which owns its descriptors, should do that.
    """
    saved = (sys.stdout, sys.stderr)
    saved_fds = (os.dup(1), os.dup(2)) if os_level else None
    if saved_fds:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
    stream = io.TextIOWrapper(os.fdopen(os.dup(fd), "wb", buffering=0), write_through=True)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    if old_level != logging.DEBUG:  # a change clears the cache of every logger
        root.setLevel(logging.DEBUG)
    sys.stdout = sys.stderr = stream
    try:
        yield
    finally:
        stream.flush()
        sys.stdout, sys.stderr = saved
        root.removeHandler(handler)
        if root.level != old_level:
            root.setLevel(old_level)
        stream.close()
        if saved_fds:
            os.dup2(saved_fds[0], 1)
            os.dup2(saved_fds[1], 2)
            os.close(saved_fds[0])
            os.close(saved_fds[1])
