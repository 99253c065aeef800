"""The pipe's messages (``worker.protocol``), sent and read over a real pipe."""

from __future__ import annotations

import pickle
from multiprocessing import Pipe

from django_simple_queue.lifecycle import Ending, Outcome
from django_simple_queue.worker import protocol
from tests.factories import TaskFactory


def test_an_exception_that_does_not_unpickle_arrives_as_a_runtime_error_with_its_repr():
    from tests.tasks import TwoPartError

    message = protocol.pack(
        Outcome(Ending.FAILED, error="Traceback…", exception=TwoPartError(1, "x"))
    )
    outcome = protocol.unpack(pickle.loads(pickle.dumps(message)))
    assert isinstance(outcome.exception, RuntimeError)
    assert "TwoPartError" in str(outcome.exception) and outcome.error == "Traceback…"
    sent = protocol.pack(Outcome(Ending.FAILED, exception=KeyError("k")))
    kept = protocol.unpack(pickle.loads(pickle.dumps(sent)))
    assert isinstance(kept.exception, KeyError) and kept.exception.args == ("k",)


def test_an_outcome_without_exception_travels_as_is():
    ours, theirs = Pipe()
    protocol.send_outcome(theirs, Outcome(Ending.COMPLETED, output="5", log="a line"))
    kind, outcome = protocol.receive(ours)
    assert kind == protocol.DONE
    assert (outcome.ok, outcome.output, outcome.log, outcome.exception) == (
        True,
        "5",
        "a line",
        None,
    )


def test_output_and_progress_arrive_in_the_order_they_were_sent():
    ours, theirs = Pipe()
    sink = protocol.PipeSink(theirs)
    sink.output("a")
    sink.progress(0.5, "half")
    sink.output("b")
    assert [protocol.receive(ours) for _ in range(3)] == [
        (protocol.OUTPUT, "a"),
        (protocol.PROGRESS, (0.5, "half")),
        (protocol.OUTPUT, "b"),
    ]


def test_tasks_arrive_with_every_field_and_none_asks_to_exit():
    ours, theirs = Pipe()
    sent = TaskFactory.build(task="tests.tasks.add", args='{"a": 1}', timeout=7, priority=3)
    protocol.send_tasks(ours, [sent, sent])
    received = protocol.receive_tasks(theirs)
    assert received is not None and len(received) == 2
    for name in protocol.FIELDS:
        assert getattr(received[0], name) == getattr(sent, name), name
    assert not received[0]._state.adding, "as loaded from the database"
    protocol.send_exit(ours)
    assert protocol.receive_tasks(theirs) is None


def test_a_task_message_is_plain_values_in_field_order():
    task = TaskFactory.build()
    message = protocol.task_message(task)
    assert isinstance(message, tuple)
    assert list(message) == [getattr(task, name) for name in protocol.FIELDS]
