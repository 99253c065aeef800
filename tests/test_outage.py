"""Losing and regaining the database (``worker.outage``)."""

from __future__ import annotations

import logging

import pytest

from django_simple_queue.worker import outage
from django_simple_queue.worker.outage import FIRST_RECONNECT_DELAY, MAX_RECONNECT_DELAY, Outage


def test_the_first_attempt_is_at_once_then_the_delay_doubles():
    delays = [outage.reconnect_delay(n, heartbeat_interval=60) for n in range(1, 6)]
    first = FIRST_RECONNECT_DELAY
    assert delays == [0.0, first, 2 * first, 4 * first, 8 * first]


def test_the_delay_stops_at_the_heartbeat_interval():
    assert outage.reconnect_delay(20, heartbeat_interval=1.0) == 1.0


def test_the_delay_stops_at_its_maximum_however_long_the_heartbeat_interval():
    assert outage.reconnect_delay(20, heartbeat_interval=60.0) == MAX_RECONNECT_DELAY


def test_a_heartbeat_interval_below_the_first_delay_does_not_shorten_it():
    assert outage.reconnect_delay(2, heartbeat_interval=0.01) == FIRST_RECONNECT_DELAY


@pytest.mark.django_db
def test_an_outage_is_said_once_retried_with_jitter_and_ends_with_its_length(caplog):
    state = Outage(heartbeat_interval=60)
    assert not state.offline
    with caplog.at_level(logging.WARNING, "django_simple_queue"):
        state.lost(RuntimeError("server closed the connection\nmore"), now=100.0)
        assert state.offline and state.due(100.0), "the first attempt is at once"
        state.lost(RuntimeError("again"), now=100.0)
        state.lost(RuntimeError("again"), now=100.0)
    assert [r.getMessage() for r in caplog.records] == [
        "database unavailable (server closed the connection); tasks go on, reconnecting"
    ]
    delay = 2 * FIRST_RECONNECT_DELAY
    assert 100.0 + delay / 2 <= state.retry_at <= 100.0 + delay
    assert not state.due(100.0) and state.due(100.0 + delay)
    assert state.wait(100.0) == pytest.approx(state.retry_at - 100.0)
    assert state.regained(103.0) == 3.0
    assert not state.offline


@pytest.mark.django_db
def test_an_exception_without_a_message_is_named_by_its_class(caplog):
    with caplog.at_level(logging.WARNING, "django_simple_queue"):
        Outage(heartbeat_interval=5).lost(TimeoutError(), now=0.0)
    assert "database unavailable (TimeoutError)" in caplog.text


@pytest.mark.django_db
def test_the_connection_is_usable_when_open_or_not_opened_yet():
    assert outage.connection_usable()


def test_network_timeouts_bound_a_hung_call_by_half_of_stale_after():
    options = outage.network_timeouts(30.0)
    assert options["tcp_user_timeout"] == 15000
    assert options["connect_timeout"] == 15
    assert (
        options["keepalives_idle"] + options["keepalives_interval"] * options["keepalives_count"]
        <= 30
    )
    # libpq's least connect_timeout is 2 seconds.
    assert outage.network_timeouts(1.0)["connect_timeout"] == 2
