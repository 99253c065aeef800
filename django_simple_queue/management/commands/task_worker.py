from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from django_simple_queue.checks import worker_warnings
from django_simple_queue.worker import Worker


class Command(BaseCommand):
    help = "Run queued tasks, each in a child process, until stopped (SIGTERM or Ctrl-C)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--queue",
            action="append",
            dest="queues",
            metavar="NAME",
            help="Only run tasks of this queue (repeatable; default: all queues).",
        )
        parser.add_argument(
            "--concurrency", type=int, default=1, help="Tasks run at once (default 1)."
        )
        parser.add_argument(
            "--max-tasks-per-child",
            type=int,
            default=100,
            help="Replace a child process after this many tasks; 1 = a fresh process per task.",
        )
        parser.add_argument(
            "--max-tasks", type=int, default=None, help="Exit after finishing this many tasks."
        )
        parser.add_argument("--burst", action="store_true", help="Exit when the queue is empty.")
        parser.add_argument(
            "--name",
            default=None,
            help="This worker's name, recorded on its tasks (default host:pid). Each running "
            "worker needs its own: name them where hosts share a hostname.",
        )
        parser.add_argument(
            "--poll-interval",
            type=float,
            default=None,
            help="Seconds between polls when idle (default DJANGO_SIMPLE_QUEUE_POLL_INTERVAL).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        quiet = options["verbosity"] == 0

        def say(line: str) -> None:
            try:
                self.stdout.write(line)
                self.stdout.flush()
            except BrokenPipeError:
                # Whoever read the console is gone (Ctrl-C also stops a `| tee`): work on, and
                # send what is left to /dev/null, the flush at exit included.
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, self.stdout.fileno())
                os.close(devnull)

        for warning in worker_warnings(options["concurrency"]):
            if warning.id not in settings.SILENCED_SYSTEM_CHECKS:
                self.stderr.write(f"{warning.id}: {warning.msg}\n\tHINT: {warning.hint}")
        worker = Worker(
            queues=options["queues"],
            concurrency=options["concurrency"],
            max_tasks_per_child=options["max_tasks_per_child"],
            max_tasks=options["max_tasks"],
            burst=options["burst"],
            poll_interval=options["poll_interval"],
            name=options["name"],
            say=None if quiet else say,
        )
        worker.run()
