"""Queue control (django_simple_queue/queues.py and the claim's limits): unique keys, concurrency
keys, paused and capped queues; with real worker processes where it depends on them."""

from __future__ import annotations

import signal
import time
from datetime import timedelta
from itertools import pairwise

import pytest
from django.core.management import call_command

from django_simple_queue import db, lifecycle, queues
from django_simple_queue.models import Queue, Task
from django_simple_queue.queues import Controls
from django_simple_queue.utils import create_task, create_tasks
from tests.conftest import wait_for, worker_env
from tests.models import Execution

pytestmark = pytest.mark.django_db(transaction=True)


# -- unique keys ---------------------------------------------------------------------------


def test_a_unique_key_holds_while_its_task_is_active_and_is_free_again_after():
    first = create_task("tests.tasks.add", {"a": 1}, unique_key="import:42")
    assert create_task("tests.tasks.add", {"a": 2}, unique_key="import:42") == first
    assert Task.objects.count() == 1
    (claimed,) = lifecycle.claim("w:1")
    assert create_task("tests.tasks.add", {"a": 3}, unique_key="import:42") == first  # running
    Task.objects.filter(id=claimed.id).update(status=Task.COMPLETED)
    second = create_task("tests.tasks.add", {"a": 4}, unique_key="import:42")
    assert second != first and Task.objects.count() == 2
    other = create_task("tests.tasks.add", {"a": 5}, unique_key="import:43")
    assert other not in (first, second)


def test_bulk_enqueue_keeps_one_task_per_unique_key():
    held = create_task("tests.tasks.add", {"a": 1}, unique_key="k1")
    ids = create_tasks(
        [
            {"task": "tests.tasks.add", "args": {"a": 2}, "unique_key": "k1"},
            {"task": "tests.tasks.add", "args": {"a": 3}},
            {"task": "tests.tasks.add", "args": {"a": 4}, "unique_key": "k2"},
            {"task": "tests.tasks.add", "args": {"a": 5}, "unique_key": "k2"},
        ]
    )
    assert ids[0] == held and ids[2] == ids[3] and len(set(ids)) == 3
    assert Task.objects.count() == 3


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"unique_key": ""}, "unique_key must be a non-empty text"),
        ({"concurrency_key": "x" * 256}, "at most 255 characters"),
        ({"concurrency_limit": 2}, "needs a concurrency_key"),
        ({"concurrency_key": "a", "concurrency_limit": 0}, "at least 1, not 0"),
    ],
)
def test_bad_keys_are_refused_before_anything_is_written(options, message):
    with pytest.raises(ValueError, match=message):
        create_task("tests.tasks.add", {"a": 1}, **options)
    assert not Task.objects.exists()


@pytest.mark.skipif(
    db.connection().vendor == "mysql",
    reason="MariaDB and MySQL cannot index active rows only: unique keys are checked, not enforced",
)
def test_six_processes_making_forty_calls_each_at_once_make_one_task():
    start = time.time() + 3
    script = f"""
import django, time
django.setup()
from django_simple_queue.utils import create_task
time.sleep(max({start} - time.time(), 0))
ids = {{create_task("tests.tasks.add", {{"a": n}}, unique_key="import:42") for n in range(40)}}
print(*ids)
"""
    import subprocess
    import sys

    from tests.conftest import ROOT

    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script],
            cwd=ROOT,
            env=worker_env(),
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    outputs = [proc.communicate(timeout=120)[0].split() for proc in procs]
    assert all(proc.returncode == 0 for proc in procs)
    assert Task.objects.filter(unique_key="import:42").count() == 1
    assert {task_id for ids in outputs for task_id in ids} == {
        str(Task.objects.get(unique_key="import:42").id)
    }


# -- concurrency keys and capped queues, in the claim ---------------------------------------


def test_the_claim_takes_no_more_of_a_key_than_its_limit_and_passes_over_full_keys():
    for n in range(3):
        create_task("tests.tasks.add", {"a": n}, concurrency_key="account:7", concurrency_limit=2)
    free = create_task("tests.tasks.add", {"a": 9})
    claimed = lifecycle.claim("w:1", limit=10)
    keyed = [t for t in claimed if t.concurrency_key]
    assert len(keyed) == 2 and free in {t.id for t in claimed}
    # The key is full: its third task is passed over, and holds nothing back.
    later = create_task("tests.tasks.add", {"a": 10})
    assert [t.id for t in lifecycle.claim("w:2", limit=10)] == [later]


def test_limited_tasks_enqueued_together_are_claimed_up_to_the_room_left():
    # One bulk insert: every row has the same `created`, so no ordering tie may hide them all.
    create_tasks(
        {"task": "tests.tasks.add", "args": {"a": n}, "concurrency_key": f"k{n % 3}"}
        for n in range(12)
    )
    claimed = lifecycle.claim("w:1", limit=8, limited_limit=2)
    assert len(claimed) == 2 and len({t.concurrency_key for t in claimed}) == 2
    assert len(lifecycle.claim("w:2", limit=8, limited_limit=5)) == 1  # one key left free


