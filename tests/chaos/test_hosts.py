"""Many hosts against one PostgreSQL (tests/chaos/hosts.py): a host cut off and coming back, the
database restarted while one is cut off, clocks that disagree, more workers than connections.

Every run is counted through the rows the tasks write themselves (``tests.models.Execution``).
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import time
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest

from django_simple_queue import db, schedules
from django_simple_queue.models import Task, Worker
from django_simple_queue.utils import build_task, create_tasks
from tests.chaos.conftest import (
    HEARTBEAT_INTERVAL,
    STALE_AFTER,
    UNMEASURED,
    Fleet,
    WorkerProcess,
    executions,
    report,
    size,
    terminate_connections,
    unfinished,
)
from tests.chaos.hosts import Host, Network, start_worker
from tests.conftest import wait_for
from tests.factories import ScheduleFactory
from tests.models import Execution

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# A cut-off worker that is back and finds a run's claim taken stops that run.
LOST_CLAIM = re.compile(r"^lost the claim on ", re.MULTILINE)
# An outcome written late, after its claim was taken: the fenced UPDATE wrote nothing.
FENCED = re.compile(r": lost its claim in ", re.MULTILINE)
LONG_SECONDS = 6.0
# Longer than STALE_AFTER + one heartbeat, so that its claims are rescued while it is away.
CUT_SECONDS = STALE_AFTER + 2.0
AFTER = size(60, 600)
UNAVAILABLE = re.compile(r"^database unavailable \(", re.MULTILINE)
BACK = re.compile(r"^database back after ", re.MULTILINE)


def enqueue(prefix: str, count: int, seconds: float, **options: object) -> None:
    create_tasks(
        [
            build_task("tests.tasks.mark", {"key": f"{prefix}{i}", "seconds": seconds}, **options)
            for i in range(count)
        ]
    )


def key(task: Task) -> str:
    return str(json.loads(task.args or "{}")["key"])


def rescue_times(task: Task, host: Host) -> list[datetime]:
    """When ``task``'s claims were taken back from ``host``'s lost worker (database clock)."""
    return [
        datetime.fromisoformat(entry["finished"])
        for entry in task.attempt_log or []
        if entry["outcome"] == "retrying"
        and entry["worker"] == host.name
        and " was lost" in (entry["error"] or "")
    ]


def check_every_task_once(runs: Counter[str], tasks: Any = None) -> tuple[int, int]:
    """Every task (of ``tasks``, else all) Completed, once, and run at most once more per rescue:
    (tasks, rescued)."""
    tasks = list(Task.objects.all() if tasks is None else tasks)
    rescued = 0
    for task in tasks:
        log = task.attempt_log or []
        outcomes = [entry["outcome"] for entry in log]
        assert task.status == Task.COMPLETED, (key(task), task.status, log)
        assert outcomes.count("completed") == 1 and outcomes[-1] == "completed", log
        assert task.attempts == len(log), log
        taken_back = sum(" was lost" in (entry["error"] or "") for entry in log)
        rescued += bool(taken_back)
        assert 1 <= runs[key(task)] <= 1 + taken_back, (key(task), runs[key(task)], log)
    return len(tasks), rescued


def check_storm(runs: Counter[str]) -> tuple[int, int, int]:
    """Every task ended, none ran twice, and a task that failed did so only because its child
    found no free connection on every attempt: (tasks, rescued, failed)."""
    failed = 0
    for task in Task.objects.all():
        log = task.attempt_log or []
        if task.status == Task.FAILED:
            failed += 1
            assert all("too many clients" in (entry["error"] or "") for entry in log), log
            assert runs[key(task)] == 0, log
            continue
        assert task.status == Task.COMPLETED, (key(task), task.status, log)
    tasks = Task.objects.filter(status=Task.COMPLETED)
    total, rescued = check_every_task_once(runs, tasks)
    return total + failed, rescued, failed


def worker_row(host: Host) -> Worker | None:
    return Worker.objects.filter(name=host.name).first()


def stop(workers: list[WorkerProcess], *, clean: bool = True) -> None:
    """SIGTERM, and (``clean``) a clean exit; faketime's wrapper is not one that exits cleanly."""
    for worker in workers:
        worker.signal_group(signal.SIGTERM)
    for worker in workers:
        code = worker.wait(60)
        if clean:
            assert code == 0, worker.output()[-3000:]


