"""The worker: a supervisor process that claims tasks and runs each in a child process.

| module | holds |
|---|---|
| ``supervisor`` | ``Worker``: the loop, signals, exit, the outage, periodic duties |
| ``dispatcher`` | ``Dispatcher``: the tasks in flight, claimed, sent to children, taken back |
| ``prefetch`` | the rules: how many to claim, which child gets what, what goes back |
| ``outage`` | losing and regaining the database |
| ``children`` | ``Child`` (the supervisor's handle), ``Children``: spawning and stopping |
| ``child`` | what runs inside a child |
| ``protocol`` | the messages on the pipe between them |
| ``forkserver`` | the small process that forks the children |
| ``recorder`` | outcomes kept until written, in batches |
| ``metrics`` | what ``--metrics-port`` serves (a no-op ``NoMetrics`` without it) |

``execute_task`` and ``ManagedEventLoop`` are re-exported here: the original's import path.
"""

from __future__ import annotations

from django_simple_queue.execution import ManagedEventLoop
from django_simple_queue.inline import execute_task
from django_simple_queue.worker.supervisor import Worker

__all__ = ["ManagedEventLoop", "Worker", "execute_task"]
