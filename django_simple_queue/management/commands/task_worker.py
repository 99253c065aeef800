from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_simple_queue.checks import worker_warnings
from django_simple_queue.exceptions import WorkerNameTaken
from django_simple_queue.worker import Worker, metrics

T = TypeVar("T", int, float)


def positive_int(text: str) -> int:
    """An argparse type: a whole number above 0."""
    value = _number(text, int)
    if value is None or value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of 1 or more, not {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """An argparse type: a whole number, 0 or more."""
    value = _number(text, int)
    if value is None or value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number of 0 or more, not {text!r}")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a number of seconds above 0."""
    value = _number(text, float)
    if value is None or not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, not {text!r}")
    return value


def _number(text: str, kind: Callable[[str], T]) -> T | None:
    try:
        return kind(text)
    except ValueError:
        return None


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
            "--concurrency",
            type=positive_int,
            default=1,
            metavar="N",
            help="Tasks run at once (default 1).",
        )
        parser.add_argument(
            "--max-tasks-per-child",
            type=non_negative_int,
            default=100,
            metavar="N",
            help="Replace a child process after this many tasks (default 100); 1 = a fresh "
            "process per task, 0 = never replace a child.",
        )
        parser.add_argument(
            "--max-tasks",
            type=positive_int,
            default=None,
            metavar="N",
            help="Exit after finishing this many tasks.",
        )
        parser.add_argument(
            "--burst",
            action="store_true",
            help="Exit when the queue is empty (a burst worker does not run schedules).",
        )
        parser.add_argument(
            "--no-scheduler",
            action="store_false",
            dest="schedules",
            help="Do not enqueue the tasks of schedules (other workers do).",
        )
        parser.add_argument(
            "--name",
            default=None,
            help="This worker's name, recorded on its tasks (default host:pid). Each running "
            "worker needs its own: name them where hosts share a hostname.",
        )
        parser.add_argument(
            "--poll-interval",
            type=positive_float,
            default=None,
            metavar="S",
            help="Seconds between polls when idle (default DJANGO_SIMPLE_QUEUE_POLL_INTERVAL).",
        )
        parser.add_argument(
            "--metrics-port",
            type=non_negative_int,
            default=None,
            metavar="PORT",
            help="Serve this worker's Prometheus metrics on http://HOST:PORT/metrics "
            "(0: a free port, said on the console). Needs django-simple-queue[metrics].",
        )
        parser.add_argument(
            "--metrics-host",
            default="127.0.0.1",
            metavar="HOST",
            help="The address the metrics are served on (default 127.0.0.1; 0.0.0.0 for all).",
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
        served = None
        if options["metrics_port"] is not None:
            try:
                served, port = metrics.serve(options["metrics_host"], options["metrics_port"])
            except ImportError as exc:
                raise CommandError(str(exc)) from exc
            except OSError as exc:
                raise CommandError(
                    f"Cannot serve metrics on {options['metrics_host']}:{options['metrics_port']}: {exc}"
                ) from exc
            say(f"metrics on http://{options['metrics_host']}:{port}/metrics")
        worker = Worker(
            queues=options["queues"],
            concurrency=options["concurrency"],
            max_tasks_per_child=options["max_tasks_per_child"],
            max_tasks=options["max_tasks"],
            burst=options["burst"],
            poll_interval=options["poll_interval"],
            name=options["name"],
            schedules=options["schedules"],
            say=None if quiet else say,
            metrics=served,
        )
        try:
            worker.run()
        except WorkerNameTaken as exc:
            raise CommandError(str(exc)) from exc
