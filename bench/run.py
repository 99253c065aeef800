"""Benchmark this project's queue against django-tasks-db, in one run on one PostgreSQL database.

    python bench/run.py                  # starts its own PostgreSQL unless PGHOST is set
    python bench/run.py --quick          # smaller counts, for a smoke test
    python bench/run.py --write-docs     # also rewrite the table and chart in docs/performance.md

It installs nothing: run it with an interpreter that has bench/requirements.txt installed.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "performance.md"
CHART = ROOT / "docs" / "performance-throughput.png"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


# -- PostgreSQL ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_postgres() -> Callable[[], None]:
    """A throwaway server via scripts/pg.sh, unless PGHOST names one; returns how to stop it."""
    if os.environ.get("PGHOST"):
        os.environ.setdefault("PGUSER", "postgres")
        return lambda: None
    datadir = tempfile.mkdtemp(prefix="dsq-bench-pg-")
    port = free_port()
    subprocess.run(
        ["bash", str(ROOT / "scripts" / "pg.sh"), "start", datadir, str(port)], check=True
    )
    os.environ.update(PGHOST="127.0.0.1", PGPORT=str(port), PGUSER="postgres")

    def stop() -> None:
        subprocess.run(["bash", str(ROOT / "scripts" / "pg.sh"), "stop", datadir], check=False)
        shutil.rmtree(datadir, ignore_errors=True)

    return stop


def create_database(name: str) -> None:
    import psycopg

    with psycopg.connect(dbname="postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


# -- processes -----------------------------------------------------------------------------------


def child_env(tally: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="bench.settings",
        DSQ_BENCH_TALLY=str(tally),
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
    )
    return env


def django_command(*args: str, tally: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "django", *args, "-v", "0"],
        cwd=ROOT,
        env=child_env(tally),
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )


def rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


class RssSampler(threading.Thread):
    """The largest RSS seen of each process, sampled every 20 ms while it runs."""

    def __init__(self, pids: Sequence[int]) -> None:
        super().__init__(daemon=True)
        self.pids = list(pids)
        self.peak = dict.fromkeys(self.pids, 0)
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.02):
            for pid in self.pids:
                self.peak[pid] = max(self.peak[pid], rss_kib(pid))

    def stop(self) -> int:
        """Peak RSS (KiB) of the largest of the sampled processes."""
        self.done.set()
        self.join()
        return max(self.peak.values(), default=0)


def wait_all(procs: Sequence[subprocess.Popen[bytes]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for proc in procs:
        try:
            proc.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise RuntimeError(f"worker {proc.args} did not finish within {timeout:.0f}s") from None


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# -- the two queues ------------------------------------------------------------------------------


@dataclass
class Drain:
    tasks: int
    seconds: float
    executions: int
    finished: int
    rss_kib: int
    # CPU of the worker processes (start-up included) and of PostgreSQL during the drain.
    cpu_seconds: float

    @property
    def rate(self) -> float:
        return self.tasks / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_ms_per_task(self) -> float:
        return self.cpu_seconds / self.tasks * 1000

    @property
    def exactly_once(self) -> bool:
        return self.executions == self.tasks == self.finished


@dataclass
class Results:
    rows: list[tuple[str, str, str, str]] = field(default_factory=list)
    checks: list[tuple[str, bool]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    chart: dict[str, dict[int, float]] = field(default_factory=dict)


def reset() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE django_simple_queue_task, django_tasks_database_dbtaskresult")
        cursor.execute("VACUUM ANALYZE django_simple_queue_task")
        cursor.execute("VACUUM ANALYZE django_tasks_database_dbtaskresult")


def tally_file(workdir: Path, name: str) -> Path:
    path = workdir / f"{name}.tally"
    path.unlink(missing_ok=True)
    path.touch()
    return path


class Ours:
    name = "django-simple-queue"

    def enqueue_single(self, count: int) -> float:
        from django_simple_queue.utils import create_task

        start = time.perf_counter()
        for _ in range(count):
            create_task("bench.tasks.noop", {})
        return count / (time.perf_counter() - start)

    def enqueue_bulk(self, count: int) -> float:
        from django_simple_queue.utils import create_tasks

        start = time.perf_counter()
        create_tasks({"task": "bench.tasks.noop", "args": {}} for _ in range(count))
        return count / (time.perf_counter() - start)

    def fill(self, count: int) -> None:
        from django_simple_queue.utils import create_tasks

        create_tasks({"task": "bench.tasks.noop", "args": {}} for _ in range(count))

    def workers(
        self, count: int, tally: Path, *, fresh: bool, burst: bool
    ) -> list[subprocess.Popen[bytes]]:
        args = ["task_worker", "--concurrency", str(count)]
        if fresh:
            args += ["--max-tasks-per-child", "1"]
        if burst:
            args.append("--burst")
        return [django_command(*args, tally=tally)]

    def span(self) -> tuple[float, int]:
        from django.db.models import Max, Min, Sum

        from django_simple_queue.models import Task

        agg = Task.objects.filter(status=Task.COMPLETED).aggregate(
            first=Min("started_at"), last=Max("finished_at"), attempts=Sum("attempts")
        )
        finished = Task.objects.filter(status=Task.COMPLETED).count()
        # Every claim adds an attempt: more attempts than rows would mean a task ran twice.
        if agg["attempts"] is not None and agg["attempts"] != finished:
            finished = -int(agg["attempts"])
        if agg["first"] is None:
            return 0.0, finished
        return (agg["last"] - agg["first"]).total_seconds(), finished

    def enqueue_stamp(self) -> None:
        from django_simple_queue.utils import create_task

        create_task("bench.tasks.stamp", {})


class TasksDb:
    name = "django-tasks-db"

    def enqueue_single(self, count: int) -> float:
        from bench.tasks import dt_noop

        start = time.perf_counter()
        for _ in range(count):
            dt_noop.enqueue()
        return count / (time.perf_counter() - start)

    def fill(self, count: int) -> None:
        from django.db import transaction

        from bench.tasks import dt_noop

        with transaction.atomic():
            for _ in range(count):
                dt_noop.enqueue()

    def workers(
        self, count: int, tally: Path, *, fresh: bool, burst: bool
    ) -> list[subprocess.Popen[bytes]]:
        args = ["db_worker", "--interval", "0.1", "--no-startup-delay", "--no-reload"]
        if burst:
            args.append("--batch")
        return [django_command(*args, tally=tally) for _ in range(count)]

    def span(self) -> tuple[float, int]:
        from django.db.models import Max, Min
        from django_tasks_db.models import DBTaskResult

        done = DBTaskResult.objects.filter(status="SUCCESSFUL")
        agg = done.aggregate(first=Min("started_at"), last=Max("finished_at"))
        if agg["first"] is None:
            return 0.0, 0
        return (agg["last"] - agg["first"]).total_seconds(), done.count()

    def enqueue_stamp(self) -> None:
        from bench.tasks import dt_stamp

        dt_stamp.enqueue()


# -- measurements --------------------------------------------------------------------------------


def drain(queue: Any, tasks: int, workers: int, workdir: Path, *, fresh: bool = False) -> Drain:
    reset()
    queue.fill(tasks)
    tally = tally_file(workdir, "drain")
    cpu_before = children_cpu() + postgres_cpu()
    procs = queue.workers(workers, tally, fresh=fresh, burst=True)
    sampler = RssSampler([proc.pid for proc in procs])
    sampler.start()
    wait_all(procs, timeout=max(120, tasks / 20))
    rss = sampler.stop()
    cpu = children_cpu() + postgres_cpu() - cpu_before
    seconds, finished = queue.span()
    return Drain(tasks, seconds, tally.stat().st_size, finished, rss, cpu)


def children_cpu() -> float:
    """CPU seconds of the processes this one has waited for, and of everything they waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def postgres_cpu() -> float:
    """CPU seconds of the PostgreSQL processes, and of the backends that have exited (Linux)."""
    total = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        name, fields = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :]
        if name.startswith("postgres"):
            total += sum(int(value) for value in fields.split()[11:15])
    return total / os.sysconf("SC_CLK_TCK")


