from __future__ import annotations

import json
from datetime import timedelta

import factory
from django.utils import timezone

from django_simple_queue.models import Schedule, Task, Worker


class TaskFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Task

    task = "tests.tasks.add"
    args = factory.LazyFunction(lambda: json.dumps({"a": 1, "b": 2}))
    status = Task.QUEUED

    class Params:
        running = factory.Trait(
            status=Task.PROGRESS,
            attempts=1,
            worker_id="elsewhere:1",
            started_at=factory.LazyFunction(timezone.now),
            heartbeat_at=factory.LazyFunction(timezone.now),
            claim_token=factory.Faker("uuid4", cast_to=None),
        )
        # As 0.1.x left a running task, or as a row made In progress by hand: no attempt
        # counted, no claim, no heartbeat.
        legacy_running = factory.Trait(status=Task.PROGRESS, attempts=0)
        completed = factory.Trait(
            status=Task.COMPLETED,
            attempts=1,
            output="3",
            started_at=factory.LazyFunction(timezone.now),
            finished_at=factory.LazyFunction(timezone.now),
        )
        failed = factory.Trait(
            status=Task.FAILED,
            attempts=1,
            error="ValueError('boom')",
            started_at=factory.LazyFunction(timezone.now),
            finished_at=factory.LazyFunction(timezone.now),
        )
        cancelled = factory.Trait(
            status=Task.CANCELLED, finished_at=factory.LazyFunction(timezone.now)
        )


class ScheduleFactory(factory.django.DjangoModelFactory):
    """An enabled schedule of tests.tasks.add every minute, due now."""

    class Meta:
        model = Schedule

    name = factory.Sequence(lambda n: f"schedule-{n}")
    task = "tests.tasks.add"
    args = factory.LazyFunction(lambda: json.dumps({"a": 1, "b": 2}))
    interval = 60
    next_run_at = factory.LazyFunction(timezone.now)


class WorkerFactory(factory.django.DjangoModelFactory):
    """A worker's row, seen just now; ``lost=True`` for one not seen for an hour."""

    class Meta:
        model = Worker

    name = factory.Sequence(lambda n: f"host-{n}:{1000 + n}")
    host = factory.LazyAttribute(lambda worker: worker.name.split(":")[0])
    pid = factory.LazyAttribute(lambda worker: int(worker.name.split(":")[1]))
    started = factory.LazyFunction(timezone.now)
    last_seen = factory.LazyFunction(timezone.now)

    class Params:
        lost = factory.Trait(
            last_seen=factory.LazyFunction(lambda: timezone.now() - timedelta(hours=1))
        )
