"""Helpers of the chaos suite: real ``task_worker`` processes on PostgreSQL or MariaDB, faults, figures.

Executions are counted through ``tests.models.Execution``, rows the tasks write themselves, never
through the queue's own bookkeeping. Timings are shortened through the environment knobs of
tests/settings.py; ``DSQ_SOAK=1`` (``make soak``) makes sizes and durations larger.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import django
import pytest
from django.db import connection

from django_simple_queue.models import Task
from tests.conftest import ROOT, manage, worker_env
from tests.models import Execution

SOAK = os.environ.get("DSQ_SOAK") == "1"
HEARTBEAT_INTERVAL = 0.5
STALE_AFTER = 3.0
KNOBS = {
    "DSQ_HEARTBEAT_INTERVAL": str(HEARTBEAT_INTERVAL),
    "DSQ_STALE_AFTER": str(STALE_AFTER),
    "DSQ_SHUTDOWN_GRACE": "30",
    # Children keep their connection between tasks, so a connection the server dropped meanwhile
    # is the child's problem to notice (it checks before each task).
    "DSQ_CONN_MAX_AGE": "600",
}
# Coverage measures subprocesses when these are set; a load test need not pay for it.
UNMEASURED = {"COVERAGE_PROCESS_CONFIG": "", "COVERAGE_PROCESS_START": ""}
FIGURES = ROOT / "artifacts" / "chaos.json"


def size(normal: int, soak: int) -> int:
    """A size or duration: ``normal`` in ``make test``, ``soak`` under ``make soak``."""
    return soak if SOAK else normal


@dataclass
class WorkerProcess:
    """One ``task_worker`` supervisor started by a test; its console goes to ``log``."""

    proc: subprocess.Popen[bytes]
    log: Path
    host: str = field(default_factory=socket.gethostname)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def name(self) -> str:
        """The worker id it writes on its claims (host:pid)."""
        return f"{self.host}:{self.pid}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def signal_group(self, signum: int) -> None:
        """Send ``signum`` to the supervisor and its children (its own process group)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signum)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def alive(self) -> bool:
        return self.proc.poll() is None


class Fleet:
    """Starts workers for one test and kills whatever is left of them afterwards."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.workers: list[WorkerProcess] = []

    def start(
        self,
        *args: str,
        concurrency: int = 1,
        env: dict[str, str] | None = None,
        host: str | None = None,
        prefix: Sequence[str] = (),
    ) -> WorkerProcess:
        """Start ``task_worker``; with ``host``, in a UTS namespace where that is the host name;
        under ``prefix``, a command that runs it (tests/chaos/hosts.py: in a network namespace)."""
        log = self.tmp_path / f"worker-{len(self.workers)}.log"
        command = manage("task_worker", "--concurrency", str(concurrency), *args)
        if host is not None:
            command = [
                "unshare",
                "--uts",
                "sh",
                "-c",
                f'hostname {host} && exec "$@"',
                "sh",
                *command,
            ]
        command = [*prefix, *command]
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                command,
                env=worker_env(**{**KNOBS, **(env or {})}),
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        worker = WorkerProcess(proc, log, host or socket.gethostname())
        self.workers.append(worker)
        return worker

    def stop(self) -> None:
        for worker in self.workers:
            worker.signal_group(signal.SIGCONT)
            worker.signal_group(signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.wait(10)


@pytest.fixture
def fleet(transactional_db: None, tmp_path: Path) -> Iterator[Fleet]:
    fleet = Fleet(tmp_path)
    yield fleet
    fleet.stop()
    # A test that restarted the server leaves this process with a dead connection.
    if not connection.is_usable():
        connection.close()


@pytest.fixture(scope="module")
def network() -> Iterator[Any]:
    """Three hosts in network namespaces, for a test module (tests/chaos/hosts.py)."""
    from tests.chaos.hosts import three_hosts

    yield from three_hosts()


def can_fake_another_host() -> bool:
    """Whether ``unshare --uts`` works here (it needs root or user namespaces)."""
    if shutil.which("unshare") is None:
        return False
    result = subprocess.run(
        ["unshare", "--uts", "sh", "-c", "hostname chaos-probe"], capture_output=True, check=False
    )
    return result.returncode == 0


def executions() -> Counter[str]:
    """How many times each key ran, as the tasks themselves wrote it."""
    return Counter(Execution.objects.values_list("key", flat=True))


def unfinished() -> int:
    return Task.objects.filter(status__in=[Task.QUEUED, Task.PROGRESS]).count()


def terminate_connections() -> int:
    """``pg_terminate_backend`` every client connection to this database except ours."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend'"
        )
        (count,) = cursor.fetchone()
    return int(count)


def postgres(command: str, *, listen: Sequence[str] = (), max_connections: int = 200) -> float:
    """``scripts/pg.sh stop|start`` on the test server; returns how long it took.

    ``start`` listens on 127.0.0.1 and on the addresses in ``listen`` (tests/chaos/hosts.py).
    """
    data = os.environ.get("DSQ_PGDATA")
    if not data:
        pytest.skip("DSQ_PGDATA is not set: the server of this run cannot be restarted")
    started = time.monotonic()
    args = ["bash", str(ROOT / "scripts" / "pg.sh"), command, data]
    if command == "start":
        args += [os.environ.get("PGPORT", "54329"), ",".join(listen), str(max_connections)]
    subprocess.run(args, check=True, capture_output=True)
    if command == "start":
        connection.close()
    return time.monotonic() - started


def report(scenario: str, **figures: Any) -> None:
    """Print a scenario's figures (shown with -s) and append them to artifacts/chaos.json."""
    print(f"\n[chaos] {scenario}: " + ", ".join(f"{key}={value}" for key, value in figures.items()))
    FIGURES.parent.mkdir(exist_ok=True)
    try:
        runs = json.loads(FIGURES.read_text())
    except (FileNotFoundError, ValueError):
        runs = []
    runs.append(
        {
            "scenario": scenario,
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "soak": SOAK,
            "python": sys.version.split()[0],
            "django": django.get_version(),
            "cpus": os.cpu_count(),
            "knobs": {"heartbeat_interval": HEARTBEAT_INTERVAL, "stale_after": STALE_AFTER},
            "figures": figures,
        }
    )
    FIGURES.write_text(json.dumps(runs, indent=1) + "\n")
