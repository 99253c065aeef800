from __future__ import annotations

import pytest

from django_simple_queue import causes
from django_simple_queue.exceptions import TaskNotAllowedError


class Gone(Exception):
    pass


def test_an_exception_is_named_by_its_qualified_class():
    assert causes.of_exception(ValueError("x")) == "builtins.ValueError"
    assert causes.of_exception(Gone()) == "tests.test_causes.Gone"
    assert causes.of_exception(None) == causes.WORKER_LOST


def test_worker_lost_is_the_class_the_tasks_backend_reports():
    backends = pytest.importorskip("django_simple_queue.backends")
    assert causes.class_path(backends.WorkerLost) == causes.WORKER_LOST


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        ("Traceback …\n  File x\nValueError: bad value\n", "builtins.ValueError"),
        ("ValueError('boom')", "unknown"),  # a repr, not a traceback's last line
        ("Traceback …\nKeyError\n\n", "builtins.KeyError"),
        ("Traceback …\nmyapp.errors.Gone: it went", "myapp.errors.Gone"),
        (
            "TaskNotAllowedError: x is not in the allowed list",
            causes.class_path(TaskNotAllowedError),
        ),
        ("Task timed out after 30 seconds", "builtins.TimeoutError"),
        ("Task failed: worker process (PID 12) no longer running", causes.WORKER_LOST),
        ("Worker subprocess exited with code 3", causes.WORKER_LOST),
        ("Worker h:1 was lost: no heartbeat since never (rescued at …).", causes.WORKER_LOST),
        ("The task's process was killed by SIGKILL before the task finished.", causes.WORKER_LOST),
        ("Something odd happened", "unknown"),
        ("", "unknown"),
        (None, "unknown"),
    ],
)
def test_a_legacy_error_names_its_cause_by_its_last_line(error, cause):
    assert causes.from_error(error) == cause