def test_limited_tasks_are_claimed_only_for_idle_children():
    create_task("tests.tasks.add", {"a": 1}, concurrency_key="k")
    create_task("tests.tasks.add", {"a": 2})
    assert [t.concurrency_key for t in lifecycle.claim("w:1", limit=5, limited_limit=0)] == [None]
    assert [t.concurrency_key for t in lifecycle.claim("w:1", limit=5, limited_limit=1)] == ["k"]


def test_a_capped_queue_runs_at_most_its_cap_and_a_paused_one_nothing():
    queues.set_cap("mail", 2)
    queues.pause("reports")
    for n in range(4):
        create_task("tests.tasks.add", {"a": n}, queue="mail")
        create_task("tests.tasks.add", {"a": n}, queue="reports")
    create_task("tests.tasks.add", {"a": 0}, queue="default")
    controls = Controls.read()
    assert (controls.paused, controls.caps) == (frozenset({"reports"}), {"mail": 2})
    claimed = lifecycle.claim("w:1", limit=10)
    assert sorted(t.queue for t in claimed) == ["default", "mail", "mail"]
    assert lifecycle.claim("w:2", limit=10) == []
    queues.resume("reports")
    assert {t.queue for t in lifecycle.claim("w:2", limit=10)} == {"reports"}


def test_task_queue_command_lists_pauses_resumes_and_caps(capsys):
    create_task("tests.tasks.add", {"a": 1}, queue="mail")
    call_command("task_queue", "pause", "mail")
    call_command("task_queue", "cap", "mail", "3")
    call_command("task_queue", "list")
    out = capsys.readouterr().out
    assert "mail paused." in out and "mail: at most 3 running." in out
    assert "mail: 1 queued, 0 running, paused, cap 3" in out
    call_command("task_queue", "resume", "mail")
    call_command("task_queue", "cap", "mail", "none")
    assert Queue.objects.filter(name="mail", paused=False, max_running=None).exists()
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="whole number of 1 or more"):
        call_command("task_queue", "cap", "mail", "0")


# -- real workers ------------------------------------------------------------------------------


def spans(prefix: str) -> list[tuple]:
    """Start and end of each run of ``tests.tasks.span`` whose key starts with ``prefix``, as the
    tasks wrote them with this host's clock."""
    rows = Execution.objects.filter(key__startswith=prefix).values_list("key", "at")
    marks = dict(rows)
    keys = {key.rsplit(":", 1)[0] for key in marks}
    return sorted((marks[f"{key}:start"], marks[f"{key}:end"]) for key in keys)


def test_keyed_runs_never_overlap_across_workers_and_free_tasks_are_not_delayed(start_worker):
    for n in range(10):
        create_task("tests.tasks.span", {"key": f"k{n}", "seconds": 0.4}, concurrency_key="acct:7")
    for n in range(30):
        create_task("tests.tasks.span", {"key": f"f{n}", "seconds": 0.05})
    workers = [start_worker("--concurrency", "2", "--name", f"w{n}") for n in range(3)]
    wait_for(lambda: Task.objects.filter(status=Task.COMPLETED).count() == 40, 90)
    for proc in workers:
        proc.send_signal(signal.SIGTERM)
    keyed = spans("k")
    assert len(keyed) == 10
    for (_, end), (start, _) in pairwise(keyed):
        assert start >= end, "two tasks of one concurrency key ran at once"
    free = spans("f")
    # Free tasks flow beside the keyed ones: all done long before the keyed chain (4 s) is over.
    assert free[-1][1] < keyed[-1][1] - timedelta(seconds=1)


def test_a_pause_stops_claims_within_a_poll_and_running_tasks_finish(start_worker):
    running = create_task("tests.tasks.mark", {"key": "long", "seconds": 2}, queue="mail")
    proc = start_worker("--concurrency", "2")
    wait_for(lambda: Task.objects.filter(id=running, status=Task.PROGRESS).exists(), 30)
    queues.pause("mail")
    time.sleep(1.5)  # one read of the controls (1 s) and a poll
    waiting = create_task("tests.tasks.mark", {"key": "later"}, queue="mail")
    other = create_task("tests.tasks.mark", {"key": "other"}, queue="default")
    wait_for(lambda: Task.objects.filter(id=other, status=Task.COMPLETED).exists(), 30)
    wait_for(lambda: Task.objects.filter(id=running, status=Task.COMPLETED).exists(), 30)
    time.sleep(1)
    assert Task.objects.get(id=waiting).status == Task.QUEUED
    queues.resume("mail")
    wait_for(lambda: Task.objects.filter(id=waiting, status=Task.COMPLETED).exists(), 30)
    proc.send_signal(signal.SIGTERM)
