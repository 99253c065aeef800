"""What the worker's recorder says of outcomes on the console (tests/test_worker.py runs it whole)."""

from __future__ import annotations

from django_simple_queue.worker.recorder import ERROR_LINE_LIMIT, error_line

TRACEBACK = """Traceback (most recent call last):
  File "tasks.py", line 3, in fail
    raise ValueError(message)
ValueError: kaboom

"""


def test_the_error_line_is_the_last_line_of_the_traceback():
    assert error_line(TRACEBACK) == "ValueError: kaboom"
    assert error_line("Task timed out after 5 seconds") == "Task timed out after 5 seconds"
    assert error_line(None) == error_line("\n \n") == ""


def test_a_long_error_line_is_cut():
    line = error_line("RuntimeError: " + "x" * 1000)
    assert (
        len(line) == ERROR_LINE_LIMIT and line.startswith("RuntimeError: xx") and line.endswith("…")
    )
