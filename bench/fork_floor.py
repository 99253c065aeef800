"""What a fresh process per task costs at the least: fork a Django process, run a no-op, exit.

    python bench/fork_floor.py [--rounds 300]

Sets up Django with bench/settings.py (no database is opened), imports the task's module, then
forks one child per round that runs the no-op task with ``execution.run`` (as a worker's child
does) and exits; the parent waits for it. Prints the CPU time of parent and child per round and
the rate two cores could reach if they did nothing else: the ceiling of
``task_worker --max-tasks-per-child 1`` on this machine, before any claim or outcome is written.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    options = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    os.environ.setdefault("DSQ_BENCH_TALLY", os.devnull)
    import django

    django.setup()
    import bench.tasks  # noqa: F401  (imported once here, as the fork server does)
    from django_simple_queue import execution
    from django_simple_queue.models import Task

    class Sink:
        def output(self, text: str) -> None:
            pass

        def progress(self, value: float | None, message: str | None) -> None:
            pass

    task = Task(task="bench.tasks.noop", args="{}")
    gc.freeze()
    with open(f"/proc/{os.getpid()}/status") as status:
        rss = next(line.split()[1] for line in status if line.startswith("VmRSS:"))
    before, started = os.times(), time.perf_counter()
    for _ in range(options.rounds):
        pid = os.fork()
        if pid == 0:
            execution.run(task, Sink())
            os._exit(0)
        os.waitpid(pid, 0)
    wall = (time.perf_counter() - started) / options.rounds
    after = os.times()
    parent = (after.user + after.system - before.user - before.system) / options.rounds
    child = (
        after.children_user + after.children_system - before.children_user - before.children_system
    ) / options.rounds
    print(f"process forked: {int(rss) / 1024:.0f} MiB resident, {options.rounds} rounds")
    print(
        f"per task: {wall * 1000:.2f} ms wall; CPU {parent * 1000:.2f} ms parent + "
        f"{child * 1000:.2f} ms child = {(parent + child) * 1000:.2f} ms"
    )
    print(f"ceiling on {os.cpu_count()} cores: {os.cpu_count() / (parent + child):,.0f} tasks/s")


if __name__ == "__main__":
    main()