def running_long(host: Host) -> bool:
    """Whether ``host`` runs a long task that started (wrote its row) within the last second."""
    recent = Task.objects.filter(
        worker_id=host.name,
        status=Task.PROGRESS,
        args__contains='"long',
        started_at__gte=db.now() - timedelta(seconds=1),
    )
    keys = {key(task) for task in recent}
    return bool(keys) and Execution.objects.filter(key__in=keys).exists()


def test_partition_rescues_fences_and_rejoins(network: Network, fleet: Fleet):
    victim = network.hosts[0]
    shorts, longs = size(5000, 50000), size(50, 500)
    workers = {host: start_worker(fleet, host) for host in network.hosts}
    # Long tasks among the short ones, so that each host has some of both in hand.
    enqueue("long", longs, LONG_SECONDS, max_attempts=5)
    enqueue("short", shorts, 0.0, max_attempts=5)
    # Cut when the victim has just started a long task: it is still running when the host is back.
    wait_for(lambda: running_long(victim), timeout=120, interval=0.02)
    cut_at = db.now()
    victim.cut()
    held = set(
        Task.objects.filter(worker_id=victim.name, status=Task.PROGRESS).values_list(
            "id", flat=True
        )
    )
    time.sleep(CUT_SECONDS)
    # While it is away: its row is lost, and all it held is back in other hands.
    row = worker_row(victim)
    assert row is not None and row.last_seen < db.now() - timedelta(seconds=STALE_AFTER)
    assert not Task.objects.filter(
        id__in=held, worker_id=victim.name, status=Task.PROGRESS
    ).exists()
    victim.heal()
    healed_at, healed = db.now(), time.monotonic()
    wait_for(
        lambda: (r := worker_row(victim)) and r.last_seen > healed_at, timeout=60, interval=0.05
    )
    rejoined = time.monotonic() - healed
    wait_for(lambda: unfinished() == 0, timeout=size(120, 900), interval=0.2)
    # New work after it is back: with its peers gone, the victim takes all of it; killed and
    # started again, it registers under its name again and goes on.
    peers = [workers[host] for host in network.hosts if host is not victim]
    stop(peers)
    enqueue("after", AFTER, 0.0, max_attempts=5)
    wait_for(lambda: unfinished() == 0, timeout=size(60, 300), interval=0.1)
    took_new = Task.objects.filter(args__contains='"after', worker_id=victim.name).count()
    out = workers[victim].output()
    workers[victim].signal_group(signal.SIGKILL)
    workers[victim].wait(10)
    workers[victim] = start_worker(fleet, victim)
    enqueue("again", 1, 0.0)
    wait_for(lambda: unfinished() == 0, timeout=30)
    assert Task.objects.get(args__contains='"again').worker_id == victim.name

    runs = executions()
    total, rescued = check_every_task_once(runs)
    assert total == shorts + longs + AFTER + 1
    rescued_from_victim = [
        (task, when)
        for task in Task.objects.filter(id__in=held)
        for when in rescue_times(task, victim)
    ]
    assert {task.id for task, _ in rescued_from_victim} == held
    rescue_seconds = max((when - cut_at).total_seconds() for _, when in rescued_from_victim)
    stopped_runs, fenced = len(LOST_CLAIM.findall(out)), len(FENCED.findall(out))
    extra_runs = sum(runs.values()) - total
    report(
        "hosts: partition",
        tasks=total,
        runs=sum(runs.values()),
        extra_runs=extra_runs,
        rescued=rescued,
        held_at_cut=len(held),
        cut_seconds=CUT_SECONDS,
        rescue_seconds=round(rescue_seconds, 2),
        rejoin_seconds=round(rejoined, 2),
        stopped_runs=stopped_runs,
        fenced_outcomes=fenced,
        new_tasks_taken_by_victim=took_new,
    )
    assert extra_runs <= rescued
    assert rescue_seconds <= STALE_AFTER + HEARTBEAT_INTERVAL + 1.0
    # What it held either still ran when it was back (stopped: its claim was gone) or had
    # finished meanwhile (its late outcome fenced): which, depends on how long it took to notice.
    assert stopped_runs + fenced >= 1, out[-3000:]
    assert took_new == AFTER
    for worker in workers.values():
        assert "Traceback" not in worker.output(), worker.output()[-3000:]
    stop([workers[victim]])


