"""The prefetch and dispatch rules (``worker.prefetch``): plain values in, decisions out."""

from __future__ import annotations

import pytest

from django_simple_queue.worker import prefetch
from django_simple_queue.worker.prefetch import (
    LONG_RUN,
    PREFETCH_MAX_DURATION,
    QUEUE_DEPTH,
    SPAWN,
    Durations,
    Load,
)

SHORT = {"app.short", "app.tiny"}


# -- which paths are short -----------------------------------------------------------------


def test_a_path_is_short_after_a_quick_run_and_unknown_paths_are_not():
    durations = Durations()
    assert durations.short == set()
    durations.record("app.short", 0.001)
    assert durations.short == {"app.short"}


def test_a_path_whose_first_run_is_long_is_not_short():
    durations = Durations()
    durations.record("app.long", PREFETCH_MAX_DURATION)
    assert durations.short == set()


def test_one_long_run_among_quick_ones_moves_the_average_a_fifth_of_the_way():
    durations = Durations()
    durations.record("app.mixed", 0.0)
    durations.record("app.mixed", 0.2)
    assert durations.lately["app.mixed"] == pytest.approx(0.04)
    assert "app.mixed" in durations.short, "0.04s: still short"
    durations.record("app.mixed", 0.2)
    assert durations.lately["app.mixed"] == pytest.approx(0.072)
    assert "app.mixed" not in durations.short


def test_a_path_that_became_long_becomes_short_again_after_quick_runs():
    durations = Durations()
    durations.record("app.x", 1.0)
    for _ in range(30):
        durations.record("app.x", 0.0)
    assert "app.x" in durations.short


# -- whether to prefetch -------------------------------------------------------------------


def test_no_prefetching_before_any_path_is_known_to_be_short():
    assert not prefetch.prefetching(set(), False, [None, None])


def test_prefetching_while_children_are_idle_or_run_short_tasks():
    assert prefetch.prefetching(SHORT, False, [None, None])
    assert prefetch.prefetching(SHORT, False, [("app.short", 0.0), None])
    assert prefetch.prefetching(SHORT, False, [])


def test_no_prefetching_while_a_child_runs_a_task_not_known_to_be_short():
    assert not prefetch.prefetching(SHORT, False, [("app.short", 0.0), ("app.report", 0.0)])


def test_no_prefetching_while_a_short_task_has_run_long_this_time():
    assert prefetch.prefetching(SHORT, False, [("app.short", LONG_RUN * 0.99)])
    assert not prefetch.prefetching(SHORT, False, [("app.short", LONG_RUN)])


def test_no_prefetching_after_giving_a_task_back():
    assert not prefetch.prefetching(SHORT, True, [None])


def test_a_child_holds_a_queue_only_while_prefetching():
    assert prefetch.depth(True) == QUEUE_DEPTH
    assert prefetch.depth(False) == 1


# -- how many to claim ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("concurrency", "held", "count"), [(1, 0, 1), (4, 0, 4), (4, 3, 1), (4, 4, 0), (2, 5, 0)]
)
def test_without_prefetching_one_per_free_child(concurrency, held, count):
    assert prefetch.claim_count(prefetching=False, concurrency=concurrency, held=held) == count


def test_with_prefetching_every_childs_queue_and_some_ahead():
    # Two children of QUEUE_DEPTH, and MIN_AHEAD ahead (more than 2 per child).
    target = 2 * QUEUE_DEPTH + prefetch.MIN_AHEAD
    assert prefetch.claim_count(prefetching=True, concurrency=2, held=0) == target
    # Eight children: 2 per child ahead.
    assert prefetch.claim_count(prefetching=True, concurrency=8, held=0) == 8 * QUEUE_DEPTH + 16


