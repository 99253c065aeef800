"""The task admin's change list on 1,000,000 rows against the same page on an empty table.

Needs PostgreSQL: PGHOST, PGPORT, PGUSER (and PGPASSWORD) as for the test suite. It creates a
throwaway database, renders the change list (dashboard included) on an empty table as the
baseline, fills the table with ``INSERT … SELECT generate_series`` and renders the same pages again.
Prints the times, their ratio to the baseline, and the slowest queries of the large run::

    python bench/admin_scale.py [--rows 1000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "dsq_bench_admin"


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the large table")
    parser.add_argument("--repeat", type=int, default=5, help="renders per page and table size")
    return parser.parse_args()


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DSQ_TEST_DB"] = "postgres"
    os.environ["DSQ_DB_NAME"] = DB_NAME
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    import psycopg

    # A fresh database for this run, made through the server's maintenance database.
    with psycopg.connect(dbname="postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME}")
        conn.execute(f"CREATE DATABASE {DB_NAME}")

    import django

    django.setup()
    from django.test.utils import setup_test_environment

    setup_test_environment()  # the test client records templates and accepts "testserver"


def drop_database() -> None:
    import psycopg
    from django.db import connections

    connections.close_all()
    with psycopg.connect(dbname="postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME}")


def fill(rows: int) -> float:
    """Insert ``rows`` tasks of the last 30 days in one statement; seconds taken."""
    # Every NOT NULL column gets its model default; the columns that make the page realistic
    # (status mix, timestamps, queues, task paths) get an expression of the series number ``i``.
    expressions = {
        "id": "gen_random_uuid()",
        "created": "now() - (i * interval '2.592 seconds')",
        "modified": "now() - (i * interval '2.592 seconds')",
        "task": "(ARRAY['tests.tasks.add', 'tests.tasks.echo', 'tests.tasks.fail'])[1 + mod(i, 3)]",
        "args": """'{"a": ' || i || '}'""",
        "status": "CASE WHEN i <= 500 THEN 0 WHEN i <= 520 THEN 1 WHEN mod(i, 20) = 0 THEN 3 "
        "WHEN mod(i, 97) = 0 THEN 4 ELSE 2 END",
        "queue": "(ARRAY['default', 'mail', 'reports'])[1 + mod(i, 3)]",
        "attempts": "CASE WHEN i <= 500 THEN 0 ELSE 1 END",
        "started_at": "CASE WHEN i > 500 THEN now() - (i * interval '2.592 seconds') "
        "+ interval '1 second' END",
        "finished_at": "CASE WHEN i > 520 THEN now() - (i * interval '2.592 seconds') "
        "+ interval '3 seconds' END",
        "worker_id": "CASE WHEN i > 500 THEN 'bench-host:' || mod(i, 8) ELSE '' END",
        "heartbeat_at": "CASE WHEN i > 500 AND i <= 520 THEN now() END",
        "output": "CASE WHEN i > 520 AND mod(i, 20) <> 0 THEN 'result ' || i END",
        "error": "CASE WHEN i > 520 AND mod(i, 20) = 0 THEN 'Traceback\nValueError: row ' || i END",
    }
    return insert_series(expressions, rows, "ANALYZE")


def insert_series(expressions: dict[str, str], rows: int, analyze: str) -> float:
    """``INSERT … SELECT … FROM generate_series(1, rows) AS i`` into the task table: each column
    of ``expressions`` from its SQL expression of ``i``, every other NOT NULL column its model
    default; then ``analyze`` (ANALYZE or VACUUM ANALYZE) the table. Seconds taken."""
    from django.db import connection

    from django_simple_queue.models import Task

    columns, values, params = [], [], []
    for field in Task._meta.concrete_fields:
        column = connection.ops.quote_name(field.column)
        if field.name in expressions:
            columns.append(column)
            values.append(expressions[field.name])
        elif not field.null:
            columns.append(column)
            values.append("%s")
            params.append(field.get_db_prep_save(field.get_default(), connection))
    sql = (
        f"INSERT INTO {Task._meta.db_table} ({', '.join(columns)}) "
        f"SELECT {', '.join(values)} FROM generate_series(1, %s) AS i"
    )
    start = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, rows])
        cursor.execute(f"{analyze} {Task._meta.db_table}")
    return time.perf_counter() - start


def render(client: Any, url: str, repeat: int) -> tuple[float, list[dict[str, str]]]:
    """Median seconds of ``repeat`` renders of ``url`` and the queries of the last one."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(url)  # warm caches (templates, URL resolvers, PostgreSQL's plan cache)
    times = []
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as captured:
            start = time.perf_counter()
            response = client.get(url)
            times.append(time.perf_counter() - start)
        assert response.status_code == 200, (url, response.status_code)
    return statistics.median(times), captured.captured_queries


def pages() -> dict[str, str]:
    from django.urls import reverse

    from django_simple_queue.models import Task

    changelist = reverse("admin:django_simple_queue_task_changelist")
    return {
        "change list": changelist,
        "filtered: failed": f"{changelist}?status__exact={Task.FAILED}",
        "filtered: queue": f"{changelist}?queue=mail",
        "page 100": f"{changelist}?p=100",
        "search by id": f"{changelist}?q=00000000-0000-0000-0000-000000000000",
        "enqueue form": reverse("admin:django_simple_queue_task_add"),
    }


def unbounded_counts(queries: list[dict[str, str]]) -> list[str]:
    """The ``COUNT(*)`` queries without WHERE or LIMIT: each scans the whole table."""
    return [
        q["sql"]
        for q in queries
        if "COUNT(" in q["sql"].upper()
        and " WHERE " not in q["sql"].upper()
        and " LIMIT " not in q["sql"].upper()
    ]


def main() -> None:
    options = parse()
    setup_django()
    try:
        from django.contrib.auth.models import User
        from django.core.management import call_command
        from django.test import Client

        from django_simple_queue.models import Task

        call_command("migrate", verbosity=0, run_syncdb=True)
        user = User.objects.create_superuser("bench", "bench@example.org", "bench")
        client = Client()
        client.force_login(user)

        print(f"admin change list, median of {options.repeat} renders (PostgreSQL, test client)")
        baseline = {name: render(client, url, options.repeat)[0] for name, url in pages().items()}
        seconds = fill(options.rows)
        total = Task.objects.count()
        print(f"filled {total:,} rows in {seconds:.1f} s ({total / seconds:,.0f} rows/s)")
        print(
            f"{'page':<20} {'empty':>9} {f'{total:,} rows':>14} {'ratio':>7} {'queries':>8} "
            f"{'in SQL':>9}"
        )
        slowest: list[tuple[float, str]] = []
        bad: list[str] = []
        for name, url in pages().items():
            large, queries = render(client, url, options.repeat)
            ratio = large / baseline[name]
            print(
                f"{name:<20} {baseline[name] * 1000:>7.1f}ms {large * 1000:>12.1f}ms "
                f"{ratio:>6.1f}x {len(queries):>8} "
                f"{sum(float(q['time']) for q in queries) * 1000:>7.1f}ms"
            )
            slowest += [(float(q["time"]), q["sql"]) for q in queries]
            bad += unbounded_counts(queries)
        print("slowest queries of the large runs:")
        for duration, sql in sorted(slowest, reverse=True)[:5]:
            print(f"  {duration * 1000:7.1f}ms  {sql[:150]}")
        print(f"unbounded COUNT queries: {len(bad)}")
        for sql in bad:
            print(f"  {sql[:200]}")
    finally:
        drop_database()


if __name__ == "__main__":
    main()
