"""Signal receivers that write what they saw, with the process id, to $DSQ_SIGNAL_LOG if set."""

from __future__ import annotations

import os

from django.dispatch import receiver

from django_simple_queue import signals
from django_simple_queue.models import Task


def write(*parts: object) -> None:
    path = os.environ.get("DSQ_SIGNAL_LOG")
    if path:
        with open(path, "a") as file:
            file.write(" ".join(str(part) for part in (os.getpid(), *parts)) + "\n")


@receiver(signals.before_job, sender=Task)
def before_job(sender, task, **kwargs):
    write("before_job", task.id, task.get_status_display())


@receiver(signals.before_loop, sender=Task)
def before_loop(sender, task, iteration, **kwargs):
    write("before_loop", task.id, iteration)


@receiver(signals.after_loop, sender=Task)
def after_loop(sender, task, output, iteration, **kwargs):
    write("after_loop", task.id, iteration, output)


@receiver(signals.on_success, sender=Task)
def on_success(sender, task, **kwargs):
    write("on_success", task.id, task.get_status_display())


@receiver(signals.on_failure, sender=Task)
def on_failure(sender, task, error, **kwargs):
    write("on_failure", task.id, task.get_status_display(), type(error).__name__)
