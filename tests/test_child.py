"""What runs inside a child (``worker.child``); tests/test_worker.py runs real children."""

from __future__ import annotations

import os
import tempfile

from django_simple_queue.worker import child


def test_the_log_read_back_is_none_when_the_task_wrote_nothing():
    with tempfile.TemporaryFile() as log:
        assert child.read_back(log.fileno(), 100) is None


def test_the_log_read_back_is_cut_at_the_limit_and_says_so():
    with tempfile.TemporaryFile() as log:
        os.write(log.fileno(), b"x" * 50)
        assert child.read_back(log.fileno(), 100) == "x" * 50
        cut = child.read_back(log.fileno(), 10)
    assert cut is not None and cut.startswith("x" * 10)
    assert "[truncated: more than 10 bytes]" in cut


def test_the_log_read_back_survives_bytes_that_are_not_utf8():
    with tempfile.TemporaryFile() as log:
        os.write(log.fileno(), b"ok \xff")
        assert child.read_back(log.fileno(), 100) == "ok \ufffd"


def test_preparing_a_task_imports_it_and_reads_its_signature():
    child.prepare_task("tests.tasks.add")
