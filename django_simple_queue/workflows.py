"""Workflows: tasks that wait for others (``depends_on``), and batches whose callback is queued
once all their tasks have finished (docs/workflows.md).

A waiting task has the status WAITING, so it stays out of the claim's index and costs the claim
nothing; what it waits for are Dependency rows. At enqueue, ``arrange`` decides each new task's
first status. Whoever ends a task afterwards (``lifecycle``: a worker's finish, a rescue, a cancel)
calls ``settle`` in the same transaction:

- a dependant whose dependencies have all completed is queued;
- a dependant of a task that failed or was cancelled ends Cancelled (or Failed, as it asked),
  and so on down the chain;
- a batch whose tasks have all finished is closed and its callback queued.

Two tasks that one dependant waits for may end at the same moment on two hosts. Each finisher locks
the dependant's row and only then, in a new statement, looks at what it still waits for, so the
second to take the lock sees the first's commit: one of them queues it. A batch is closed the same
way, under the lock of its row: exactly once. At enqueue, the dependencies' rows are locked (and
marked ``waited_on``) before the new rows are written: a dependency that ends meanwhile either
finds its new dependants or is found ended.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, Exists, Field, OuterRef, Q

from django_simple_queue import causes, db, notify, postgres
from django_simple_queue.models import Batch, Dependency, Task

# A reference to a task this one depends on: the id of a task already enqueued, or, within one
# ``create_tasks``/``create_batch`` call, the position of another item of the same list.
Reference = uuid.UUID | str | int


def stopped_error(dependency_id: Any, path: str, status: int) -> str:
    """The error of a task that never ran because ``dependency_id`` ended ``status``."""
    ended = "failed" if status == Task.FAILED else "was cancelled"
    return f"Not run: task {dependency_id} ({path}), which it depends on, {ended}."


def on_failure_status(on_dependency_failure: str) -> int:
    return Task.FAILED if on_dependency_failure == Task.FAIL else Task.CANCELLED


# Ids per statement: a task may have a hundred thousand dependants (or dependencies), PostgreSQL
# takes 65,535 parameters.
CHUNK = 5000


def chunks(ids: Iterable[Any]) -> Iterator[list[Any]]:
    ids = list(ids)
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


# At enqueue.


@dataclass
class Arrangement:
    """What ``arrange`` decided for a list of new tasks: the Dependency rows to write after them."""

    edges: list[tuple[uuid.UUID, uuid.UUID]]


def parse_references(references: Iterable[Reference], count: int) -> list[uuid.UUID | int]:
    """``depends_on`` as task ids and positions in a list of ``count`` items; ValueError for
    anything else."""
    if isinstance(references, (str, bytes, uuid.UUID, int)):
        raise TypeError("depends_on should be a list of task ids.")
    parsed: list[uuid.UUID | int] = []
    for reference in references:
        if isinstance(reference, bool):
            raise ValueError(f"depends_on: {reference!r} is not a task id.")
        if isinstance(reference, int) and count:
            if not 0 <= reference < count:
                raise ValueError(
                    f"depends_on: {reference} is not the position of another task of this list "
                    f"(0 to {count - 1})."
                )
            parsed.append(reference)
            continue
        try:
            parsed.append(
                reference if isinstance(reference, uuid.UUID) else uuid.UUID(str(reference))
            )
        except ValueError:
            raise ValueError(f"depends_on: {reference!r} is not a task id.") from None
    return parsed


def order(dependencies: Sequence[Sequence[int]]) -> list[int]:
    """The positions of a list's items, each after those it depends on (``dependencies[i]``: the
    positions item ``i`` depends on); ValueError naming a cycle if there is one."""
    done: list[int] = []
    state = [0] * len(dependencies)  # 0 unseen, 1 on the path, 2 placed
    for start in range(len(dependencies)):
        path: list[tuple[int, int]] = [(start, 0)]
        while path:
            item, next_edge = path[-1]
            if next_edge == 0:
                if state[item] == 2:
                    path.pop()
                    continue
                state[item] = 1
            if next_edge < len(dependencies[item]):
                path[-1] = (item, next_edge + 1)
                target = dependencies[item][next_edge]
                if state[target] == 1:
                    cycle = [i for i, _ in path[[i for i, _ in path].index(target) :]]
                    shown = " → ".join(str(i) for i in [*cycle, target])
                    raise ValueError(f"depends_on makes a cycle: {shown} (positions in the list).")
                if state[target] == 0:
                    path.append((target, 0))
                continue
            state[item] = 2
            done.append(item)
            path.pop()
    return done


def arrange(
    items: Sequence[Any], references: Sequence[Sequence[Reference]], using: str, now: datetime
) -> Arrangement:
    """Set the first status of each new task in ``items`` (Tasks or dicts of column values, with
    ids) from what ``references[i]`` it depends on, and lock and mark the tasks already enqueued
    that they depend on. Raises before anything is written: unknown ids, cycles, bad references.

    A task waits (WAITING) while any of its dependencies is unfinished; it is queued at once if they
    have all completed; it ends at once, as a running dependant would, if one has failed or was
    cancelled.
    """
    parsed = [parse_references(refs, len(items)) for refs in references]
    for item, refs in zip(items, parsed, strict=True):
        if refs and _get(item, "unique_key") is not None:
            raise ValueError(
                "unique_key cannot be combined with depends_on: a waiting task would hold its "
                "key for as long as it waits."
            )
    siblings = [[ref for ref in refs if isinstance(ref, int)] for refs in parsed]
    existing = {ref for refs in parsed for ref in refs if isinstance(ref, uuid.UUID)}
    found = _lock_and_mark(existing, using)
    unknown = existing - set(found)
    if unknown:
        names = ", ".join(sorted(str(ref) for ref in unknown))
        raise ValueError(f"depends_on names no existing task: {names}.")
    for position in {ref for refs in siblings for ref in refs}:
        _set(items[position], "waited_on", True)
    known = dict(found)  # id → (status, path), of the new tasks too once decided
    edges: list[tuple[uuid.UUID, uuid.UUID]] = []
    for i in order(siblings):
        item = items[i]
        task_id = _get(item, "id")
        deps = list(
            dict.fromkeys(
                ref if isinstance(ref, uuid.UUID) else _get(items[ref], "id") for ref in parsed[i]
            )
        )
        edges.extend((task_id, dep) for dep in deps)
        stopped = [dep for dep in deps if known[dep][0] in (Task.FAILED, Task.CANCELLED)]
        if stopped:
            status, path = known[stopped[0]]
            _set(item, "status", on_failure_status(_get(item, "on_dependency_failure")))
            _set(item, "error", stopped_error(stopped[0], path, status))
            _set(item, "exception_type", causes.DEPENDENCY)
            _set(item, "finished_at", now)
        elif any(known[dep][0] != Task.COMPLETED for dep in deps):
            _set(item, "status", Task.WAITING)
        known[task_id] = (_get(item, "status"), _get(item, "task"))
    return Arrangement(edges)


def _lock_and_mark(ids: set[uuid.UUID], using: str) -> dict[uuid.UUID, tuple[int, str]]:
    """Lock the tasks ``ids`` (their finish waits for this transaction), mark them waited on, and
    return each one's status and path."""
    found: dict[uuid.UUID, tuple[int, str]] = {}
    for chunk in chunks(sorted(ids)):
        tasks = Task.objects.using(using).filter(id__in=chunk)
        locked = tasks.select_for_update().order_by("id").values_list("id", "status", "task")
        found.update((task_id, (status, path)) for task_id, status, path in locked)
        tasks.filter(waited_on=False).update(waited_on=True)
    return found