def pickup(queue: Any, count: int, workdir: Path) -> tuple[float, float, bool]:
    """p50 and p99 (ms) from enqueue to the task running, one task at a time on an idle worker."""
    reset()
    tally = tally_file(workdir, "pickup")
    (proc,) = queue.workers(1, tally, fresh=False, burst=False)
    latencies: list[float] = []
    try:
        for i in range(count + 1):
            time.sleep(random.uniform(0.005, 0.02))
            size = tally.stat().st_size
            before = time.time()
            queue.enqueue_stamp()
            deadline = time.monotonic() + 30
            while tally.stat().st_size < size + 8:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"{queue.name}: task not picked up within 30s")
                time.sleep(0.0002)
            with tally.open("rb") as file:
                file.seek(size)
                (ran,) = struct.unpack("d", file.read(8))
            if i:  # the first one also waits for the worker to start
                latencies.append((ran - before) * 1000)
    finally:
        stop(proc)
    ok = tally.stat().st_size == 8 * (count + 1)
    cuts = statistics.quantiles(latencies, n=100)
    return statistics.median(latencies), cuts[98], ok


def ratio(ours: float, theirs: float, *, lower_is_better: bool = False) -> str:
    if not ours or not theirs:
        return "–"
    value = theirs / ours if lower_is_better else ours / theirs
    return f"{value:.1f}×"


