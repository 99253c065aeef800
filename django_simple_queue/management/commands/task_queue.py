from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_simple_queue import queues


class Command(BaseCommand):
    help = "List queues, pause or resume one, or cap its running tasks across every worker."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        actions.add_parser("list", help="every queue: queued, running, paused, cap")
        for name, text in (
            ("pause", "workers stop claiming from the queue; running tasks finish"),
            ("resume", "workers claim from the queue again"),
        ):
            actions.add_parser(name, help=text).add_argument("name", metavar="NAME")
        cap = actions.add_parser("cap", help="at most N tasks of the queue run at once")
        cap.add_argument("name", metavar="NAME")
        cap.add_argument("max_running", metavar="N", help="a whole number of 1 or more, or 'none'")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "list":
            rows = queues.listing()
            if not rows:
                self.stdout.write("No queue has tasks queued or running.")
            for row in rows:
                state = "paused" if row["paused"] else "running"
                cap = row["max_running"] if row["max_running"] is not None else "none"
                self.stdout.write(
                    f"{row['queue']}: {row['depth']} queued, {row['running']} running, "
                    f"{state}, cap {cap}"
                )
            return
        name = options["name"]
        if action == "pause":
            done = queues.pause(name)
            self.stdout.write(f"{name} paused." if done else f"{name} was already paused.")
        elif action == "resume":
            done = queues.resume(name)
            self.stdout.write(f"{name} resumed." if done else f"{name} was not paused.")
        else:
            text = options["max_running"]
            try:
                value = None if text.lower() == "none" else int(text)
                queues.set_cap(name, value)
            except ValueError as exc:
                raise CommandError(
                    f"N must be a whole number of 1 or more, or 'none', not {text!r}."
                ) from exc
            self.stdout.write(f"{name}: at most {value} running." if value else f"{name}: no cap.")