def test_with_prefetching_nothing_until_half_of_the_target_is_used():
    target = 2 * QUEUE_DEPTH + prefetch.MIN_AHEAD
    assert prefetch.claim_count(prefetching=True, concurrency=2, held=target // 2 + 1) == 0
    assert prefetch.claim_count(prefetching=True, concurrency=2, held=target // 2) == (
        target - target // 2
    )


@pytest.mark.parametrize("prefetching", [True, False])
def test_never_beyond_max_tasks(prefetching):
    count = prefetch.claim_count(
        prefetching=prefetching, concurrency=4, held=0, claimed=8, max_tasks=10
    )
    assert count == 2
    assert (
        prefetch.claim_count(
            prefetching=prefetching, concurrency=4, held=0, claimed=10, max_tasks=10
        )
        == 0
    )
    assert (
        prefetch.claim_count(
            prefetching=prefetching, concurrency=4, held=0, claimed=11, max_tasks=10
        )
        == 0
    )


# -- what goes back ------------------------------------------------------------------------


def test_only_tasks_not_known_to_be_short_go_back():
    assert prefetch.gives_back("app.report", SHORT)
    assert not prefetch.gives_back("app.short", SHORT)


# -- which child gets what -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("backlog", "free", "share"), [(10, 2, 5), (10, 3, 3), (1, 4, 1), (0, 2, 1), (7, 0, 7)]
)
def test_the_backlog_is_shared_evenly_between_children_with_room(backlog, free, share):
    assert prefetch.share(backlog, free) == share


def test_a_child_with_nothing_takes_the_first_task_whatever_it_is():
    assert prefetch.take(None, ["app.report", "app.report"], 2, SHORT) == 1
    assert prefetch.take(None, ["app.report"], 1, set()) == 1


def test_short_tasks_queue_behind_short_ones_up_to_the_count():
    backlog = ["app.short", "app.tiny", "app.short", "app.short"]
    assert prefetch.take(None, backlog, 3, SHORT) == 3
    assert prefetch.take("app.short", backlog, 10, SHORT) == 4


def test_a_long_task_never_waits_behind_another_task():
    assert prefetch.take("app.short", ["app.report"], 5, SHORT) == 0
    assert prefetch.take(None, ["app.short", "app.report", "app.short"], 5, SHORT) == 1


def test_no_task_waits_behind_a_long_one():
    assert prefetch.take("app.report", ["app.short"], 5, SHORT) == 0
    assert prefetch.take(None, ["app.report", "app.short"], 5, SHORT) == 1


def test_nothing_is_taken_from_an_empty_backlog_or_for_no_room():
    assert prefetch.take(None, [], 5, SHORT) == 0
    assert prefetch.take(None, ["app.short"], 0, SHORT) == 0


def test_a_free_slot_goes_to_the_first_idle_child():
    loads = [Load(held=1, free=0), Load(held=0, free=1), Load(held=0, free=1)]
    assert prefetch.pick(loads, concurrency=3) == 1


def test_a_new_child_when_none_is_idle_and_fewer_than_concurrency_are_busy():
    assert prefetch.pick([], concurrency=1) == SPAWN
    assert prefetch.pick([Load(held=1, free=0)], concurrency=2) == SPAWN
    # An idle child that may run nothing more (it exits after its last task) does not count.
    assert prefetch.pick([Load(held=0, free=0)], concurrency=1) == SPAWN


def test_once_all_are_busy_tasks_queue_in_the_child_holding_fewest():
    loads = [Load(held=5, free=27), Load(held=2, free=30), Load(held=2, free=30)]
    assert prefetch.pick(loads, concurrency=3) == 1


def test_a_full_child_is_not_picked_and_none_when_all_are_full():
    loads = [Load(held=1, free=0), Load(held=3, free=29)]
    assert prefetch.pick(loads, concurrency=2) == 1
    assert prefetch.pick([Load(held=1, free=0), Load(held=1, free=0)], concurrency=2) is None


def test_busy_children_beyond_concurrency_still_count_as_busy():
    # A child stopped for a timeout is still busy until it dies: no extra child meanwhile.
    loads = [Load(held=1, free=0), Load(held=1, free=0)]
    assert prefetch.pick(loads, concurrency=1) is None
