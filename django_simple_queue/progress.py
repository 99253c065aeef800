"""Progress reports from inside a running task.

Call ``set_progress(0.4, "40 of 100 rows")`` from a task, or yield ``Progress(0.4, "…")`` from a
generator task; the status page, its JSON and the admin show the latest report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import NamedTuple

Reporter = Callable[[float | None, str | None], None]

_reporter: ContextVar[Reporter | None] = ContextVar("django_simple_queue_progress", default=None)


class Progress(NamedTuple):
    fraction: float | None
    message: str | None = None


def set_progress(fraction: float | None, message: str | None = None) -> None:
    """Report how far the running task is, as a fraction from 0 to 1, with an optional message.

    Outside a task (a plain function call in a shell or a test) this does nothing.
    """
    if fraction is not None:
        fraction = min(max(float(fraction), 0.0), 1.0)
    reporter = _reporter.get()
    if reporter is not None:
        reporter(fraction, message)


@contextmanager
def reporting(reporter: Reporter) -> Iterator[None]:
    token = _reporter.set(reporter)
    try:
        yield
    finally:
        _reporter.reset(token)
