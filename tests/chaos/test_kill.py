"""Scenario 2 and the claim fence: workers killed, or frozen and woken up, in the middle of a run."""

from __future__ import annotations

import itertools
import json
import os
import signal
import time
from pathlib import Path

import pytest

from django_simple_queue.models import Task
from django_simple_queue.utils import build_task, create_task, create_tasks
from tests.chaos.conftest import (
    HEARTBEAT_INTERVAL,
    STALE_AFTER,
    can_fake_another_host,
    executions,
    report,
    size,
    unfinished,
)
from tests.conftest import wait_for
from tests.models import Execution

pytestmark = [pytest.mark.server_db, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def keys_of(task_ids: set) -> set[str]:
    rows = Task.objects.filter(id__in=task_ids).values_list("args", flat=True)
    return {json.loads(args)["key"] for args in rows}


def process_gone(pid: int) -> bool:
    """Whether ``pid`` has exited (a zombie waiting for its new parent to reap it counts)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


@pytest.mark.parametrize("elsewhere", [False, True], ids=["same-host", "other-host"])
def test_kill_9_of_a_worker_loses_nothing(fleet, elsewhere):
    """Same host: peers see the dead pid. Other host: only the stale heartbeat tells."""
    if elsewhere and not can_fake_another_host():
        pytest.skip("needs `unshare --uts` to run a worker under another host name")
    count = size(400, 4000)
    # In small batches: rows of one batch may share their `created` stamp, and the queue's order
    # (oldest first) is what puts the victim's rescued tasks ahead of the rest.
    for start in range(0, count, 20):
        create_tasks(
            build_task("tests.tasks.mark", {"key": f"k{i}", "seconds": 0.05}, max_attempts=3)
            for i in range(start, min(start + 20, count))
        )
    victim = fleet.start(concurrency=4, host="chaos-elsewhere" if elsewhere else None)
    peers = [fleet.start(concurrency=2) for _ in range(2)]
    wait_for(lambda: Execution.objects.count() >= count // 4, timeout=60)
    # Frozen first only to read exactly what it holds; then kill -9 of its process group.
    victim.signal_group(signal.SIGSTOP)
    in_flight = set(
        Task.objects.filter(status=Task.PROGRESS, worker_id=victim.name).values_list(
            "id", flat=True
        )
    )
    killed_at = time.monotonic()
    victim.signal_group(signal.SIGKILL)
    victim.wait(10)
    assert in_flight, "the victim held claims when it was killed"

    wait_for(
        lambda: not Task.objects.filter(id__in=in_flight, worker_id=victim.name).exists(),
        timeout=STALE_AFTER + 30,
        interval=0.05,
    )
    recovery = time.monotonic() - killed_at
    wait_for(lambda: unfinished() == 0, timeout=size(60, 300), interval=0.2)

    runs = executions()
    duplicates = {key for key, n in runs.items() if n > 1}
    assert len(runs) == count, "0 lost"
    assert Task.objects.filter(status=Task.COMPLETED).count() == count
    assert duplicates <= keys_of(in_flight), "duplicates only among the victim's tasks in flight"
    assert recovery <= STALE_AFTER + 5, f"recovery took {recovery:.1f}s"
    assert all(peer.alive() for peer in peers)
    report(
        f"2 kill -9 ({'other' if elsewhere else 'same'} host)",
        tasks=count,
        in_flight=len(in_flight),
        duplicates=len(duplicates),
        lost=count - len(runs),
        recovery_seconds=round(recovery, 2),
        stale_after=STALE_AFTER,
    )


def test_heartbeats_keep_a_long_task_from_being_rescued(fleet):
    task_id = create_task("tests.tasks.mark", {"key": "long", "seconds": 2 * STALE_AFTER})
    fleet.start()
    fleet.start()  # A peer that would rescue the task if its heartbeat stopped.
    wait_for(lambda: Execution.objects.filter(key="long").exists(), timeout=30)
    beats = set()
    while not Task.objects.filter(id=task_id, status=Task.COMPLETED).exists():
        beat = Task.objects.filter(id=task_id).values_list("heartbeat_at", flat=True).get()
        if beat is not None:
            beats.add(beat)
        time.sleep(0.05)
        assert len(beats) < 1000, "the task never finished"
    ordered = sorted(beats)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(ordered)]
    task = Task.objects.get(id=task_id)
    assert task.attempts == 1
    assert executions() == {"long": 1}
    assert len(ordered) >= 2 * STALE_AFTER / HEARTBEAT_INTERVAL - 3
    # Every HEARTBEAT_INTERVAL, give or take a busy machine.
    assert max(gaps) <= HEARTBEAT_INTERVAL + 0.5, gaps
    report(
        "heartbeat",
        interval=HEARTBEAT_INTERVAL,
        beats=len(ordered),
        max_gap_seconds=round(max(gaps), 2),
    )


def test_a_frozen_worker_that_wakes_up_cannot_overwrite_the_rerun(fleet):
    rerun = create_task("tests.tasks.mark", {"key": "rerun", "seconds": 1.0}, max_attempts=2)
    lost = create_task("tests.tasks.mark", {"key": "lost", "seconds": 1.0}, max_attempts=1)
    sleeper = fleet.start(concurrency=2)
    wait_for(lambda: Execution.objects.count() == 2, timeout=30)
    sleeper.signal_group(signal.SIGSTOP)
    frozen_at = time.monotonic()
    peer = fleet.start(concurrency=2)

    wait_for(
        lambda: Task.objects.filter(id=rerun, status=Task.COMPLETED).exists(),
        timeout=STALE_AFTER + 30,
    )
    rescued_after = time.monotonic() - frozen_at
    task = Task.objects.get(id=rerun)
    rerun_pid = Execution.objects.filter(key="rerun").order_by("id").last().pid
    assert task.attempts == 2, "the rescue counted as an attempt"
    assert task.worker_id == peer.name
    assert task.output == str(rerun_pid)
    gone = Task.objects.get(id=lost)
    assert gone.status == Task.FAILED
    assert f"Worker {sleeper.name} was lost: no heartbeat since" in gone.error
    assert "rescued at" in gone.error

    sleeper.signal_group(signal.SIGCONT)
    wait_for(lambda: "lost its claim" in sleeper.output() or "lost the claim" in sleeper.output())
    time.sleep(1)  # Whatever the woken worker was going to write, it has had time to try.
    task.refresh_from_db()
    assert task.status == Task.COMPLETED
    assert task.output == str(rerun_pid), "the rerun's result stands"
    assert task.attempts == 2
    gone.refresh_from_db()
    assert gone.status == Task.FAILED and "was lost" in gone.error
    assert executions() == {"rerun": 2, "lost": 1}
    assert sleeper.alive(), "the woken worker goes on"
    report("fence (frozen worker wakes up)", rescued_after_seconds=round(rescued_after, 2))


def test_children_stop_when_their_supervisor_is_killed(fleet):
    ids = [create_task("tests.tasks.mark", {"key": f"orphan{i}", "seconds": 60}) for i in range(2)]
    worker = fleet.start(concurrency=2)
    wait_for(lambda: Execution.objects.count() == 2, timeout=30)
    children = list(Execution.objects.values_list("pid", flat=True))
    killed_at = time.monotonic()
    os.kill(worker.pid, signal.SIGKILL)  # The supervisor alone, not its group.
    worker.wait(10)
    wait_for(lambda: all(process_gone(pid) for pid in children), timeout=10, interval=0.02)
    stopped_after = time.monotonic() - killed_at
    assert stopped_after < 2

    # A peer on this host sees the dead pid: the original monitor's verdict, at once.
    fleet.start()
    wait_for(lambda: Task.objects.filter(id__in=ids, status=Task.FAILED).count() == 2, timeout=30)
    for task in Task.objects.filter(id__in=ids):
        assert task.error.endswith("no longer running")
        assert task.worker_pid is None
    report("supervisor SIGKILL", children_stopped_after_seconds=round(stopped_after, 2))
