from __future__ import annotations

import os
import re
import signal
import time
import urllib.request
from datetime import timedelta

import pytest
from django.db.models import Q
from django.utils import timezone

from django_simple_queue.lifecycle import Ending
from django_simple_queue.models import Task
from django_simple_queue.utils import create_task
from django_simple_queue.worker.metrics import NoMetrics, PrometheusMetrics, outcome_label
from tests.conftest import ROOT, wait_for
from tests.test_metrics import samples


@pytest.mark.parametrize(
    ("status", "ending", "label"),
    [
        (Task.COMPLETED, Ending.COMPLETED, "completed"),
        (Task.FAILED, Ending.FAILED, "failed"),
        (Task.FAILED, Ending.REFUSED, "failed"),
        (Task.FAILED, Ending.TIMED_OUT, "timed_out"),
        (Task.QUEUED, Ending.TIMED_OUT, "retried"),
        (Task.QUEUED, Ending.FAILED, "retried"),
        (Task.CANCELLED, Ending.CANCELLED, "cancelled"),
        (None, Ending.COMPLETED, "lost"),
    ],
)
def test_outcome_label(status, ending, label):
    assert outcome_label(status, ending) == label


def test_pickup_delay_counts_from_when_the_task_became_ready():
    from prometheus_client import generate_latest

    metrics = PrometheusMetrics()
    now = timezone.now()
    deferred = Task(
        task="tests.tasks.add",
        queue="mail",
        created=now - timedelta(hours=1),
        run_after=now - timedelta(seconds=2),
        started_at=now,
    )
    metrics.claimed([deferred])
    metrics.claimed([])
    metrics.finished(deferred, Task.COMPLETED, Ending.COMPLETED, 0.5)
    values = samples(generate_latest(metrics.registry).decode())
    assert values[("django_simple_queue_pickup_delay_seconds_sum", (("queue", "mail"),))] == 2
    assert values[("django_simple_queue_claims_total", ())] == 2
    assert values[("django_simple_queue_claim_batch_size_count", ())] == 1


def test_no_metrics_does_nothing():
    metrics = NoMetrics()
    task = Task(task="tests.tasks.add")
    assert metrics.claimed([task]) is None
    assert metrics.finished(task, Task.COMPLETED, Ending.COMPLETED, 0.1) is None


FINISHED = "django_simple_queue_tasks_finished_total"


def scrape(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return samples(response.read().decode())


@pytest.mark.slow
def test_counters_of_a_real_worker(start_worker):
    for _ in range(3):
        create_task("tests.tasks.add", {"a": 1, "b": 2})
    create_task("tests.tasks.fail", {})
    create_task("tests.tasks.fail", {}, max_attempts=2)
    create_task("tests.tasks.sleep", {"seconds": 30}, timeout=1)
    proc = start_worker("--metrics-port", "0", "--concurrency", "2")
    assert proc.stdout is not None
    port = None
    while port is None:
        line = proc.stdout.readline()
        assert line, "the worker exited before serving metrics"
        match = re.search(r"metrics on http://127\.0\.0\.1:(\d+)/metrics", line)
        if match:
            port = int(match.group(1))
    unfinished = Q(status__in=(Task.QUEUED, Task.PROGRESS))
    # The retry waits RETRY_BACKOFF; done when every task has its final status.
    wait_for(lambda: not Task.objects.filter(unfinished).exists(), timeout=60)

    def finished(task: str, outcome: str) -> float:
        key = (FINISHED, (("outcome", outcome), ("task", task)))
        return values.get(key, 0.0)

    # The last outcomes are written just before the rows say so: scrape until all seven are in.
    wait_for(lambda: sum(v for key, v in scrape(port).items() if key[0] == FINISHED) == 7)
    values = scrape(port)
    assert finished("tests.tasks.add", "completed") == 3
    assert finished("tests.tasks.fail", "failed") == 2
    assert finished("tests.tasks.fail", "retried") == 1
    assert finished("tests.tasks.sleep", "timed_out") == 1
    duration = ("django_simple_queue_task_duration_seconds_count", (("task", "tests.tasks.add"),))
    assert values[duration] == 3
    sleep_sum = ("django_simple_queue_task_duration_seconds_sum", (("task", "tests.tasks.sleep"),))
    assert 1 <= values[sleep_sum] < 10
    pickups = ("django_simple_queue_pickup_delay_seconds_count", (("queue", "default"),))
    assert values[pickups] == 7  # six tasks and one retry
    # Tasks claimed ahead and given back are claimed again: at least one claim per attempt.
    assert values[("django_simple_queue_claim_batch_size_sum", ())] >= 7
    assert (
        values[("django_simple_queue_claims_total", ())]
        >= values[("django_simple_queue_claim_batch_size_count", ())]
    )
    assert values[("django_simple_queue_children_busy", ())] == 0
    assert values[("django_simple_queue_database_reconnects_total", ())] == 0
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0


def test_a_port_in_use_is_a_clear_error(start_worker):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = start_worker("--burst", "--metrics-port", str(port))
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert f"Cannot serve metrics on 127.0.0.1:{port}" in out


def test_without_prometheus_client_the_option_says_what_to_install(start_worker, tmp_path):
    # A module of that name that fails to import, first on the path: as if it were not installed.
    (tmp_path / "prometheus_client.py").write_text(
        "raise ModuleNotFoundError(name='prometheus_client')\n"
    )
    proc = start_worker(
        "--burst",
        "--metrics-port",
        "0",
        env={"PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])},
    )
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "pip install 'django-simple-queue[metrics]'" in out


@pytest.mark.django_db(transaction=True)
def test_the_database_coming_back_is_counted():
    from django.db import OperationalError
    from prometheus_client import generate_latest

    from django_simple_queue.worker.supervisor import Worker

    metrics = PrometheusMetrics()
    worker = Worker(metrics=metrics)
    worker.outage.lost(OperationalError("server closed the connection"), time.monotonic())
    worker._reconnect()
    values = samples(generate_latest(metrics.registry).decode())
    assert values[("django_simple_queue_database_reconnects_total", ())] == 1
    assert values[("django_simple_queue_children_busy", ())] == 0