def _get(item: Any, name: str) -> Any:
    """A column value of a new task, made as a Task or as a dict of values (defaults left out)."""
    if isinstance(item, Task):
        return getattr(item, name)
    if name in item:
        return item[name]
    field = Task._meta.get_field(name)
    assert isinstance(field, Field)
    return field.get_default()


def _set(item: Any, name: str, value: Any) -> None:
    if isinstance(item, Task):
        setattr(item, name, value)
    else:
        item[name] = value


def write_edges(arrangement: Arrangement, using: str) -> None:
    if db.connection(using).vendor == "postgresql":
        postgres.insert_dependencies(using, arrangement.edges)
        return
    Dependency.objects.using(using).bulk_create(
        [Dependency(task_id=task, depends_on_id=dep) for task, dep in arrangement.edges],
        batch_size=1000,
    )


# When tasks end.


def settle(
    ended: Mapping[uuid.UUID, int], batches: Iterable[uuid.UUID], using: str, now: datetime
) -> list[Task]:
    """Carry out what ending the tasks ``ended`` (id → final status) means for the tasks waiting on
    them and for ``batches`` (theirs); in the caller's transaction. Returns the waiting tasks this
    stopped that someone listens for (failed ones, and rows of Django's Tasks API), to announce."""
    batches = set(batches)
    completed = [task_id for task_id, status in ended.items() if status == Task.COMPLETED]
    for chunk in chunks(completed):
        _queue_ready(chunk, using, now)
    announce: list[Task] = []
    stopped = {task_id: status for task_id, status in ended.items() if status != Task.COMPLETED}
    while stopped:  # down the chains, one level at a time
        following: dict[uuid.UUID, int] = {}
        for chunk in chunks(stopped):
            following.update(_stop_dependants({i: stopped[i] for i in chunk}, using, now, batches))
        announce.extend(_to_announce(following, using))
        stopped = following
    if batches:
        close_finished(batches, using, now)
    return announce


