"""The queue's database and its clock (django_simple_queue/db.py).

Workers whose clocks are wrong must agree with their peers: under ``faketime`` (Debian's package
of libfaketime), a worker a minute fast must not rescue a live task or run a delayed one early,
and a worker a minute slow must not have its live task rescued by others.
"""

from __future__ import annotations

import shutil
from datetime import timedelta

import pytest
from django.db import connection

from django_simple_queue import db
from django_simple_queue.models import Task
from django_simple_queue.utils import create_task
from tests.conftest import run_python, wait_for, worker_env

FAKETIME = shutil.which("faketime")
needs_faketime = pytest.mark.skipif(
    FAKETIME is None, reason="needs faketime (apt install faketime)"
)
# A worker is lost after 3 s without a heartbeat: a clock off by 60 s would make any claim look lost.
KNOBS = {"DSQ_HEARTBEAT_INTERVAL": "0.5", "DSQ_STALE_AFTER": "3"}


def shifted(offset: str) -> list[str]:
    assert FAKETIME is not None
    return [FAKETIME, "-f", offset]


def test_alias_is_the_routers_choice(settings):
    assert db.alias() == "default"
    settings.DATABASE_ROUTERS = ["django_simple_queue.routers.QueueRouter"]
    settings.DJANGO_SIMPLE_QUEUE_DATABASE = "default"
    assert db.alias() == "default"


@pytest.mark.django_db
def test_now_is_aware_and_close_to_the_database_clock():
    now = db.now()
    assert now.tzinfo is not None
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT clock_timestamp()")
            (server,) = cursor.fetchone()
        assert abs(server - now) < timedelta(seconds=1)


@pytest.mark.postgres
@needs_faketime
@pytest.mark.django_db(transaction=True)
def test_now_in_a_process_whose_clock_is_a_minute_fast_is_the_databases():
    script = (
        "import django; django.setup()\n"
        "from django.utils import timezone\n"
        "from django_simple_queue import db\n"
        "print((timezone.now() - db.now()).total_seconds())\n"
    )
    out = run_python(script, worker_env(), prefix=shifted("+60s"))
    skew = float(out.strip().splitlines()[-1])
    assert 55 < skew < 65, f"the process's own clock is {skew}s ahead of the database's"


@pytest.mark.postgres
@needs_faketime
@pytest.mark.parametrize(
    ("runner_clock", "peer_clock"),
    [("+0s", "+60s"), ("-60s", "+0s")],
    ids=["fast-peer", "slow-runner"],
)
def test_a_live_task_is_not_rescued_by_a_peer_whose_clock_disagrees(
    start_worker, runner_clock, peer_clock
):
    task_id = create_task("tests.tasks.sleep", {"seconds": 6}, queue="long")
    runner = start_worker(
        "--queue", "long", "--name", "runner", env=KNOBS, prefix=shifted(runner_clock)
    )
    try:
        wait_for(lambda: Task.objects.filter(id=task_id, status=Task.PROGRESS).exists(), timeout=30)
    except AssertionError:
        # Seen once in CI under load: keep what the worker said, to find out why.
        runner.kill()
        said = runner.communicate(timeout=10)[0]
        raise AssertionError(
            f"the runner claimed nothing in 30 s; it said:\n{said[-3000:]}"
        ) from None
    # The peer serves another queue: all it can do to the task is judge its claim lost.
    peer = start_worker("--queue", "other", "--name", "peer", env=KNOBS, prefix=shifted(peer_clock))
    wait_for(lambda: Task.objects.get(id=task_id).is_finished, timeout=40)
    task = Task.objects.get(id=task_id)
    assert task.status == Task.COMPLETED, task.error
    assert task.attempts == 1 and task.worker_id == "runner"
    assert peer.poll() is None and runner.poll() is None


@pytest.mark.postgres
@needs_faketime
def test_a_worker_a_minute_fast_does_not_run_a_delayed_task_early(run_worker):
    later = create_task("tests.tasks.add", {"a": 1}, run_after=db.now() + timedelta(seconds=30))
    now = create_task("tests.tasks.add", {"a": 2})
    run_worker(env=KNOBS, prefix=shifted("+60s"))
    assert Task.objects.get(id=now).status == Task.COMPLETED
    assert Task.objects.get(id=later).status == Task.QUEUED
