"""The admin's failures page on 1,000,000 failed tasks, against the plain task list in the same run.

Needs PostgreSQL: PGHOST, PGPORT, PGUSER (and PGPASSWORD) as for the test suite. It creates a
throwaway database, fills it with ``--rows`` failed tasks (``INSERT … SELECT generate_series``:
8 task paths by 6 exception types, finished over 30 days, then VACUUM ANALYZE as autovacuum would),
renders the failures page and the task list, and prints their median times and the ratio::

    python bench/failures_scale.py [--rows 1000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import admin_scale

admin_scale.DB_NAME = "dsq_bench_failures"
PATHS = 8
CAUSES = [
    "builtins.ValueError",
    "builtins.KeyError",
    "builtins.TimeoutError",
    "django_simple_queue.backends.WorkerLost",
    "myapp.errors.Gone",
    "requests.exceptions.ConnectionError",
]


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="failed tasks")
    parser.add_argument("--repeat", type=int, default=5, help="renders per page")
    return parser.parse_args()


def fill(rows: int) -> float:
    """Insert ``rows`` failed tasks in one statement, then VACUUM ANALYZE; seconds taken."""

    from django_simple_queue.models import Task

    causes = ", ".join(f"'{cause}'" for cause in CAUSES)
    moment = "now() - (i * interval '2.592 seconds')"
    expressions = {
        "id": "gen_random_uuid()",
        "created": moment,
        "modified": moment,
        "task": f"'bench.tasks.job_' || mod(i, {PATHS})",
        "args": """'{"a": ' || i || '}'""",
        "status": str(Task.FAILED),
        "attempts": "1",
        "started_at": moment,
        "finished_at": f"{moment} + interval '1 second'",
        "worker_id": "'bench-host:' || mod(i, 8)",
        "exception_type": f"(ARRAY[{causes}])[1 + mod(i / {PATHS}, {len(CAUSES)})]",
        "error": "'Traceback (most recent call last):\n  File \"x.py\", line 1\n' || "
        f"(ARRAY[{causes}])[1 + mod(i / {PATHS}, {len(CAUSES)})] || ': row ' || i",
    }
    return admin_scale.insert_series(expressions, rows, "VACUUM ANALYZE")


def main() -> None:
    options = parse()
    admin_scale.setup_django()
    try:
        from django.contrib.auth.models import User
        from django.core.management import call_command
        from django.test import Client
        from django.urls import reverse

        call_command("migrate", verbosity=0, run_syncdb=True)
        user = User.objects.create_superuser("bench", "bench@example.org", "bench")
        client = Client()
        client.force_login(user)
        seconds = fill(options.rows)
        print(f"filled {options.rows:,} failed tasks in {seconds:.1f} s")
        changelist = reverse("admin:django_simple_queue_task_changelist")
        failures = reverse("admin:django_simple_queue_task_failures")
        pages = {
            "task list": changelist,
            "failures page": failures,
            "failures by count": f"{failures}?o=count",
            "one group's tasks": f"{changelist}?status__exact=3&task=bench.tasks.job_3"
            "&exception_type=builtins.KeyError",
        }
        print(f"median of {options.repeat} renders (PostgreSQL, test client)")
        print(f"{'page':<20} {'time':>9} {'vs list':>8} {'queries':>8} {'in SQL':>9}")
        times = {}
        for name, url in pages.items():
            median, queries = admin_scale.render(client, url, options.repeat)
            times[name] = median
            print(
                f"{name:<20} {median * 1000:>7.1f}ms {median / times['task list']:>7.2f}x "
                f"{len(queries):>8} {sum(float(q['time']) for q in queries) * 1000:>7.1f}ms"
            )
            if name == "failures page":
                for query in sorted(queries, key=lambda q: -float(q["time"]))[:3]:
                    print(f"    {float(query['time']) * 1000:7.1f}ms  {query['sql'][:120]}")
    finally:
        admin_scale.drop_database()


if __name__ == "__main__":
    main()