def test_a_cut_off_worker_notices_and_obeys_sigterm(network: Network, fleet: Fleet):
    """A link that is down makes a worker's database calls hang, not fail: the worker must still
    notice (and go offline, looking after its children) and stop when told to."""
    host = network.hosts[1]
    enqueue("cut", 1, 60.0)
    worker = start_worker(fleet, host, env={"DSQ_SHUTDOWN_GRACE": "1"})
    wait_for(lambda: Task.objects.filter(status=Task.PROGRESS).exists(), timeout=30)
    host.cut()
    try:
        wait_for(lambda: UNAVAILABLE.search(worker.output()), timeout=STALE_AFTER + 5)
        noticed = time.monotonic()
        worker.signal_group(signal.SIGTERM)
        assert worker.wait(15) == 0
        exited = time.monotonic() - noticed
    finally:
        host.heal()
    out = worker.output()
    assert "Traceback" not in out, out
    report("hosts: cut-off worker", exit_after_sigterm_seconds=round(exited, 2))


def test_short_partition_rescues_nothing(network: Network, fleet: Fleet):
    victim = network.hosts[0]
    workers = [start_worker(fleet, host) for host in network.hosts]
    enqueue("brief", size(30, 300), 1.0, max_attempts=5)
    wait_for(
        lambda: Task.objects.filter(worker_id=victim.name, status=Task.PROGRESS).exists(),
        timeout=30,
    )
    before = Task.objects.filter(worker_id=victim.name, status=Task.COMPLETED).count()
    victim.cut()
    time.sleep(STALE_AFTER / 2)
    victim.heal()
    wait_for(lambda: unfinished() == 0, timeout=size(60, 300), interval=0.2)
    runs = executions()
    total, rescued = check_every_task_once(runs)
    after = Task.objects.filter(worker_id=victim.name, status=Task.COMPLETED).count()
    report(
        "hosts: short partition",
        tasks=total,
        runs=sum(runs.values()),
        rescued=rescued,
        cut_seconds=STALE_AFTER / 2,
        victim_completed_after_cut=after - before,
    )
    assert rescued == 0
    assert sum(runs.values()) == total
    assert after > before, "the host carried on once its link was back"
    stop(workers)


def test_database_restart_while_a_host_is_cut_off(network: Network, fleet: Fleet):
    victim = network.hosts[2]
    workers = [start_worker(fleet, host) for host in network.hosts]
    enqueue("slow", size(20, 200), 1.0, max_attempts=5)
    enqueue("fast", size(1000, 10000), 0.0, max_attempts=5)
    wait_for(
        lambda: Task.objects.filter(worker_id=victim.name, status=Task.PROGRESS).exists(),
        timeout=60,
    )
    victim.cut()
    # Failover-like: every connection dropped at once, then the server away for a while.
    terminate_connections()
    restarted = network.restart_database(down_for=2.0)
    time.sleep(max(STALE_AFTER + 1.0 - restarted, 0.0))
    victim.heal()
    wait_for(lambda: unfinished() == 0, timeout=size(120, 600), interval=0.2)
    runs = executions()
    total, rescued = check_every_task_once(runs)
    logs = [worker.output() for worker in workers]
    report(
        "hosts: database restart while a host is cut off",
        tasks=total,
        runs=sum(runs.values()),
        rescued=rescued,
        restart_seconds=round(restarted, 2),
        outages_logged=[len(UNAVAILABLE.findall(out)) for out in logs],
    )
    assert total == size(20, 200) + size(1000, 10000)
    assert sum(runs.values()) - total <= rescued
    for worker, out in zip(workers, logs, strict=True):
        assert worker.alive(), out[-3000:]
        assert "Traceback" not in out, out[-3000:]
        assert len(UNAVAILABLE.findall(out)) == len(BACK.findall(out)) >= 1, out[-3000:]
    stop(workers)


