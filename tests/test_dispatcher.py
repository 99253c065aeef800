"""The work in flight (``worker.dispatcher``): claiming, sending tasks to children, and taking in
what children say. The children here run over real pipes (tests/child_pipes.py); the rules the
dispatcher follows are tested in tests/test_prefetch.py."""

from __future__ import annotations

import time

import pytest

from django_simple_queue.lifecycle import Ending, Outcome
from django_simple_queue.worker import protocol
from django_simple_queue.worker.children import Child, Children, StopReason
from django_simple_queue.worker.dispatcher import Dispatcher, Stop
from django_simple_queue.worker.recorder import Recorder
from tests.child_pipes import make_child, report_exit, running_child
from tests.factories import TaskFactory


def make_dispatcher(*children: Child, concurrency: int = 1) -> Dispatcher:
    """A dispatcher holding ``children``, as a worker's is."""
    pool = Children(max_tasks_per_child=100)
    pool.all = list(children)
    return Dispatcher(
        name="test-worker",
        queues=[],
        concurrency=concurrency,
        max_tasks=None,
        children=pool,
        recorder=Recorder(),
        stop=Stop(grace=5.0),
    )


def test_a_stopping_dispatcher_claims_nothing_and_gives_its_backlog_back():
    dispatcher = make_dispatcher(concurrency=4)
    assert dispatcher.claim_count() == 4
    waiting = TaskFactory.build()
    dispatcher.backlog.append(waiting)
    dispatcher.claimed = 1
    dispatcher.stop.since = time.monotonic()
    assert dispatcher.claim_count() == 0
    assert dispatcher.claim() == 0, "no claim: not even a query"
    assert not dispatcher.backlog and dispatcher.recorder.releases == [waiting]
    assert dispatcher.claimed == 0, "a task given back is not counted against --max-tasks"


def test_nothing_starts_once_running_tasks_are_being_stopped():
    child, _theirs, _status = make_child()
    dispatcher = make_dispatcher(child)
    task = TaskFactory.build()
    dispatcher.backlog.append(task)
    dispatcher.stop.since = time.monotonic()
    dispatcher.stop.at_once = True
    dispatcher.dispatch()
    assert list(dispatcher.backlog) == [task] and not child.busy


def test_held_is_every_task_claimed_and_not_yet_recorded():
    child, _theirs, _status = make_child()
    dispatcher = make_dispatcher(child)
    running, queued, finished = TaskFactory.build(), TaskFactory.build(), TaskFactory.build()
    assert child.start([running], [None])
    dispatcher.backlog.append(queued)
    dispatcher.recorder.outcome(finished, Outcome(Ending.COMPLETED), 0.0)
    assert {task.id for task in dispatcher.held()} == {running.id, queued.id, finished.id}


@pytest.mark.django_db
@pytest.mark.parametrize("reason", [StopReason.SHUTDOWN, StopReason.LOST])
def test_an_outcome_sent_before_the_kill_counts_and_the_task_the_kill_caught_goes_back(reason):
    # The first task finished (its outcome unread) as the worker decided to stop it; the kill
    # caught the next one in the child's queue, which did nothing wrong.
    first, second = TaskFactory(), TaskFactory()
    child, theirs, status, stand_in = running_child(first, second)
    dispatcher = make_dispatcher(child)
    protocol.send_outcome(theirs, Outcome(Ending.COMPLETED, output="first's"))
    child.stop_task(reason, time.monotonic())
    report_exit(status, stand_in)

    dispatcher.receive(child)
    assert [(task.id, outcome.output) for task, outcome, _ in dispatcher.recorder.results] == [
        (first.id, "first's")
    ]
    assert [task.id for task in dispatcher.recorder.releases] == [second.id]
    assert dispatcher.children.all == []


@pytest.mark.django_db
@pytest.mark.parametrize("reason", [StopReason.CANCEL, StopReason.TIMEOUT])
def test_a_task_whose_outcome_is_on_its_way_is_not_stopped(reason):
    # It finished as the worker decided to stop it: what it sent counts, and the next one runs.
    first, second = TaskFactory(), TaskFactory()
    child, theirs, _status, stand_in = running_child(first, second, timeout=3)
    dispatcher = make_dispatcher(child)
    protocol.send_outcome(theirs, Outcome(Ending.COMPLETED, output="first's"))
    dispatcher.stop_unless_done(child, reason)

    assert [(task.id, outcome.output) for task, outcome, _ in dispatcher.recorder.results] == [
        (first.id, "first's")
    ]
    assert child.stop_reason is None and child.task == second
    assert stand_in.poll() is None, "not signalled"
    stand_in.kill()


@pytest.mark.django_db
@pytest.mark.parametrize("reason", [StopReason.CANCEL, StopReason.TIMEOUT])
def test_a_task_that_returns_once_signalled_was_still_stopped(reason):
    # It caught the SIGTERM and returned (or raised): cancelled or timed out all the same. The next
    # task in the child's queue, caught by the SIGKILL that follows, goes back to the queue.
    first, second = TaskFactory(), TaskFactory()
    child, theirs, status, stand_in = running_child(first, second, timeout=3)
    dispatcher = make_dispatcher(child)
    child.stop_task(reason, time.monotonic())
    protocol.send_outcome(theirs, Outcome(Ending.COMPLETED, output="cleaned up", log="its log"))
    report_exit(status, stand_in)

    dispatcher.receive(child)
    ((recorded, outcome, _),) = dispatcher.recorder.results
    assert recorded.id == first.id and not outcome.ok
    assert outcome.log == "its log"
    if reason is StopReason.CANCEL:
        assert outcome.ending is Ending.CANCELLED
    else:
        assert (
            outcome.ending is Ending.TIMED_OUT and outcome.error == "Task timed out after 3 seconds"
        )
    assert [task.id for task in dispatcher.recorder.releases] == [second.id]


@pytest.mark.django_db
def test_a_task_killed_for_its_own_timeout_fails_as_timed_out():
    task = TaskFactory()
    child, _theirs, status, stand_in = running_child(task)
    dispatcher = make_dispatcher(child)
    child.stop_task(StopReason.TIMEOUT, time.monotonic())
    report_exit(status, stand_in)

    dispatcher.receive(child)
    ((recorded, outcome, _),) = dispatcher.recorder.results
    assert (
        recorded.id == task.id
        and outcome.ending is Ending.TIMED_OUT
        and not dispatcher.recorder.releases
    )


@pytest.mark.django_db
def test_an_outcome_the_supervisor_cannot_read_fails_only_its_task_and_the_next_ones_count():
    from tests.tasks import TwoPartError

    bad, queued = TaskFactory(), TaskFactory()
    child, theirs, _status, stand_in = running_child(bad, queued)
    dispatcher = make_dispatcher(child)
    # Pickles in the child, not back in the supervisor (children send protocol.pack(outcome), which
    # keeps the exception apart: this is any other message that cannot be read).
    theirs.send((protocol.DONE, Outcome(Ending.FAILED, exception=TwoPartError(1, "x"))))
    protocol.send_outcome(theirs, Outcome(Ending.COMPLETED, output="queued's"))

    dispatcher.receive(child)
    (bad_outcome, queued_outcome) = [(t.id, o) for t, o, _ in dispatcher.recorder.results]
    assert bad_outcome[0] == bad.id and "could not read" in bad_outcome[1].error
    assert queued_outcome[0] == queued.id and queued_outcome[1].output == "queued's"
    assert child.stop_reason is None, "the child goes on"
    stand_in.kill()
