"""Claim rate with a million finished rows in the table: the partial index on queued rows at work.

    python bench/claim_scale.py                     # starts its own PostgreSQL unless PGHOST is set
    python bench/claim_scale.py --finished 100000   # a smaller history

Claims and finishes ``--tasks`` queued tasks in batches of ``--batch`` (as a worker does), first in
an empty table, then with ``--finished`` finished rows added with one INSERT … SELECT from
generate_series, and prints both rates and their ratio.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import create_database, start_postgres


def fill_finished(count: int) -> float:
    """Add ``count`` completed rows in one statement; return the seconds it took."""
    from django.db import connection
    from django.utils import timezone

    from django_simple_queue import postgres
    from django_simple_queue.models import Task

    template = postgres._template(timezone.now())
    template.update(
        task="bench.tasks.noop",
        args="{}",
        status=Task.COMPLETED,
        attempts=1,
        finished_at=timezone.now(),
    )
    names = [field.attname for field in postgres.FIELDS]
    select = ", ".join("gen_random_uuid()" if name == "id" else "%s" for name in names)
    params = [template[name] for name in names if name != "id"]
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            f'INSERT INTO "{Task._meta.db_table}" ({postgres.COLUMNS}) SELECT {select} FROM generate_series(1, %s)',
            [*params, count],
        )
        cursor.execute(f'VACUUM ANALYZE "{Task._meta.db_table}"')
    return time.perf_counter() - started


def claim_rate(tasks: int, batch: int) -> float:
    """Queue ``tasks`` no-op tasks, then claim and finish them ``batch`` at a time; tasks per second."""
    from django.db import connection

    from django_simple_queue import lifecycle
    from django_simple_queue.lifecycle import Ending, Outcome
    from django_simple_queue.models import Task
    from django_simple_queue.utils import create_tasks

    create_tasks({"task": "bench.tasks.noop", "args": {}} for _ in range(tasks))
    # Both measurements start from fresh statistics, as autovacuum would give a real table.
    with connection.cursor() as cursor:
        cursor.execute(f'ANALYZE "{Task._meta.db_table}"')
    worker = f"bench:{uuid.uuid4().hex[:6]}"
    done = 0
    started = time.perf_counter()
    while claimed := lifecycle.claim(worker, limit=batch):
        lifecycle.finish_many([(task, Outcome(Ending.COMPLETED)) for task in claimed])
        done += len(claimed)
    elapsed = time.perf_counter() - started
    if done != tasks:
        raise RuntimeError(f"claimed {done} tasks, expected {tasks}")
    return done / elapsed


def plan() -> str:
    from django.db import connection
    from django.utils import timezone

    from django_simple_queue import pgdriver, postgres
    from django_simple_queue.lifecycle import claiming

    now = timezone.now()
    known = claiming._claim_changes(uuid.uuid4(), "plan", None, now)
    del known["attempts"]  # computed by the database, as lifecycle.claim does
    sql, _ = postgres._claim_sql(frozenset(known))
    sql = sql.replace("{ready}", postgres._READY).replace("{queues}", "AND concurrency_key IS NULL")
    sql = pgdriver.plain_placeholders(sql)
    params = {**known, "now": now, "limit": 10}
    with connection.cursor() as cursor:
        cursor.execute("BEGIN")
        cursor.execute("EXPLAIN (ANALYZE, COSTS OFF) " + sql, params)
        lines = [row[0] for row in cursor.fetchall()]
        cursor.execute("ROLLBACK")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--finished", type=int, default=1_000_000)
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--plan", action="store_true", help="also print the claim's query plan")
    opts = parser.parse_args(argv)

    stop_pg = start_postgres()
    try:
        os.environ.setdefault("DSQ_BENCH_DB", "dsq_bench_scale")
        os.environ.setdefault("DSQ_BENCH_TALLY", os.devnull)
        create_database(os.environ["DSQ_BENCH_DB"])
        os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0)
        empty = claim_rate(opts.tasks, opts.batch)
        fill = fill_finished(opts.finished)
        full = claim_rate(opts.tasks, opts.batch)
        print("| table | claim + finish, tasks/s |")
        print("|---|--:|")
        print(f"| only the {opts.tasks:,} queued tasks | {empty:,.0f} |")
        print(f"| plus {opts.finished:,} finished rows (added in {fill:.1f}s) | {full:,.0f} |")
        print(
            f"\nwith the finished rows: {full / empty:.2f}× the rate of the empty table (batches of {opts.batch})"
        )
        if opts.plan:
            print("\n" + plan())
        return 0
    finally:
        from django.db import connections

        connections.close_all()
        stop_pg()


if __name__ == "__main__":
    sys.exit(main())