def test_clocks_that_disagree(network: Network, fleet: Fleet):
    if shutil.which("faketime") is None:
        pytest.skip("needs faketime (apt install faketime)")
    start = db.now() + timedelta(seconds=3)
    plans = [
        ScheduleFactory(
            task="tests.tasks.mark",
            args=json.dumps({"key": f"tick{i}"}),
            interval=1,
            next_run_at=start,
            misfire=schedules.ALL,
        )
        for i in range(5)
    ]
    enqueue("held", size(6, 60), 4.0, max_attempts=5)
    delayed_until = db.now() + timedelta(seconds=6)
    enqueue("delayed", size(20, 200), 0.0, max_attempts=5, run_after=delayed_until)
    clocks = ["+90s", "-90s", "+0s"]
    workers = [
        start_worker(fleet, host, clock=clock)
        for host, clock in zip(network.hosts, clocks, strict=True)
    ]
    time.sleep(size(12, 60))
    for plan in plans:
        plan.refresh_from_db()
        plan.enabled = False
        plan.save(update_fields=["enabled"])
    wait_for(lambda: unfinished() == 0, timeout=size(60, 300), interval=0.2)
    stop(workers, clean=False)
    runs = executions()
    total, rescued = check_every_task_once(runs, Task.objects.filter(schedule__isnull=True))
    started = [task.started_at for task in Task.objects.filter(args__contains='"delayed')]
    early = sum(when < delayed_until for when in started)
    late = max((when - delayed_until).total_seconds() for when in started)
    ticks_lost = ticks_doubled = 0
    for plan in plans:
        made = list(
            Task.objects.filter(schedule=plan)
            .order_by("scheduled_for")
            .values_list("scheduled_for", flat=True)
        )
        assert runs[f"tick{plans.index(plan)}"] == len(made), "each tick's task ran once"
        ticks_doubled += len(made) - len(set(made))
        ticks_lost += int((made[-1] - made[0]).total_seconds()) + 1 - len(set(made))
        assert made[0] == start
    ran_by = Counter(Task.objects.values_list("worker_id", flat=True))
    report(
        "hosts: clocks 90 s apart",
        tasks=total,
        runs=sum(runs.values()),
        rescued=rescued,
        delayed_started_early=early,
        delayed_latest_start_seconds=round(late, 2),
        ticks=Task.objects.filter(schedule__isnull=False).count(),
        ticks_lost=ticks_lost,
        ticks_doubled=ticks_doubled,
        tasks_per_host=dict(ran_by),
    )
    assert rescued == 0, "no false rescue"
    assert sum(runs[key(task)] for task in Task.objects.filter(schedule__isnull=True)) == total
    assert early == 0 and late < 2.0
    assert (ticks_lost, ticks_doubled) == (0, 0)
    assert len(ran_by) == 3, "every host did some of the work"


def test_connection_storm(network: Network, fleet: Fleet):
    network.restart_database(max_connections=40)
    try:
        per_host = 10
        workers = [
            start_worker(fleet, host, name=f"{host.name}-{i}", env=UNMEASURED)
            for host in network.hosts
            for i in range(per_host)
        ]
        enqueue("storm", size(600, 6000), 0.02, max_attempts=20)
        wait_for(lambda: unfinished() == 0, timeout=size(180, 900), interval=0.5)
        runs = executions()
        total, rescued, starved = check_storm(runs)
        logs = [worker.output() for worker in workers]
        waited = sum(bool(UNAVAILABLE.search(out)) for out in logs)
        report(
            "hosts: connection storm",
            workers=len(workers),
            max_connections=40,
            tasks=total,
            runs=sum(runs.values()),
            rescued=rescued,
            failed_for_want_of_a_connection=starved,
            workers_that_waited=waited,
            attempts=sum(Task.objects.values_list("attempts", flat=True)),
        )
        for worker, out in zip(workers, logs, strict=True):
            assert worker.alive(), out[-3000:]
            assert "Traceback" not in out, out[-3000:]
        assert waited > 0, "more workers than connections: some had to wait"
        stop(workers)
    finally:
        fleet.stop()
        network.restart_database()