def settle_pending(ids: Iterable[uuid.UUID], using: str, now: datetime) -> list[Task]:
    """``settle`` the endings ``ids`` left to settle (``Task.settle_pending``, PostgreSQL), each
    once: by the finisher right after its finish, or by a rescue pass if that finisher died."""
    ended: dict[uuid.UUID, int] = {}
    batches: set[uuid.UUID] = set()
    for task_id, status, batch_id, waited_on in postgres.take_pending(using, sorted(ids)):
        if waited_on:
            ended[task_id] = status
        if batch_id is not None:
            batches.add(batch_id)
    return settle(ended, batches, using, now)


def _lock_waiting(ids: list[uuid.UUID], using: str, *fields: str) -> list[Any]:
    """``fields`` of the waiting tasks that depend on any of ``ids``, locked in a fixed order.

    Found first, then locked by primary key: a locking read that scanned (MySQL does) would wait for
    rows other transactions hold that are none of these. Nobody can add a dependant of ``ids``
    meanwhile: that would lock their rows, which the caller's ending holds.
    """
    dependants = Dependency.objects.using(using).filter(depends_on__in=ids)
    locked: list[Any] = []
    for chunk in chunks(sorted(set(dependants.values_list("task", flat=True)))):
        waiting = Task.objects.using(using).filter(id__in=chunk, status=Task.WAITING)
        locked.extend(waiting.select_for_update().order_by("id").values_list(*fields))
    return locked


def _queue_ready(completed: list[uuid.UUID], using: str, now: datetime) -> None:
    """Queue the dependants of ``completed`` that wait for nothing else."""
    waiting = [task_id for (task_id,) in _lock_waiting(completed, using, "id")]
    queues: set[str] = set()
    for chunk in chunks(waiting):
        # A new statement, after the locks: it sees every finish committed before them.
        # NOT EXISTS stops at the first unmet dependency: a task waiting for a hundred thousand
        # others is not read whole at each of their finishes.
        unmet = Dependency.objects.using(using).filter(task=OuterRef("pk"))
        unmet = unmet.exclude(depends_on__status=Task.COMPLETED)
        ready = Task.objects.using(using).filter(id__in=chunk).exclude(Exists(unmet))
        queues.update(ready.values_list("queue", flat=True).distinct())
        ready.update(status=Task.QUEUED, modified=now)
    for queue in queues:
        notify.task_enqueued(queue, using)


