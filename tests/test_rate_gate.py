"""The process-wide pause after a 429, on a fake clock (nothing here sleeps for real)."""

from __future__ import annotations

import random

import pytest

from relay.rate_gate import RateLimitGate
from relay.svix_sender import retry_after_seconds
from tests.fakes import FakeTime


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
    assert g.wait(deadline=time.now + 10)
    assert time.now >= 102.0
    assert g.remaining() == 0


def test_a_window_past_the_deadline_is_not_waited_for():
    time = FakeTime(start=100.0)
    g = gate(time)
    g.close_for(5.0)
    assert not g.wait(deadline=time.now + 1)
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
    g.record_success()
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
