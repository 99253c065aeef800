from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_simple_queue import db, lifecycle
from django_simple_queue.models import Batch, Task

STATUSES = {"completed": Task.COMPLETED, "failed": Task.FAILED, "cancelled": Task.CANCELLED}


def parse_age(text: str) -> timedelta:
    """'30d', '12h', '90m' or '45s' as a timedelta."""
    units = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
    try:
        value, unit = float(text[:-1]), units[text[-1]]
    except (KeyError, ValueError, IndexError):
        raise CommandError(
            f"--older-than takes a number and a unit (d, h, m or s), such as 30d, not {text!r}."
        ) from None
    return timedelta(**{unit: value})


class Command(BaseCommand):
    help = "Delete finished tasks older than an age, in batches."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            default="30d",
            help="Age of the finish time, such as 30d, 12h (default 30d).",
        )
        parser.add_argument(
            "--status",
            action="append",
            choices=sorted(STATUSES),
            help="Only tasks with this status (repeatable; default: completed, failed and cancelled).",
        )
        parser.add_argument("--batch-size", type=int, default=1000)
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be deleted; delete nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        cutoff = db.now() - parse_age(options["older_than"])
        statuses = [STATUSES[name] for name in options["status"] or STATUSES]
        before = f"finished before {cutoff:%Y-%m-%d %H:%M} UTC"
        if options["dry_run"]:
            count = lifecycle.prunable(cutoff, statuses).count()
            self.stdout.write(f"{count} tasks would be deleted ({before}).")
            return
        deleted = lifecycle.prune(cutoff, statuses, batch_size=options["batch_size"])
        self.stdout.write(f"{deleted} tasks deleted ({before}).")
        # Then the batches this left without a task: their list would only show "0 of 0".
        batches = lifecycle.emptied_batches(cutoff).delete()[1].get(Batch._meta.label, 0)
        if batches:
            self.stdout.write(f"{batches} batches deleted ({before}, no task left).")