def _stop_dependants(
    stopped: Mapping[uuid.UUID, int], using: str, now: datetime, batches: set[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """End the waiting dependants of ``stopped`` (id → Failed or Cancelled), each as it asked;
    add their batches to ``batches`` and return them (id → their new status)."""
    victims = _lock_waiting(list(stopped), using, "id", "on_dependency_failure", "batch_id")
    if not victims:
        return {}
    edges = Dependency.objects.using(using).filter(
        depends_on__in=list(stopped), task__status=Task.WAITING
    )
    stopper = dict(edges.order_by("-depends_on").values_list("task", "depends_on"))
    paths = dict(
        Task.objects.using(using).filter(id__in=set(stopper.values())).values_list("id", "task")
    )
    groups: dict[tuple[int, str], list[uuid.UUID]] = {}
    ended: dict[uuid.UUID, int] = {}
    for task_id, on_dependency_failure, batch_id in victims:
        dep = stopper[task_id]
        status = on_failure_status(on_dependency_failure)
        groups.setdefault((status, stopped_error(dep, paths[dep], stopped[dep])), []).append(
            task_id
        )
        ended[task_id] = status
        if batch_id is not None:
            batches.add(batch_id)
    for (status, error), ids in groups.items():
        for chunk in chunks(ids):
            Task.objects.using(using).filter(id__in=chunk, status=Task.WAITING).update(
                status=status,
                error=error,
                exception_type=causes.DEPENDENCY,
                finished_at=now,
                modified=now,
            )
    return ended


def _to_announce(ended: Mapping[uuid.UUID, int], using: str) -> list[Task]:
    """The tasks of ``ended`` whose ending someone hears of: failed ones (``on_failure``) and rows of
    Django's Tasks API (``task_finished``); cancelled ones are not announced."""
    tasks: list[Task] = []
    for chunk in chunks(ended):
        heard = Q(status=Task.FAILED) | ~Q(backend="")
        tasks.extend(Task.objects.using(using).filter(id__in=chunk).filter(heard))
    return tasks


def close_finished(batches: Iterable[uuid.UUID], using: str, now: datetime) -> None:
    """Close each open batch of ``batches`` whose tasks have all finished, and queue its callback."""
    open_batches = (
        Batch.objects.using(using)
        .filter(id__in=sorted(batches), finished_at__isnull=True)
        .select_for_update()
        .order_by("id")
    )
    tasks = Task.objects.using(using)
    for batch_id, callback_id in list(open_batches.values_list("id", "callback_id")):
        # A new statement, after the lock: it sees every finish committed before it.
        if tasks.filter(batch_id=batch_id, status__in=Task.UNFINISHED).exists():
            continue
        Batch.objects.using(using).filter(id=batch_id).update(finished_at=now)
        if callback_id is not None:
            callback = tasks.filter(id=callback_id, status=Task.WAITING)
            queue = callback.values_list("queue", flat=True).first()
            if queue is not None and callback.update(status=Task.QUEUED, modified=now):
                notify.task_enqueued(queue, using)


# When tasks are queued again.


def stopped_by(ids: Iterable[uuid.UUID], using: str) -> list[uuid.UUID]:
    """The tasks that never ran because one of ``ids`` ended, and those they stopped in turn."""
    stopped: list[uuid.UUID] = []
    seen: set[uuid.UUID] = set()
    frontier = list(ids)
    while frontier:
        found: list[uuid.UUID] = []
        for chunk in chunks(frontier):
            waits = Dependency.objects.using(using).filter(depends_on__in=chunk).values("task")
            victims = Task.objects.using(using).filter(
                id__in=waits, status__in=Task.FINISHED, exception_type=causes.DEPENDENCY
            )
            found.extend(i for i in victims.values_list("id", flat=True) if i not in seen)
        seen.update(found)
        stopped.extend(found)
        frontier = found
    return stopped


def wait_again(ids: Iterable[uuid.UUID], using: str, now: datetime) -> None:
    """Of the tasks ``ids``, just queued again, those with a dependency that has not completed wait
    for it again; one that has failed or was cancelled stops them again at once, as at enqueue."""
    tasks = Task.objects.using(using)
    waiting: list[uuid.UUID] = []
    for chunk in chunks(ids):
        unmet = Dependency.objects.using(using).filter(task=OuterRef("pk"))
        unmet = unmet.exclude(depends_on__status=Task.COMPLETED)
        again = tasks.filter(id__in=chunk, status=Task.QUEUED).filter(Exists(unmet))
        ids_again = list(again.values_list("id", flat=True))
        tasks.filter(id__in=ids_again).update(status=Task.WAITING, modified=now)
        waiting.extend(ids_again)
    ended: dict[uuid.UUID, int] = {}
    for chunk in chunks(waiting):
        stoppers = Dependency.objects.using(using).filter(
            task__in=chunk, depends_on__status__in=(Task.FAILED, Task.CANCELLED)
        )
        ended.update(stoppers.values_list("depends_on", "depends_on__status"))
    if ended:
        settle(ended, (), using, now)


def reopen(batches: Iterable[uuid.UUID], using: str) -> None:
    """Batches with tasks queued again are open again; their callback waits for them again."""
    batches = list(batches)
    if not batches:
        return
    closed = Batch.objects.using(using).filter(id__in=batches, finished_at__isnull=False)
    callbacks = list(closed.exclude(callback=None).values_list("callback_id", flat=True))
    closed.update(finished_at=None)
    Task.objects.using(using).filter(id__in=callbacks, status__in=Task.FINISHED).update(
        status=Task.WAITING,
        attempts=0,
        run_after=None,
        claim_token=None,
        cancel_requested=False,
        started_at=None,
        finished_at=None,
    )


# Reading.


def counts(batch: Batch) -> dict[int, int]:
    """How many of the batch's tasks have each status."""
    return counts_by_batch([batch.pk], batch._state.db or db.alias())[batch.pk]


def counts_by_batch(
    batch_ids: Iterable[uuid.UUID], using: str | None = None
) -> dict[uuid.UUID, dict[int, int]]:
    """How many tasks of each status each of ``batch_ids`` has (a page of batches at once): one
    GROUP BY on the index on batch and status."""
    found: dict[uuid.UUID, dict[int, int]] = {batch_id: {} for batch_id in batch_ids}
    if not found:
        return found
    rows = (
        Task.objects.using(using or db.alias())
        .filter(batch__in=list(found))
        .values_list("batch", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    for batch_id, status, n in rows:
        found[batch_id][status] = n
    return found
