from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from django_simple_queue import scheduler, schedules
from django_simple_queue.models import Schedule


class Command(BaseCommand):
    help = "List the schedules, or sync those declared in DJANGO_SIMPLE_QUEUE_SCHEDULES."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "action",
            choices=["list", "sync"],
            help="list: every schedule and its next run; sync: create, update and remove the "
            "declared schedules now (workers also do it when they start).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "sync":
            try:
                synced = scheduler.sync()
            except (schedules.InvalidSchedule, *scheduler.ENQUEUE_ERRORS) as exc:
                raise CommandError(str(exc)) from exc
            self.stdout.write(
                f"{len(synced.created)} created, {len(synced.updated)} updated, "
                f"{len(synced.removed)} removed"
            )
            return
        rows = scheduler.describe_all(Schedule.objects.all())
        if not rows:
            self.stdout.write("No schedules.")
        for row in rows:
            when = row["next_run_at"]
            next_run = timezone.localtime(when).isoformat(timespec="seconds") if when else "—"
            state = "" if row["enabled"] else "  (disabled)"
            self.stdout.write(
                f"{row['name']}: {row['task']} · {row['when']} · next {next_run} · "
                f"from {row['source']}{state}"
            )
