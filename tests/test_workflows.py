"""Workflows: tasks that wait for others, batches and their callback (``workflows``)."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator

import pytest
from django.db import connection, transaction

from django_simple_queue import lifecycle, workflows
from django_simple_queue.enqueue import add_to_batch, create_batch, create_task, create_tasks
from django_simple_queue.exceptions import InvalidStateChange, InvalidTaskArguments
from django_simple_queue.lifecycle import Ending, Outcome
from django_simple_queue.models import Batch, Dependency, Task
from tests.conftest import wait_for
from tests.models import Execution

ADD = "tests.tasks.add"


def run(task_id: uuid.UUID, ending: Ending = Ending.COMPLETED, **outcome: str) -> Task:
    """Claim ``task_id`` and end its attempt as a worker would."""
    task = Task.objects.get(id=task_id)
    assert task.status == Task.QUEUED, task.get_status_display()
    assert lifecycle.claim_one(task, "test:1")
    lifecycle.finish(task, Outcome(ending, **outcome))
    return Task.objects.get(id=task_id)


def status(task_id: uuid.UUID) -> int:
    return Task.objects.values_list("status", flat=True).get(id=task_id)


# Pure rules.


def test_order_puts_each_item_after_what_it_depends_on():
    placed = workflows.order([[1, 2], [], [1], []])
    assert sorted(placed) == [0, 1, 2, 3]
    assert placed.index(1) < placed.index(2) < placed.index(0)


@pytest.mark.parametrize(
    ("dependencies", "shown"),
    [([[0]], "0 → 0"), ([[1], [0]], "0 → 1 → 0"), ([[], [2], [3], [1]], "1 → 2 → 3 → 1")],
)
def test_order_names_a_cycle(dependencies, shown):
    with pytest.raises(ValueError, match=f"cycle: {shown} "):
        workflows.order(dependencies)


def test_references_are_task_ids_or_positions():
    task_id = uuid.uuid4()
    assert workflows.parse_references([str(task_id), task_id, 1], 2) == [task_id, task_id, 1]
    with pytest.raises(ValueError, match="'nope' is not a task id"):
        workflows.parse_references(["nope"], 2)
    with pytest.raises(ValueError, match="position of another task of this list"):
        workflows.parse_references([2], 2)
    with pytest.raises(ValueError, match="3 is not a task id"):
        workflows.parse_references([3], 0)  # create_task: no list to point into
    with pytest.raises(TypeError, match="a list of task ids"):
        workflows.parse_references(str(task_id), 0)


# Dependencies.


@pytest.mark.django_db
def test_a_dependant_waits_until_its_dependency_completes():
    first = create_task(ADD, {"a": 1})
    second = create_task(ADD, {"a": 2}, depends_on=[first])
    assert status(second) == Task.WAITING
    assert Task.objects.get(id=first).waited_on
    assert list(Task.objects.get(id=second).dependencies.all()) == [Task.objects.get(id=first)]
    (claimed,) = lifecycle.claim("test:1", limit=10)  # the waiting one is not claimable
    assert claimed.id == first
    lifecycle.finish(claimed, Outcome(Ending.COMPLETED))
    assert status(second) == Task.QUEUED


@pytest.mark.django_db
def test_a_dependant_of_several_waits_for_all_of_them():
    a, b = create_task(ADD, {"a": 1}), create_task(ADD, {"a": 2})
    joined = create_task(ADD, {"a": 3}, depends_on=[a, b, a])
    assert Dependency.objects.filter(task=joined).count() == 2
    run(a)
    assert status(joined) == Task.WAITING
    run(b)
    assert status(joined) == Task.QUEUED


@pytest.mark.django_db
def test_a_retried_dependency_has_not_ended():
    flaky = create_task("tests.tasks.fail", {}, max_attempts=2)
    after = create_task(ADD, {"a": 1}, depends_on=[flaky])
    assert run(flaky, Ending.FAILED, error="boom").status == Task.QUEUED
    assert status(after) == Task.WAITING
    Task.objects.filter(id=flaky).update(run_after=None)
    run(flaky)
    assert status(after) == Task.QUEUED


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("ending", "ended"), [(Ending.FAILED, "failed"), (Ending.CANCELLED, "was cancelled")]
)
def test_a_stopped_dependency_cancels_its_chain(ending, ended):
    a = create_task("tests.tasks.fail", {})
    b = create_task(ADD, {"a": 1}, depends_on=[a])
    c = create_task(ADD, {"a": 2}, depends_on=[b])
    failing = create_task(ADD, {"a": 3}, depends_on=[b], on_dependency_failure="fail")
    other = create_task(ADD, {"a": 4})
    run(a, ending, error="boom")
    rows = Task.objects.in_bulk([b, c, failing, other])
    assert rows[b].status == Task.CANCELLED
    assert rows[b].error == f"Not run: task {a} (tests.tasks.fail), which it depends on, {ended}."
    assert rows[c].status == Task.CANCELLED
    assert (
        rows[c].error == f"Not run: task {b} (tests.tasks.add), which it depends on, was cancelled."
    )
    assert rows[failing].status == Task.FAILED and rows[failing].finished_at is not None
    assert rows[other].status == Task.QUEUED


@pytest.mark.django_db
def test_a_dependant_failed_by_its_dependency_is_announced(django_capture_on_commit_callbacks):
    from django_simple_queue import signals

    heard = []

    def receiver(sender, task, **kwargs):
        heard.append(task.id)

    signals.on_failure.connect(receiver)
    try:
        a = create_task("tests.tasks.fail", {})
        b = create_task(ADD, {"a": 1}, depends_on=[a], on_dependency_failure="fail")
        with django_capture_on_commit_callbacks(execute=True):
            run(a, Ending.FAILED, error="boom")
    finally:
        signals.on_failure.disconnect(receiver)
    assert heard == [a, b]


@pytest.mark.django_db
def test_cancelling_a_waiting_task_cancels_what_waits_for_it():
    a = create_task(ADD, {"a": 1})
    b = create_task(ADD, {"a": 2}, depends_on=[a])
    c = create_task(ADD, {"a": 3}, depends_on=[b])
    assert lifecycle.cancel(Task.objects.filter(id=b)) == (1, 0)
    assert (status(a), status(b), status(c)) == (Task.QUEUED, Task.CANCELLED, Task.CANCELLED)


@pytest.mark.django_db
def test_a_rescued_dependency_out_of_attempts_cancels_its_dependants():
    a = create_task(ADD, {"a": 1})
    b = create_task(ADD, {"a": 2}, depends_on=[a])
    task = Task.objects.get(id=a)
    lifecycle.claim_one(task, "lost:1")
    Task.objects.filter(id=a).update(heartbeat_at=task.heartbeat_at.replace(year=2000))
    assert [t.id for t in lifecycle.rescue_stale()] == [a]
    assert status(b) == Task.CANCELLED


@pytest.mark.django_db
def test_dependencies_that_ended_before_the_enqueue_decide_at_once():
    done = run(create_task(ADD, {"a": 1})).id
    failed = run(create_task("tests.tasks.fail", {}), Ending.FAILED, error="boom").id
    assert status(create_task(ADD, {"a": 2}, depends_on=[done])) == Task.QUEUED
    stopped = Task.objects.get(id=create_task(ADD, {"a": 3}, depends_on=[done, failed]))
    assert stopped.status == Task.CANCELLED
    assert (
        stopped.error == f"Not run: task {failed} (tests.tasks.fail), which it depends on, failed."
    )
    assert stopped.finished_at is not None
    failing = create_task(ADD, {"a": 4}, depends_on=[failed], on_dependency_failure="fail")
    assert status(failing) == Task.FAILED


@pytest.mark.django_db
def test_positions_chain_the_tasks_of_one_call():
    ids = create_tasks(
        [
            {"task": ADD, "args": {"a": 1}},
            {"task": ADD, "args": {"a": 2}, "depends_on": [0]},
            {"task": ADD, "args": {"a": 3}, "depends_on": [1, 0]},
        ]
    )
    assert [status(i) for i in ids] == [Task.QUEUED, Task.WAITING, Task.WAITING]
    run(ids[0])
    assert [status(i) for i in ids[1:]] == [Task.QUEUED, Task.WAITING]
    run(ids[1])
    assert status(ids[2]) == Task.QUEUED


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("items", "error", "message"),
    [
        (
            [
                {"task": ADD, "args": {"a": 1}, "depends_on": [1]},
                {"task": ADD, "args": {"a": 1}, "depends_on": [0]},
            ],
            ValueError,
            "cycle: 0 → 1 → 0",
        ),
        ([{"task": ADD, "args": {"a": 1}, "depends_on": [0]}], ValueError, "cycle: 0 → 0"),
        (
            [{"task": ADD, "args": {"a": 1}, "depends_on": [str(uuid.UUID(int=7))]}],
            ValueError,
            f"names no existing task: {uuid.UUID(int=7)}",
        ),
        (
            [{"task": ADD, "args": {"a": 1}, "depends_on": ["12"]}],
            ValueError,
            "'12' is not a task id",
        ),
        ([{"task": ADD, "args": {"a": 1}, "depends_on": "abc"}], TypeError, "a list of task ids"),
        (
            [
                {"task": ADD, "args": {"a": 1}},
                {"task": ADD, "args": {"a": 1}, "depends_on": [0], "unique_key": "k"},
            ],
            ValueError,
            "unique_key cannot be combined with depends_on",
        ),
        (
            [{"task": ADD, "args": {"a": 1}, "on_dependency_failure": "ignore"}],
            ValueError,
            "on_dependency_failure must be 'cancel' or 'fail'",
        ),
    ],
)
def test_bad_dependencies_are_refused_and_nothing_is_written(items, error, message):
    before = create_task(ADD, {"a": 1})
    with pytest.raises(error, match=message):
        create_tasks(items)
    assert list(Task.objects.values_list("id", flat=True)) == [before]
    assert not Dependency.objects.exists()


@pytest.mark.django_db
def test_create_task_refuses_an_unknown_dependency():
    with pytest.raises(ValueError, match="names no existing task"):
        create_task(ADD, {"a": 1}, depends_on=[uuid.uuid4()])
    assert not Task.objects.exists()


# Batches.


@pytest.mark.django_db
def test_a_batch_calls_back_once_when_all_its_tasks_have_finished():
    batch_id = create_batch(
        [{"task": ADD, "args": {"a": i}} for i in range(3)],
        on_complete={
            "task": "tests.tasks.batch_done",
            "args": {"label": "done"},
            "queue": "reports",
        },
        name="three",
    )
    batch = Batch.objects.get(id=batch_id)
    assert batch.name == "three" and batch.finished_at is None
    callback = batch.callback
    assert callback.status == Task.WAITING and callback.queue == "reports"
    assert json.loads(callback.args) == {"label": "done", "batch_id": str(batch_id)}
    first, second, third = batch.tasks.order_by("created", "args")
    run(first.id)
    run(second.id, Ending.FAILED, error="boom")
    assert workflows.counts(batch) == {Task.COMPLETED: 1, Task.FAILED: 1, Task.QUEUED: 1}
    assert status(callback.id) == Task.WAITING
    run(third.id)
    batch.refresh_from_db()
    assert batch.finished_at is not None
    assert status(callback.id) == Task.QUEUED
    workflows.close_finished([batch_id], "default", batch.finished_at)  # a closed batch stays so
    assert Batch.objects.get(id=batch_id).finished_at == batch.finished_at


@pytest.mark.django_db
def test_an_empty_batch_finishes_at_once():
    batch_id = create_batch([], on_complete={"task": "tests.tasks.batch_done"})
    batch = Batch.objects.get(id=batch_id)
    assert batch.finished_at is not None
    assert batch.callback.status == Task.QUEUED


@pytest.mark.django_db
def test_a_batch_ends_when_its_waiting_tasks_are_stopped():
    batch_id = create_batch(
        [
            {"task": "tests.tasks.fail", "args": {}},
            {"task": ADD, "args": {"a": 1}, "depends_on": [0]},
        ],
        on_complete={"task": "tests.tasks.batch_done"},
    )
    batch = Batch.objects.get(id=batch_id)
    failing = batch.tasks.get(task="tests.tasks.fail")
    run(failing.id, Ending.FAILED, error="boom")
    batch.refresh_from_db()
    assert workflows.counts(batch) == {Task.FAILED: 1, Task.CANCELLED: 1}
    assert batch.finished_at is not None and batch.callback.status == Task.QUEUED


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("on_complete", "error", "message"),
    [
        ({"task": ADD, "args": {"a": 1}}, InvalidTaskArguments, "batch_id"),
        ({"task": "tests.tasks.batch_done", "args": {"batch_id": "x"}}, ValueError, "batch_id"),
        ({"args": {}}, TypeError, 'with "task"'),
        ({"task": "tests.tasks.batch_done", "depends_on": []}, TypeError, "cannot have depends_on"),
    ],
)
def test_a_bad_callback_is_refused_before_anything_is_written(on_complete, error, message):
    with pytest.raises(error, match=message):
        create_batch([{"task": ADD, "args": {"a": 1}}], on_complete=on_complete)
    assert not Task.objects.exists() and not Batch.objects.exists()


@pytest.mark.django_db
def test_tasks_join_an_open_batch_only():
    batch_id = create_batch(
        [{"task": ADD, "args": {"a": 1}}], on_complete={"task": "tests.tasks.batch_done"}
    )
    batch = Batch.objects.get(id=batch_id)
    (added,) = add_to_batch(batch_id, [{"task": ADD, "args": {"a": 2}}])
    run(batch.tasks.exclude(id=added).get().id)
    assert Batch.objects.get(id=batch_id).finished_at is None  # the added one is still queued
    run(added)
    assert Batch.objects.get(id=batch_id).finished_at is not None
    with pytest.raises(InvalidStateChange, match=f"Batch {batch_id} finished at"):
        add_to_batch(batch_id, [{"task": ADD, "args": {"a": 3}}])
    with pytest.raises(ValueError, match="No batch has the id"):
        add_to_batch(uuid.uuid4(), [{"task": ADD, "args": {"a": 3}}])
    assert batch.tasks.count() == 2


@pytest.mark.django_db
def test_enqueueing_a_finished_batch_task_again_reopens_the_batch():
    batch_id = create_batch(
        [{"task": "tests.tasks.fail", "args": {}}], on_complete={"task": "tests.tasks.batch_done"}
    )
    batch = Batch.objects.get(id=batch_id)
    failed = run(batch.tasks.get().id, Ending.FAILED, error="boom")
    callback = run(batch.callback_id)
    assert callback.status == Task.COMPLETED
    assert lifecycle.enqueue_again(Task.objects.filter(id=failed.id)) == 1
    batch.refresh_from_db()
    assert batch.finished_at is None and status(batch.callback_id) == Task.WAITING
    run(failed.id)
    assert Batch.objects.get(id=batch_id).finished_at is not None
    assert status(batch.callback_id) == Task.QUEUED


# Endings at the same moment in two connections (row locks: PostgreSQL, MariaDB, MySQL).


@contextlib.contextmanager
def uncommitted(action: Callable[[], object]) -> Iterator[None]:
    """Run ``action`` in a transaction of another connection and keep it open during the body."""
    done, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def hold() -> None:
        try:
            with transaction.atomic():
                action()
                done.set()
                release.wait(15)
        except BaseException as exc:
            errors.append(exc)
            done.set()
        finally:
            connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert done.wait(15)
        yield
    finally:
        release.set()
        thread.join()
    assert not errors, errors


def meanwhile(action: Callable[[], object]) -> threading.Thread:
    """Start ``action`` in another connection; it must still be waiting for a lock 0.5 s later."""

    def act() -> None:
        try:
            action()
        finally:
            connection.close()

    thread = threading.Thread(target=act)
    thread.start()
    thread.join(0.5)
    assert thread.is_alive(), "it should wait for the other transaction's lock"
    return thread


def claimed(task_id: uuid.UUID, worker: str) -> Task:
    task = Task.objects.get(id=task_id)
    assert lifecycle.claim_one(task, worker)
    return task


def complete(task: Task) -> Callable[[], object]:
    return lambda: lifecycle.finish(task, Outcome(Ending.COMPLETED))


@pytest.mark.server_db
@pytest.mark.django_db(transaction=True)
def test_the_last_two_tasks_of_a_batch_ending_together_queue_its_callback_once():
    batch_id = create_batch(
        [{"task": ADD, "args": {"a": i}} for i in range(2)],
        on_complete={"task": "tests.tasks.batch_done"},
    )
    batch = Batch.objects.get(id=batch_id)
    first, second = (claimed(t.id, f"host{i}:1") for i, t in enumerate(batch.tasks.all()))
    with uncommitted(complete(first)):
        other = meanwhile(complete(second))
    other.join(15)
    batch.refresh_from_db()
    assert batch.finished_at is not None
    assert status(batch.callback_id) == Task.QUEUED


@pytest.mark.server_db
@pytest.mark.django_db(transaction=True)
def test_two_dependencies_ending_together_queue_their_dependant():
    x, y = create_task(ADD, {"a": 1}), create_task(ADD, {"a": 2})
    joined = create_task(ADD, {"a": 3}, depends_on=[x, y])
    first, second = claimed(x, "host1:1"), claimed(y, "host2:1")
    with uncommitted(complete(first)):
        other = meanwhile(complete(second))
    other.join(15)
    assert status(joined) == Task.QUEUED


@pytest.mark.server_db
@pytest.mark.django_db(transaction=True)
def test_a_dependency_ending_during_the_enqueue_of_its_dependant_is_seen_either_way():
    # The enqueue first: the finish waits for its commit, then finds the new dependant.
    a = claimed(create_task(ADD, {"a": 1}), "host1:1")
    ids: list[uuid.UUID] = []
    with uncommitted(lambda: ids.append(create_task(ADD, {"a": 2}, depends_on=[a.id]))):
        other = meanwhile(complete(a))
    other.join(15)
    assert status(ids[0]) == Task.QUEUED
    # The finish first: the enqueue waits for its commit, then finds the dependency completed.
    b = claimed(create_task(ADD, {"a": 3}), "host1:1")
    with uncommitted(complete(b)):
        other = meanwhile(lambda: ids.append(create_task(ADD, {"a": 4}, depends_on=[b.id])))
    other.join(15)
    assert status(ids[1]) == Task.QUEUED


# Real workers.


@pytest.mark.django_db(transaction=True)
def test_chains_run_in_order_across_workers(start_worker):
    def chain(c: int) -> list[dict[str, object]]:
        steps = [{"task": "tests.tasks.mark", "args": {"key": f"{c}:{i}"}} for i in range(4)]
        for i in range(1, 4):
            steps[i]["depends_on"] = [i - 1]
        return steps

    chains = [create_tasks(chain(c)) for c in range(4)]
    workers = [start_worker("--concurrency", "2") for _ in range(3)]
    wait_for(lambda: Task.objects.filter(status=Task.COMPLETED).count() == 16, timeout=60)
    for worker in workers:
        worker.terminate()
    runs = list(Execution.objects.order_by("id").values_list("key", flat=True))
    assert sorted(runs) == sorted(f"{c}:{i}" for c in range(4) for i in range(4))  # each once
    # Each step's own record is written while it runs: after the commit of the step before.
    for c in range(4):
        order = [runs.index(f"{c}:{i}") for i in range(4)]
        assert order == sorted(order)
    assert all(status(task_id) == Task.COMPLETED for ids in chains for task_id in ids)


@pytest.mark.django_db(transaction=True)
def test_batches_call_back_once_with_workers_racing(start_worker):
    batches = [
        create_batch(
            [
                {"task": "tests.tasks.mark", "args": {"key": f"{b}:{i}", "seconds": 0.2}}
                for i in range(3)
            ],
            on_complete={"task": "tests.tasks.batch_done", "args": {"label": str(b)}},
        )
        for b in range(10)
    ]
    workers = [start_worker("--concurrency", "3") for _ in range(3)]
    wait_for(lambda: Execution.objects.filter(key__startswith="batch:").count() >= 10, timeout=60)
    time.sleep(1)  # a second callback, if any were queued, would have run by now
    for worker in workers:
        worker.terminate()
    runs = Counter(Execution.objects.filter(key__startswith="batch:").values_list("key", flat=True))
    assert runs == {f"batch:{b}": 1 for b in batches}
    assert not Batch.objects.filter(finished_at=None).exists()
    assert set(Task.objects.values_list("status", flat=True)) == {Task.COMPLETED}


@pytest.mark.django_db
@pytest.mark.parametrize("ending", [Ending.COMPLETED, Ending.FAILED])
def test_a_task_with_thousands_of_dependants_settles_them_all(ending):
    many = workflows.CHUNK + 500  # more than one statement's worth
    first = create_task(ADD, {"a": 1})
    create_tasks({"task": ADD, "args": {"a": i}, "depends_on": [first]} for i in range(many))
    run(first, ending, error="boom")
    expected = Task.QUEUED if ending is Ending.COMPLETED else Task.CANCELLED
    assert Task.objects.filter(status=expected).count() == many


@pytest.mark.django_db
def test_deleting_a_task_others_wait_for_cancels_them():
    batch_id = create_batch(
        [{"task": ADD, "args": {"a": 1}}], on_complete={"task": "tests.tasks.batch_done"}
    )
    batch = Batch.objects.get(id=batch_id)
    member = batch.tasks.get().id
    waiting = create_task(ADD, {"a": 2}, depends_on=[member])
    running = claimed(create_task(ADD, {"a": 3}), "host:1")
    assert lifecycle.delete(Task.objects.filter(id__in=[member, running.id])) == 1
    assert Task.objects.get(id=waiting).status == Task.CANCELLED
    assert status(running.id) == Task.PROGRESS  # its worker still writes to it
    batch.refresh_from_db()
    assert batch.finished_at is not None and status(batch.callback_id) == Task.QUEUED


@pytest.mark.django_db
def test_create_task_takes_ids_not_positions():
    with pytest.raises(ValueError, match="0 is not a task id"):
        create_task(ADD, {"a": 1}, depends_on=[0])
    assert not Task.objects.exists()


@pytest.mark.django_db
def test_enqueueing_a_failed_task_again_brings_back_what_it_stopped():
    a = create_task("tests.tasks.fail", {})
    b = create_task(ADD, {"a": 1}, depends_on=[a])
    c = create_task(ADD, {"a": 2}, depends_on=[b], on_dependency_failure="fail")
    cancelled_by_staff = create_task(ADD, {"a": 3}, depends_on=[a])
    lifecycle.cancel(Task.objects.filter(id=cancelled_by_staff))
    run(a, Ending.FAILED, error="boom")
    assert (status(b), status(c)) == (Task.CANCELLED, Task.FAILED)
    assert (
        Task.objects.get(id=c).exception_type == "django_simple_queue.exceptions.DependencyFailed"
    )
    assert lifecycle.enqueue_again(Task.objects.filter(id=a)) == 3
    assert (status(a), status(b), status(c)) == (Task.QUEUED, Task.WAITING, Task.WAITING)
    assert status(cancelled_by_staff) == Task.CANCELLED  # staff's cancel stands
    run(a)
    run(b)
    assert status(c) == Task.QUEUED


@pytest.mark.django_db
def test_a_dependant_enqueued_again_alone_waits_for_its_dependencies_again():
    a = create_task(ADD, {"a": 1})
    b = create_task(ADD, {"a": 2}, depends_on=[a])
    lifecycle.cancel(Task.objects.filter(id=b))
    assert lifecycle.enqueue_again(Task.objects.filter(id=b)) == 1
    assert status(b) == Task.WAITING  # a is still queued
    lifecycle.cancel(Task.objects.filter(id=b))
    run(a, Ending.FAILED, error="boom")
    lifecycle.enqueue_again(Task.objects.filter(id=b))
    stopped = Task.objects.get(id=b)  # stopped again at once, as at enqueue
    assert stopped.status == Task.CANCELLED
    assert stopped.error == f"Not run: task {a} (tests.tasks.add), which it depends on, failed."


@pytest.mark.postgres
@pytest.mark.django_db
def test_an_ending_its_worker_died_before_settling_is_settled_by_a_rescue_pass():
    from datetime import timedelta

    from django_simple_queue import postgres
    from django_simple_queue.lifecycle import endings

    a = claimed(create_task(ADD, {"a": 1}), "host:1")
    b = create_task(ADD, {"a": 2}, depends_on=[a.id])
    decided = [endings._decide(a, Outcome(Ending.COMPLETED), a.started_at)]
    # The worker's one finish statement, and then its death: nothing settled yet.
    assert postgres.finish_many("default", [a], decided, a.started_at) == {a.id: True}
    assert status(b) == Task.WAITING
    assert lifecycle.settle_left() == 0  # within STALE_AFTER, its finisher may still settle it
    Task.objects.filter(id=a.id).update(modified=a.started_at - timedelta(hours=1))
    assert lifecycle.settle_left() == 1
    assert status(b) == Task.QUEUED
    assert not Task.objects.get(id=a.id).settle_pending
    assert lifecycle.settle_left() == 0


@pytest.mark.server_db
@pytest.mark.django_db(transaction=True)
def test_an_ending_does_not_wait_for_locks_on_tasks_that_do_not_wait_for_it():
    other = create_task(ADD, {"a": 1})
    unrelated = create_task(ADD, {"a": 2}, depends_on=[other])
    ending = claimed(create_task(ADD, {"a": 3}), "host:1")
    with uncommitted(lambda: list(Task.objects.select_for_update().filter(id=unrelated))):
        started = time.monotonic()
        lifecycle.finish(ending, Outcome(Ending.FAILED, error="boom"))
        assert time.monotonic() - started < 5
    assert status(unrelated) == Task.WAITING