def run(opts: argparse.Namespace) -> Results:
    ours, theirs = Ours(), TasksDb()
    results = Results()
    results.notes.append(f"load average at start: {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)")
    workdir = Path(tempfile.mkdtemp(prefix="dsq-bench-"))
    say = print if opts.verbose else (lambda *a: None)

    reset()
    os.environ["DSQ_BENCH_TALLY"] = str(workdir / "enqueue.tally")
    a, b = ours.enqueue_single(opts.enqueue), theirs.enqueue_single(opts.enqueue)
    results.rows.append(
        (
            f"enqueue, single ({opts.enqueue:,} calls), tasks/s",
            f"{a:,.0f}",
            f"{b:,.0f}",
            ratio(a, b),
        )
    )
    reset()
    a = ours.enqueue_bulk(opts.bulk)
    results.rows.append(
        (f"enqueue, bulk create_tasks ({opts.bulk:,}), tasks/s", f"{a:,.0f}", "no bulk API", "–")
    )
    say("enqueue done")

    for fresh in (False, True):
        label = "fresh process per task" if fresh else "children reused"
        count = opts.fresh_tasks if fresh else opts.tasks
        for n in opts.workers:
            mine = drain(ours, count, n, workdir, fresh=fresh)
            base = drain(theirs, min(count, opts.baseline_tasks), n, workdir)
            say(f"drain {label} {n}: {mine} vs {base}")
            results.rows.append(
                (
                    f"drain, {n} worker{'s' if n > 1 else ''}, {label}, tasks/s "
                    f"(ours {mine.tasks:,}, theirs {base.tasks:,} tasks)",
                    f"{mine.rate:,.0f}",
                    f"{base.rate:,.0f}",
                    ratio(mine.rate, base.rate),
                )
            )
            results.checks.append(
                (
                    f"exactly once: ours, {label}, {n} workers ({mine.executions:,} runs)",
                    mine.exactly_once,
                )
            )
            results.checks.append(
                (
                    f"exactly once: django-tasks-db, {n} workers ({base.executions:,} runs)",
                    base.exactly_once,
                )
            )
            if n == 2:
                results.rows.append(
                    (
                        f"CPU per task, 2 workers, {label}, ms (worker processes from their "
                        "start, and PostgreSQL)",
                        f"{mine.cpu_ms_per_task:.1f}",
                        f"{base.cpu_ms_per_task:.1f}",
                        ratio(mine.cpu_ms_per_task, base.cpu_ms_per_task, lower_is_better=True),
                    )
                )
            results.chart.setdefault(f"django-simple-queue, {label}", {})[n] = mine.rate
            if not fresh:
                results.chart.setdefault("django-tasks-db", {})[n] = base.rate
                if n == 2:
                    results.rows.append(
                        (
                            "supervisor / worker peak RSS, 2 workers, MiB",
                            f"{mine.rss_kib / 1024:.0f}",
                            f"{base.rss_kib / 1024:.0f} (each)",
                            "–",
                        )
                    )

    p50, p99, ok = pickup(ours, opts.pickup, workdir)
    q50, q99, ok2 = pickup(theirs, opts.baseline_pickup, workdir)
    results.rows.append(
        (
            f"idle pickup p50, ms (ours {opts.pickup}, theirs {opts.baseline_pickup} tasks)",
            f"{p50:.1f}",
            f"{q50:.1f}",
            ratio(p50, q50, lower_is_better=True),
        )
    )
    results.rows.append(
        ("idle pickup p99, ms", f"{p99:.1f}", f"{q99:.1f}", ratio(p99, q99, lower_is_better=True))
    )
    results.checks.append(("exactly once: pickup runs", ok and ok2))
    shutil.rmtree(workdir, ignore_errors=True)
    results.notes.append(f"load average at end: {os.getloadavg()[0]:.1f}")
    return results


