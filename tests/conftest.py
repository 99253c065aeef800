from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skips = {}
    if connection.vendor != "postgresql":
        skips["postgres"] = pytest.mark.skip(
            reason="needs PostgreSQL (run with DSQ_TEST_DB=postgres)"
        )
    if connection.vendor == "sqlite":
        skips["server_db"] = pytest.mark.skip(
            reason="needs a database server with row locks (DSQ_TEST_DB=postgres or mariadb)"
        )
    for item in items:
        for marker, skip in skips.items():
            if marker in item.keywords:
                item.add_marker(skip)


def worker_env(**extra: str) -> dict[str, str]:
    """Environment for a process that must open the test database of this session."""
    env = dict(os.environ)
    env["DSQ_DB_NAME"] = str(connection.settings_dict["NAME"])
    env["DJANGO_SETTINGS_MODULE"] = env.get("DJANGO_SETTINGS_MODULE", "tests.settings")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env.update(extra)
    return env


def run_python(
    script: str, env: dict[str, str], timeout: float = 60, prefix: Sequence[str] = ()
) -> str:
    """Run ``script`` in a fresh interpreter from the repository root; return what it printed."""
    proc = subprocess.run(
        [*prefix, sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def manage(*args: str, **env: str) -> list[str]:
    return [sys.executable, "-m", "django", *args]


@pytest.fixture
def start_worker(transactional_db: None) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start ``task_worker`` as a real process (stopped at the end of the test)."""
    procs: list[subprocess.Popen[str]] = []

    def start(
        *args: str, env: dict[str, str] | None = None, prefix: Sequence[str] = ()
    ) -> subprocess.Popen[str]:
        """``prefix``: a command the worker runs under (``faketime``, say)."""
        proc = subprocess.Popen(
            [*prefix, *manage("task_worker", *args)],
            env=worker_env(**(env or {})),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
        proc.wait(10)
        if proc.stdout:
            proc.stdout.close()


@pytest.fixture
def run_worker(start_worker: Callable[..., subprocess.Popen[str]]) -> Callable[..., str]:
    """Run ``task_worker --burst`` to the end and return its console output."""

    def run(
        *args: str,
        timeout: float = 60,
        env: dict[str, str] | None = None,
        prefix: Sequence[str] = (),
    ) -> str:
        proc = start_worker("--burst", *args, env=env, prefix=prefix)
        out, _ = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, out
        return out

    return run


def process_running(pid: int) -> bool:
    """Whether process ``pid`` exists and has not exited (a zombie has), as /proc tells."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def wait_for(
    predicate: Callable[[], object], timeout: float = 15, interval: float = 0.05
) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")
