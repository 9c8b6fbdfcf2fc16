"""The process-wide pause after a 429, on a fake clock (nothing here sleeps for real)."""

from __future__ import annotations

import random
import threading

import pytest

from relay.rate_gate import RateLimitGate
from relay.svix.answers import retry_after_seconds
from tests.support.fakes import FakeTime


def gate(time: FakeTime) -> RateLimitGate:
    return RateLimitGate(
        initial_backoff=0.5,
        max_backoff=4.0,
        clock=time.clock,
        sleep=time.sleep,
        rng=random.Random(1),
    )


def test_retry_after_closes_the_gate_for_everyone_until_the_window_ends():
    time = FakeTime(start=100.0)
    g = gate(time)
    assert g.close_for(2.0) == pytest.approx(2.0)
    assert g.remaining() == pytest.approx(2.0)
    ticket = g.enter(deadline=time.now + 10)
    assert ticket is not None
    g.leave(ticket, rate_limited=False)
    assert time.now >= 102.0
    assert g.remaining() == 0


def test_a_window_past_the_deadline_is_not_waited_for():
    time = FakeTime(start=100.0)
    g = gate(time)
    g.close_for(5.0)
    assert g.enter(deadline=time.now + 1) is None
    assert time.sleeps == []


def test_without_retry_after_the_backoff_grows_with_jitter_and_resets_on_success():
    time = FakeTime(start=100.0)
    g = gate(time)
    first = g.close_for(None)
    time.now += 10
    second = g.close_for(None)
    time.now += 10
    third = g.close_for(None)
    assert 0.25 <= first <= 0.5
    assert 0.5 <= second <= 1.0
    assert 1.0 <= third <= 2.0
    g.leave(g.enter(deadline=time.now + 10) or 0, rate_limited=False)
    time.now += 10
    assert g.close_for(None) <= 0.5


def test_a_shorter_retry_after_never_shortens_an_open_window():
    time = FakeTime(start=100.0)
    g = gate(time)
    g.close_for(3.0)
    assert g.close_for(1.0) == pytest.approx(3.0)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("3", 3.0),
        (" 1.5 ", 1.5),
        ("-4", 0.0),
        ("Wed, 21 Oct 2015 07:28:10 GMT", 10.0),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_is_read_as_seconds_or_an_http_date(header: str | None, seconds: float | None):
    now = 1445412480.0  # 2015-10-21T07:28:00Z
    assert retry_after_seconds(header, now=now) == seconds


def test_without_429s_there_is_no_concurrency_limit():
    g = gate(FakeTime(start=100.0))
    tickets = [g.enter(deadline=200.0) for _ in range(500)]
    assert None not in tickets
    assert g.limit is None


def test_a_429_halves_the_calls_in_flight_once_per_window_and_successes_grow_it_back():
    time = FakeTime(start=100.0)
    g = gate(time)
    tickets = [g.enter(deadline=200.0) for _ in range(32)]
    assert None not in tickets
    for ticket in tickets:  # every call in flight met the limit
        g.leave(ticket or 0, rate_limited=True)
    assert g.limit == 16  # halved once, not 32 times
    for _ in range(40):
        g.leave(g.enter(deadline=200.0) or 0, rate_limited=False)
    assert g.limit is not None and 17 < g.limit < 20


def test_the_limit_is_lifted_once_it_grows_past_the_ceiling():
    time = FakeTime(start=100.0)
    g = RateLimitGate(
        initial_backoff=0.1, max_backoff=1.0, ceiling=8, clock=time.clock, sleep=time.sleep
    )
    g.leave(g.enter(deadline=200.0) or 0, rate_limited=True)
    assert g.limit == 1
    for _ in range(100):
        g.leave(g.enter(deadline=200.0) or 0, rate_limited=False)
    assert g.limit is None


def test_a_sender_over_the_limit_waits_for_a_permit_or_gives_up_at_the_deadline():
    time = FakeTime(start=100.0)
    g = gate(time)
    first = g.enter(deadline=200.0)
    g.leave(first or 0, rate_limited=True)  # limit 1
    holder = g.enter(deadline=200.0)
    assert holder is not None
    assert g.enter(deadline=time.now) is None  # no permit free, no time left
    released: list[int | None] = []
    waiter = threading.Thread(target=lambda: released.append(g.enter(deadline=time.now + 1e9)))
    waiter.start()
    g.leave(holder, rate_limited=False)
    waiter.join(timeout=10)
    assert released and released[0] is not None
