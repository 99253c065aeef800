"""The rules of claiming ahead and of sharing claimed tasks between children.

A worker claims more tasks than it has free children, and queues tasks behind running ones, only
while every task it runs is *short*: a short task held back costs little; a long one would wait in
this worker while others are idle. Plain functions of plain values: the supervisor acts on them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import NamedTuple

# A task path is short while its runs lately took less than this (seconds).
PREFETCH_MAX_DURATION = 0.05
# A run of a short path that has lasted this long is not short this time: stop claiming ahead.
LONG_RUN = 4 * PREFETCH_MAX_DURATION
# Tasks a reused child may hold at once while tasks are short: one running, the rest waiting in its
# pipe, so that it never waits for the supervisor between two tasks.
QUEUE_DEPTH = 32
# How far to claim beyond what the children hold: at least this many, or two per child.
MIN_AHEAD = 8
# The weight of the latest run in a path's moving average of durations.
LATEST_WEIGHT = 0.2


class Durations:
    """How long each task path's runs took lately, and which paths are short."""

    def __init__(self) -> None:
        self.lately: dict[str, float] = {}
        self.short: set[str] = set()

    def record(self, path: str, seconds: float) -> None:
        lately = self.lately.get(path)
        if lately is None:
            lately = seconds
        else:
            lately = (1 - LATEST_WEIGHT) * lately + LATEST_WEIGHT * seconds
        self.lately[path] = lately
        if lately < PREFETCH_MAX_DURATION:
            self.short.add(path)
        else:
            self.short.discard(path)


def prefetching(
    short: Collection[str], gave_back: bool, running: Iterable[tuple[str, float] | None]
) -> bool:
    """Whether to claim ahead and queue tasks behind running ones.

    ``running`` has, for each child, the path of the task it runs and for how long it has run
    (seconds), or None if it runs nothing. ``gave_back``: a task claimed ahead went back to the
    queue since a child was last free.
    """
    if not short or gave_back:
        return False
    return all(run is None or (run[0] in short and run[1] < LONG_RUN) for run in running)


def depth(prefetching: bool) -> int:
    """How many tasks a child may hold: one at a time, or a queue of them while tasks are short."""
    return QUEUE_DEPTH if prefetching else 1


def claim_count(
    *,
    prefetching: bool,
    concurrency: int,
    held: int,
    claimed: int = 0,
    max_tasks: int | None = None,
) -> int:
    """How many tasks to claim now, holding ``held`` claimed tasks that have not started.

    Without prefetching, one per free child. With it, enough to fill every child's queue and some
    ahead, in large batches (a claim's cost is mostly per statement, not per row): nothing until
    half of that target has been used. Never beyond ``max_tasks`` claims in all.
    """
    if prefetching:
        target = concurrency * depth(True) + max(2 * concurrency, MIN_AHEAD)
        count = target - held if held <= target // 2 else 0
    else:
        count = concurrency - held
    if max_tasks is not None:
        count = min(count, max_tasks - claimed)
    return max(count, 0)


def gives_back(path: str, short: Collection[str]) -> bool:
    """A task claimed ahead that no child could start goes back to the queue at once (the attempt
    not counted) unless its path is short: another worker may be free now."""
    return path not in short


def share(backlog: int, free_children: int) -> int:
    """How many of ``backlog`` claimed tasks one child with room is offered: an even share."""
    return max(1, backlog // max(1, free_children))


def take(ahead: str | None, backlog: Sequence[str], count: int, short: Collection[str]) -> int:
    """How many of the first paths of ``backlog`` (up to ``count``) to send to a child whose last
    task is ``ahead`` (None if it holds none). Only a short task waits, and only behind short ones."""
    taken = 0
    while taken < min(count, len(backlog)):
        if ahead is not None and not (ahead in short and backlog[taken] in short):
            break
        ahead = backlog[taken]
        taken += 1
    return taken


class Load(NamedTuple):
    """A child as the dispatch sees it: tasks it holds, and how many more it may be sent now."""

    held: int
    free: int


# ``pick`` found no child: fork a new one.
SPAWN = -1


def pick(children: Sequence[Load], concurrency: int) -> int | None:
    """The index of the child to send tasks to, ``SPAWN``, or None (every child is full).

    While fewer than ``concurrency`` children are busy, a task starts at once: in an idle child,
    or a new one. Otherwise it queues in the busy child with room that holds the fewest.
    """
    if sum(1 for load in children if load.held) < concurrency:
        for index, load in enumerate(children):
            if not load.held and load.free:
                return index
        return SPAWN
    queued = [(load.held, index) for index, load in enumerate(children) if load.held and load.free]
    return min(queued)[1] if queued else None
