"""The worker, run as a real ``manage.py task_worker`` process."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from django_simple_queue.models import Task, Worker
from django_simple_queue.utils import create_task
from tests.conftest import ROOT, manage, process_running, wait_for, worker_env
from tests.factories import TaskFactory
from tests.models import Execution

pytestmark = pytest.mark.django_db(transaction=True)


def test_runs_a_task_and_stores_its_return_value(run_worker):
    task_id = create_task("tests.tasks.add", {"a": 2, "b": 3})
    out = run_worker()
    task = Task.objects.get(id=task_id)
    assert task.status == Task.COMPLETED, task.error
    assert task.output == "5"
    assert task.attempts == 1
    assert task.started_at <= task.finished_at
    assert task.worker_id.endswith(tuple("0123456789"))
    assert f"claimed {task_id}" in out
    assert f"finished {task_id}" in out


def test_generator_output_is_streamed_and_joined(run_worker):
    task_id = create_task("tests.tasks.count_up", {"n": 4})
    run_worker()
    assert Task.objects.get(id=task_id).output == "0;1;2;3;"


def test_generator_yields_of_any_type_become_text(run_worker):
    task_id = create_task("tests.tasks.yield_objects", {})
    run_worker()
    task = Task.objects.get(id=task_id)
    assert task.status == Task.COMPLETED, task.error
    assert task.output == "1{'a': 1}Nonebytes"


def test_coroutine_function_runs_to_completion(run_worker):
    task_id = create_task("tests.tasks.async_add", {"a": 20, "b": 22})
    run_worker()
    assert Task.objects.get(id=task_id).output == "42"


def test_stdout_stderr_logging_and_raw_fd_go_to_log(run_worker):
    task_id = create_task("tests.tasks.noisy", {})
    run_worker()
    task = Task.objects.get(id=task_id)
    assert task.output == "done"
    for line in ("to stdout", "to stderr", "a log record", "an info record", "raw fd write"):
        assert line in task.log


def test_exception_fails_the_task_with_its_traceback_and_the_next_task_runs(run_worker):
    bad = create_task("tests.tasks.fail", {"message": "kaboom"})
    good = create_task("tests.tasks.add", {"a": 1})
    run_worker()
    bad_task = Task.objects.get(id=bad)
    assert bad_task.status == Task.FAILED
    assert "ValueError('kaboom')" in bad_task.error
    assert "Traceback" in bad_task.error
    assert Task.objects.get(id=good).status == Task.COMPLETED
    assert bad_task.output == "", "what it produced before the error: nothing, not None"


def test_the_console_line_of_a_failure_names_its_error(run_worker):
    bad = create_task("tests.tasks.fail", {"message": "kaboom"})
    flaky = create_task("tests.tasks.flaky", {"key": "console"}, max_attempts=2)
    out = run_worker()
    assert re.search(
        rf"finished {bad} tests.tasks.fail: Failed in [\d.]+s: ValueError: kaboom$", out, re.M
    )
    assert re.search(
        rf"finished {flaky} tests.tasks.flaky: Failed in [\d.]+s, retry queued: \w+Error: ", out
    ), out


def test_an_exception_that_cannot_be_unpickled_fails_only_its_own_task(run_worker):
    # Short tasks, so that children hold queues of them: an outcome read for the wrong task would
    # shift every later outcome.
    before = [create_task("tests.tasks.add", {"a": n}) for n in range(20)]
    bad = create_task("tests.tasks.fail_unpicklably", {"code": 7})
    after = [create_task("tests.tasks.add", {"a": n}) for n in range(20, 40)]
    run_worker("--concurrency", "2")
    bad_task = Task.objects.get(id=bad)
    assert bad_task.status == Task.FAILED
    assert "TwoPartError" in bad_task.error and "Traceback" in bad_task.error
    for n, task_id in enumerate(before + after):
        task = Task.objects.get(id=task_id)
        assert (task.status, task.output) == (Task.COMPLETED, str(n + 1))


@pytest.mark.parametrize(
    ("task", "args", "message"),
    [
        ("tests.nosuchmodule.task", "{}", "cannot be imported"),
        ("tests.tasks.missing", "{}", "has no attribute 'missing'"),
        ("tests.tasks.NOT_CALLABLE", "{}", "is not callable"),
        ("tests.tasks.add", None, "missing required argument 'a'"),
        ("tests.tasks.add", "not json", "not valid JSON"),
        ("tests.tasks.add", "[1, 2]", "must be a JSON object"),
        ("tests.tasks.add", '{"a": 1, "zzz": 2}', "unexpected argument 'zzz'"),
        ("os.system", '{"command": "true"}', "not in the allowed list"),
    ],
)
def test_poison_rows_fail_with_a_clear_error(run_worker, task, args, message):
    poison = TaskFactory(task=task, args=args, max_attempts=3)
    after = create_task("tests.tasks.add", {"a": 1})
    run_worker()
    poison.refresh_from_db()
    assert poison.status == Task.FAILED
    assert message in poison.error
    assert poison.attempts == 1, "a permanent error is not retried"
    assert Task.objects.get(id=after).status == Task.COMPLETED


def test_process_exit_and_kill_fail_the_task_and_worker_survives(run_worker):
    exited = create_task("tests.tasks.exit_process", {"code": 7})
    killed = create_task("tests.tasks.kill_self", {})
    after = create_task("tests.tasks.add", {"a": 1})
    run_worker()
    assert "exited with code 7" in Task.objects.get(id=exited).error
    assert "killed by SIGKILL" in Task.objects.get(id=killed).error
    assert Task.objects.get(id=exited).status == Task.FAILED
    assert Task.objects.get(id=after).status == Task.COMPLETED


def test_timeout_stops_the_child_and_fails_the_task(run_worker):
    slow = create_task("tests.tasks.sleep", {"seconds": 60}, timeout=1)
    after = create_task("tests.tasks.add", {"a": 1})
    started = time.monotonic()
    run_worker()
    assert time.monotonic() - started < 20
    task = Task.objects.get(id=slow)
    assert task.status == Task.FAILED
    assert "timed out after 1 seconds" in task.error
    assert Task.objects.get(id=after).status == Task.COMPLETED


def test_output_larger_than_the_limit_is_truncated_visibly(run_worker):
    task_id = create_task("tests.tasks.print_lots", {"megabytes": 50})
    run_worker(env={"DSQ_MAX_OUTPUT_SIZE": "1048576"})
    task = Task.objects.get(id=task_id)
    assert task.status == Task.COMPLETED
    assert task.output == "printed"
    assert len(task.log.encode()) < 1_100_000
    assert "[truncated: more than 1048576 bytes]" in task.log


def test_retries_until_success_and_keeps_every_attempts_error(run_worker):
    task_id = create_task("tests.tasks.flaky", {"key": "f1"}, max_attempts=3)
    console = run_worker()
    assert f"finished {task_id} tests.tasks.flaky: Failed in " in console
    assert console.count("retry queued") == 1
    assert f"finished {task_id} tests.tasks.flaky: Completed in " in console
    task = Task.objects.get(id=task_id)
    assert task.status == Task.COMPLETED
    assert task.attempts == 2
    assert Execution.objects.filter(key="f1").count() == 2
    outcomes = [entry["outcome"] for entry in task.attempt_log]
    assert outcomes == ["retrying", "completed"]
    assert "failing attempt for f1" in task.attempt_log[0]["error"]


def test_priority_then_age_orders_the_queue(run_worker):
    low = create_task("tests.tasks.record", {"key": "low"})
    high = create_task("tests.tasks.record", {"key": "high"}, priority=10)
    older = create_task("tests.tasks.record", {"key": "mid1"}, priority=5)
    newer = create_task("tests.tasks.record", {"key": "mid2"}, priority=5)
    run_worker()
    order = list(Execution.objects.order_by("id").values_list("key", flat=True))
    assert order == ["high", "mid1", "mid2", "low"]
    assert {low, high, older, newer} == set(
        Task.objects.filter(status=Task.COMPLETED).values_list("id", flat=True)
    )


def test_queue_option_runs_only_those_queues(run_worker):
    mine = create_task("tests.tasks.add", {"a": 1}, queue="emails")
    other = create_task("tests.tasks.add", {"a": 1}, queue="reports")
    run_worker("--queue", "emails")
    assert Task.objects.get(id=mine).status == Task.COMPLETED
    assert Task.objects.get(id=other).status == Task.QUEUED


def test_run_after_defers_a_task(run_worker):
    from datetime import timedelta

    from django.utils import timezone

    later = create_task("tests.tasks.add", {"a": 1}, run_after=timezone.now() + timedelta(hours=1))
    run_worker()
    assert Task.objects.get(id=later).status == Task.QUEUED


def test_progress_is_recorded(run_worker):
    task_id = create_task("tests.tasks.with_progress", {})
    run_worker()
    task = Task.objects.get(id=task_id)
    assert task.output == "ab"
    assert task.progress == 1.0
    assert task.progress_message == "three quarters"


def test_cancel_of_a_running_task_stops_its_child(start_worker):
    from django_simple_queue import lifecycle

    task_id = create_task("tests.tasks.sleep", {"seconds": 60})
    proc = start_worker()
    wait_for(lambda: Task.objects.filter(id=task_id, status=Task.PROGRESS).exists())
    lifecycle.cancel(Task.objects.filter(id=task_id))
    started = time.monotonic()
    wait_for(lambda: Task.objects.filter(id=task_id, status=Task.CANCELLED).exists(), timeout=15)
    assert time.monotonic() - started < 10
    assert proc.poll() is None, "the worker keeps going"


def test_cancelling_one_task_of_a_claim_leaves_its_batch_mates_running(start_worker):
    """One claim takes both tasks with one token: the cancel must stop only the one asked for."""
    from django_simple_queue import lifecycle

    for _ in range(2):
        first = create_task("tests.tasks.sleep", {"seconds": 4})
        second = create_task("tests.tasks.sleep", {"seconds": 4})
        proc = start_worker("--concurrency", "2")
        wait_for(lambda: Task.objects.filter(status=Task.PROGRESS).count() == 2, timeout=30)
        tokens = set(Task.objects.filter(id__in=[first, second]).values_list("claim_token"))
        assert len(tokens) == 1, "both tasks came in one claim"
        lifecycle.cancel(Task.objects.filter(id=first))
        wait_for(lambda t=first: Task.objects.get(id=t).status == Task.CANCELLED, timeout=20)
        wait_for(lambda t=second: Task.objects.get(id=t).is_finished, timeout=30)
        assert Task.objects.get(id=second).status == Task.COMPLETED
        proc.terminate()
        proc.wait(20)


def test_sigterm_lets_running_task_finish_then_exits_0(start_worker):
    task_id = create_task("tests.tasks.sleep", {"seconds": 1.5})
    queued = create_task("tests.tasks.add", {"a": 1}, priority=-1)
    proc = start_worker()
    wait_for(lambda: Task.objects.filter(id=task_id, status=Task.PROGRESS).exists())
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    assert Task.objects.get(id=task_id).status == Task.COMPLETED
    assert Task.objects.get(id=queued).status == Task.QUEUED, "no claim after the signal"


def test_second_sigterm_requeues_running_task_at_once(start_worker):
    task_id = create_task("tests.tasks.sleep", {"seconds": 60})
    proc = start_worker()
    wait_for(lambda: Task.objects.filter(id=task_id, status=Task.PROGRESS).exists())
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=20)
    assert time.monotonic() - started < 15, "not after the 30s grace"
    assert proc.returncode == 0
    task = Task.objects.get(id=task_id)
    assert task.status == Task.QUEUED
    assert task.attempts == 0


def test_max_tasks_exits_after_n(start_worker):
    ids = [create_task("tests.tasks.add", {"a": i}) for i in range(3)]
    proc = start_worker("--max-tasks", "2")
    proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert Task.objects.filter(id__in=ids, status=Task.COMPLETED).count() == 2


def test_concurrency_and_fresh_process_per_task(run_worker):
    ids = [create_task("tests.tasks.record", {"key": f"c{i}"}) for i in range(6)]
    run_worker("--concurrency", "3", "--max-tasks-per-child", "1")
    assert Task.objects.filter(id__in=ids, status=Task.COMPLETED).count() == 6
    assert Execution.objects.count() == 6


def test_long_tasks_behind_short_ones_start_as_soon_as_they_are_claimed(run_worker):
    # While tasks are short, a worker claims ahead and gives each child a queue of them. A long
    # task among them must not be held in such a queue: it waits for a child with nothing to run
    # (the rules: tests/test_prefetch.py). Two children; each long task writes an Execution row
    # as it starts.
    seconds = 2.0
    short = [create_task("tests.tasks.add", {"a": n}) for n in range(40)]
    long = [
        create_task("tests.tasks.mark", {"key": f"long{n}", "seconds": seconds}) for n in range(4)
    ]
    short += [create_task("tests.tasks.add", {"a": n}) for n in range(40)]
    run_worker("--concurrency", "2")
    assert Task.objects.filter(id__in=short + long, status=Task.COMPLETED).count() == 84
    for n, task_id in enumerate(long):
        claimed = Task.objects.get(id=task_id).started_at
        ran = Execution.objects.get(key=f"long{n}").at
        waited = (ran - claimed).total_seconds()
        assert waited < 0.75 * seconds, f"long{n} waited {waited:.2f}s behind another long task"


def test_no_short_task_waits_behind_a_long_one(run_worker):
    # The long task outlasts the short ones by far, even on a busy machine.
    before = [create_task("tests.tasks.add", {"a": n}) for n in range(120)]
    long = create_task("tests.tasks.sleep", {"seconds": 4})
    after = [create_task("tests.tasks.add", {"a": n}) for n in range(120)]
    run_worker("--concurrency", "3")
    long_end = Task.objects.get(id=long).finished_at
    short_ends = Task.objects.filter(id__in=before + after).values_list("finished_at", flat=True)
    assert len(short_ends) == 240 and max(short_ends) < long_end


def test_a_task_of_another_path_is_not_held_back_by_short_ones(start_worker):
    # While children hold queues of short tasks, a claim ahead may bring another kind of task:
    # it goes back to the queue at once, and runs as soon as a child is free, in its turn.
    short = [create_task("tests.tasks.sleep", {"seconds": 0.01}) for _ in range(400)]
    proc = start_worker("--burst", "-v", "0")
    wait_for(lambda: Task.objects.filter(id__in=short, status=Task.COMPLETED).count() >= 30)
    urgent = create_task("tests.tasks.mark", {"key": "urgent"}, priority=10)
    proc.communicate(timeout=60)
    ran_at = Execution.objects.get(key="urgent").at
    still_queued_then = Task.objects.filter(id__in=short, started_at__gt=ran_at).count()
    assert Task.objects.get(id=urgent).status == Task.COMPLETED
    assert still_queued_then > 200, "it ran long before the short tasks were all claimed"


def test_a_named_worker_records_its_name_on_its_tasks(run_worker):
    task_id = create_task("tests.tasks.add", {"a": 1})
    out = run_worker("--name", "blue-1")
    assert Task.objects.get(id=task_id).worker_id == "blue-1"
    assert "worker blue-1 started" in out


def test_verbosity_zero_is_silent(run_worker):
    create_task("tests.tasks.add", {"a": 1})
    assert run_worker("-v", "0").strip() == ""


def test_signals_fire_as_the_originals_do(run_worker, tmp_path):
    log = tmp_path / "signals.log"
    ok = create_task("tests.tasks.count_up", {"n": 2})
    bad = create_task("tests.tasks.fail", {})
    run_worker(env={"DSQ_SIGNAL_LOG": str(log)})
    lines = [line.split(" ", 1)[1] for line in log.read_text().splitlines()]
    assert lines == [
        f"before_job {ok} In progress",
        f"before_loop {ok} 0",
        f"after_loop {ok} 0 0;",
        f"before_loop {ok} 1",
        f"after_loop {ok} 1 1;",
        f"on_success {ok} Completed",
        f"before_job {bad} In progress",
        f"on_failure {bad} Failed ValueError",
    ]


def test_children_inherit_no_database_connection_and_can_use_the_orm(run_worker):
    state = create_task("tests.tasks.connection_state", {})
    orm = create_task("tests.tasks.uses_orm", {})
    run_worker("--concurrency", "2")
    assert Task.objects.get(id=state).output == "closed"
    orm_task = Task.objects.get(id=orm)
    assert orm_task.status == Task.COMPLETED, orm_task.error
    assert orm_task.output == "2"


def _children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _pid_in(path: Path) -> int:
    wait_for(lambda: path.exists() and path.read_text().isdigit())
    return int(path.read_text())


needs_proc = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="reads process states in /proc"
)


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads the process tree in /proc")
def test_worker_survives_the_loss_of_its_fork_server(start_worker, tmp_path):
    """kill -9 of the fork server: its children die with it (and what their tasks started), their
    tasks fail, work goes on."""
    doomed = create_task("tests.tasks.start_sleep", {"pid_file": str(tmp_path / "pid")})
    worker = start_worker("-v", "2")
    sleep_pid = _pid_in(tmp_path / "pid")
    (server,) = _children(worker.pid)
    os.kill(server, signal.SIGKILL)

    wait_for(lambda: Task.objects.get(id=doomed).status == Task.FAILED)
    assert "was killed with the worker's fork server" in Task.objects.get(id=doomed).error
    wait_for(lambda: not process_running(sleep_pid))
    after = create_task("tests.tasks.add", {"a": 1, "b": 2})
    wait_for(lambda: Task.objects.get(id=after).status == Task.COMPLETED)
    assert worker.poll() is None, "the worker went on"
    (new_server,) = _children(worker.pid)
    assert new_server != server


def test_a_worker_whose_console_reader_is_gone_works_on_and_exits_0(transactional_db, tmp_path):
    # `task_worker | tee log`, then Ctrl-C: the signal stops tee too, and the worker's next line
    # has nowhere to go. It must not fail for that.
    errors = tmp_path / "stderr"
    with errors.open("w") as stderr:
        proc = subprocess.Popen(
            manage("task_worker"),
            env=worker_env(),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=stderr,
            start_new_session=True,
        )
    assert proc.stdout is not None
    proc.stdout.close()
    try:
        task_id = create_task("tests.tasks.add", {"a": 1})
        wait_for(lambda: Task.objects.filter(id=task_id, status=Task.COMPLETED).exists())
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, errors.read_text()
    assert "Traceback" not in errors.read_text()


@needs_proc
def test_cancel_stops_what_the_task_started(start_worker, tmp_path):
    from django_simple_queue import lifecycle

    task_id = create_task("tests.tasks.start_sleep", {"pid_file": str(tmp_path / "pid")})
    proc = start_worker()
    sleep_pid = _pid_in(tmp_path / "pid")
    lifecycle.cancel(Task.objects.filter(id=task_id))
    wait_for(lambda: Task.objects.filter(id=task_id, status=Task.CANCELLED).exists(), timeout=30)
    wait_for(lambda: not process_running(sleep_pid), timeout=15)
    assert proc.poll() is None, "the worker keeps going"


@needs_proc
def test_timeout_stops_what_the_task_started(run_worker, tmp_path):
    task_id = create_task("tests.tasks.start_sleep", {"pid_file": str(tmp_path / "pid")}, timeout=1)
    run_worker()
    task = Task.objects.get(id=task_id)
    assert task.status == Task.FAILED
    assert "timed out after 1 seconds" in task.error
    wait_for(lambda: not process_running(int((tmp_path / "pid").read_text())), timeout=15)


@needs_proc
def test_shutdown_after_the_grace_stops_what_the_task_started(start_worker, tmp_path):
    task_id = create_task("tests.tasks.start_sleep", {"pid_file": str(tmp_path / "pid")})
    proc = start_worker(env={"DSQ_SHUTDOWN_GRACE": "1"})
    sleep_pid = _pid_in(tmp_path / "pid")
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert Task.objects.get(id=task_id).status == Task.QUEUED
    wait_for(lambda: not process_running(sleep_pid), timeout=15)


@needs_proc
def test_killing_the_supervisor_stops_what_its_tasks_started(start_worker, tmp_path):
    create_task("tests.tasks.start_sleep", {"pid_file": str(tmp_path / "pid")})
    proc = start_worker()
    sleep_pid = _pid_in(tmp_path / "pid")
    os.kill(proc.pid, signal.SIGKILL)  # the supervisor alone, not its group
    wait_for(lambda: not process_running(sleep_pid), timeout=15)


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads the process tree in /proc")
def test_sigterm_to_every_process_of_the_worker_still_lets_running_tasks_finish(start_worker):
    # As systemd's default KillMode=control-group does: the supervisor, its fork server and each
    # child get SIGTERM. Children are in groups of their own, and still leave it to the supervisor.
    task_id = create_task("tests.tasks.sleep", {"seconds": 2})
    proc = start_worker()
    wait_for(lambda: Task.objects.filter(id=task_id, status=Task.PROGRESS).exists())
    (server,) = _children(proc.pid)
    (child,) = wait_for(lambda: _children(server))
    for pid in (proc.pid, server, child):
        os.kill(pid, signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    task = Task.objects.get(id=task_id)
    assert (task.status, task.output) == (Task.COMPLETED, "slept"), task.error


def test_a_task_can_stop_its_own_subprocess_with_sigterm(run_worker):
    # Children once ignored SIGTERM, and the subprocesses of their tasks inherited that.
    task_id = create_task("tests.tasks.terminate_own_subprocess", {})
    run_worker()
    task = Task.objects.get(id=task_id)
    assert (task.status, task.output) == (Task.COMPLETED, str(-signal.SIGTERM)), task.error


def test_a_timed_out_task_that_catches_sigterm_cleans_up_and_is_still_timed_out(
    run_worker, tmp_path
):
    path = tmp_path / "state"
    task_id = create_task("tests.tasks.on_sigterm", {"path": str(path)}, timeout=2)
    run_worker()
    assert path.read_text() == "cleaned up"
    task = Task.objects.get(id=task_id)
    assert task.status == Task.FAILED
    assert "timed out after 2 seconds" in task.error


def test_a_timed_out_task_that_ignores_sigterm_is_killed_after_the_grace(run_worker, tmp_path):
    from django_simple_queue.worker.children import STOP_GRACE

    task_id = create_task(
        "tests.tasks.on_sigterm", {"path": str(tmp_path / "pid"), "action": "ignore"}, timeout=1
    )
    after = create_task("tests.tasks.add", {"a": 1}, priority=-1)
    run_worker()
    task = Task.objects.get(id=task_id)
    assert task.status == Task.FAILED
    assert "timed out after 1 seconds" in task.error
    took = (task.finished_at - task.started_at).total_seconds()
    assert 1 + STOP_GRACE - 0.5 <= took < 1 + STOP_GRACE + 15, (
        "SIGTERM, then SIGKILL after the grace"
    )
    assert Task.objects.get(id=after).status == Task.COMPLETED


# --- the worker's own row: seen when idle, busy, gone or lost --------------------------------

FAST_BEATS = {"DSQ_HEARTBEAT_INTERVAL": "0.2", "DSQ_STALE_AFTER": "1.0"}


def dashboard_state(client, name: str) -> str | None:
    html = client.get("/admin/django_simple_queue/task/").content.decode()
    found = re.search(rf'<tr data-worker="{re.escape(name)}" data-state="(\w+)">', html)
    return found[1] if found else None


def test_a_worker_shows_idle_then_busy_and_its_row_goes_at_a_clean_exit(
    start_worker, admin_client, settings
):
    settings.DJANGO_SIMPLE_QUEUE_STALE_AFTER = 1.0
    proc = start_worker("--name", "watched", "--queue", "q1", env=FAST_BEATS)
    wait_for(lambda: Worker.objects.filter(name="watched").exists(), timeout=30)
    row = Worker.objects.get()
    assert (row.host, row.pid, row.queues, row.concurrency) == (
        socket.gethostname(),
        proc.pid,
        ["q1"],
        1,
    )
    assert dashboard_state(admin_client, "watched") == "idle"
    # Idle, it is still seen at every heartbeat.
    wait_for(lambda: Worker.objects.get().last_seen > row.last_seen)
    assert dashboard_state(admin_client, "watched") == "idle"

    task_id = create_task("tests.tasks.sleep", {"seconds": 2}, queue="q1")
    wait_for(lambda: dashboard_state(admin_client, "watched") == "busy")
    wait_for(lambda: Worker.objects.get().tasks_running == 1)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert Task.objects.get(id=task_id).status == Task.COMPLETED
    assert not Worker.objects.exists()
    assert dashboard_state(admin_client, "watched") is None


def test_the_row_of_a_killed_worker_becomes_lost_after_stale_after(
    start_worker, admin_client, settings
):
    settings.DJANGO_SIMPLE_QUEUE_STALE_AFTER = 1.0
    proc = start_worker(env=FAST_BEATS)
    name = f"{socket.gethostname()}:{proc.pid}"
    wait_for(lambda: dashboard_state(admin_client, name) == "idle", timeout=30)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert Worker.objects.filter(name=name).exists(), "no clean exit: the row stays"
    wait_for(lambda: dashboard_state(admin_client, name) == "lost", timeout=10)


def test_a_second_worker_with_a_live_workers_name_does_not_start(start_worker):
    first = start_worker("--name", "twin")
    wait_for(lambda: Worker.objects.filter(name="twin").exists(), timeout=30)
    second = start_worker("--name", "twin")
    out, _ = second.communicate(timeout=30)
    assert second.returncode == 1
    assert "Another worker named 'twin' is running" in out and "another --name" in out
    assert first.poll() is None and Worker.objects.get().pid == first.pid


def test_a_failure_records_its_exception_class_and_a_killed_process_its_lost_worker(run_worker):
    raised = create_task("tests.tasks.fail", {"message": "no"})
    killed = create_task("tests.tasks.kill_self", {})
    run_worker()
    assert Task.objects.get(id=raised).exception_type == "builtins.ValueError"
    row = Task.objects.get(id=killed)
    assert row.status == Task.FAILED
    assert row.exception_type == "django_simple_queue.backends.WorkerLost"