def table(results: Results) -> str:
    lines = [
        "| measurement | django-simple-queue | django-tasks-db | ours ÷ theirs |",
        "|---|--:|--:|--:|",
    ]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in results.rows]
    lines.append("")
    lines += [f"- {'PASS' if ok else 'FAIL'} {name}" for name, ok in results.checks]
    lines += ["", *(f"{note}  " for note in results.notes)]
    return "\n".join(lines)


def chart(results: Results, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for label, points in results.chart.items():
        xs = sorted(points)
        ax.plot(xs, [points[x] for x in xs], marker="o", label=label)
    ax.set_xlabel("worker processes")
    ax.set_ylabel("no-op tasks per second")
    ax.set_yscale("log")
    ax.set_xticks(sorted({x for points in results.chart.values() for x in points}))
    ax.set_title("Drain throughput on one PostgreSQL (2-core machine)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)


def write_docs(text: str) -> None:
    doc = DOC.read_text()
    head, _, rest = doc.partition(BEGIN)
    _, _, tail = rest.partition(END)
    DOC.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tasks", type=int, default=10_000, help="tasks per drain, children reused"
    )
    parser.add_argument(
        "--fresh-tasks", type=int, default=1_000, help="tasks per drain, fresh process per task"
    )
    parser.add_argument(
        "--baseline-tasks", type=int, default=2_000, help="tasks per drain for django-tasks-db"
    )
    parser.add_argument("--workers", default="1,2,4", help="worker process counts to drain with")
    parser.add_argument("--pickup", type=int, default=500, help="tasks for the pickup latency")
    parser.add_argument(
        "--baseline-pickup", type=int, default=200, help="pickup tasks for django-tasks-db"
    )
    parser.add_argument("--enqueue", type=int, default=2_000, help="single create_task calls")
    parser.add_argument("--bulk", type=int, default=20_000, help="tasks in one create_tasks call")
    parser.add_argument("--quick", action="store_true", help="small counts, a smoke test")
    parser.add_argument(
        "--write-docs", action="store_true", help="update docs/performance.md and its chart"
    )
    parser.add_argument("--verbose", action="store_true")
    opts = parser.parse_args(argv)
    opts.workers = [int(n) for n in opts.workers.split(",")]
    if opts.quick:
        opts.tasks, opts.fresh_tasks, opts.baseline_tasks = 1000, 100, 200
        opts.pickup, opts.baseline_pickup, opts.enqueue, opts.bulk = 50, 20, 200, 2000

    stop_pg = start_postgres()
    try:
        os.environ.setdefault("DSQ_BENCH_DB", "dsq_bench")
        create_database(os.environ["DSQ_BENCH_DB"])
        os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
        sys.path.insert(0, str(ROOT))
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0)
        results = run(opts)
        text = table(results)
        print(text)
        if opts.write_docs:
            chart(results, CHART)
            write_docs(text)
            print(f"wrote {DOC.relative_to(ROOT)} and {CHART.relative_to(ROOT)}")
        return 0 if all(ok for _, ok in results.checks) else 1
    finally:
        from django.db import connections

        connections.close_all()
        stop_pg()


if __name__ == "__main__":
    sys.exit(main())
