"""The worker's share of running schedules: it syncs the declared ones when it starts, then makes a
pass (``scheduler.enqueue_due``) when the earliest schedule is due, and at least every CHECK_EVERY
seconds, so that one made in the admin a moment ago is not missed."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django_simple_queue import db, scheduler, schedules

logger = logging.getLogger("django_simple_queue")

CHECK_EVERY = 1.0


class Scheduling:
    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.at = 0.0  # monotonic time of the next pass
        self.synced = False

    def sync(self) -> None:
        """Bring the declared schedules into the table; a bad declaration is said, not fatal."""
        self.synced = True
        try:
            synced = scheduler.sync()
        except (schedules.InvalidSchedule, *scheduler.ENQUEUE_ERRORS) as exc:
            logger.error("DJANGO_SIMPLE_QUEUE_SCHEDULES not synced: %s", exc)
            self.say(f"schedules from settings not synced: {exc}")
            return
        for verb, names in (
            ("created", synced.created),
            ("updated", synced.updated),
            ("removed", synced.removed),
        ):
            if names:
                self.say(f"schedules {verb}: {', '.join(names)}")

    def run(self) -> None:
        """Enqueue what is due and work out when to look again."""
        if not self.synced:
            self.sync()
        upcoming = scheduler.next_due()
        # An idle pass is this one small query: the pass's transaction only when one is due.
        if upcoming is not None and upcoming <= db.now():
            made = scheduler.enqueue_due()
            if made:
                self.say(f"scheduled {made} task{'s' if made != 1 else ''}")
            upcoming = scheduler.next_due()
        wait = CHECK_EVERY
        if upcoming is not None:
            wait = min(max((upcoming - db.now()).total_seconds(), 0.0), CHECK_EVERY)
        self.at = time.monotonic() + wait
