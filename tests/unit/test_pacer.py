"""The pacer's arithmetic on a fake clock: the cut, the way back, the turns, Retry-After's bounds.
(One test runs threads on the real clock: the order in which waiting calls take their turns.)"""

from __future__ import annotations

import itertools
import math
import threading
import time

import pytest

from relay.delivery.pacer import BETA, MIN_RATE, SCALE, Pacer, Permit, bounded_retry_after
from relay.svix.answers import retry_after_seconds
from tests.support.fakes import FakeTime

FLOOR, CAP = 0.2, 60.0


def pacer_on(time: FakeTime) -> Pacer:
    return Pacer(retry_floor=FLOOR, retry_cap=CAP, clock=time.clock, sleep=time.sleep)


def send_for(pacer: Pacer, time: FakeTime, *, seconds: float, every: float = 0.001) -> list[Permit]:
    """Calls that each succeed, one every `every` seconds or as the pacer lets them."""
    permits = []
    end = time.now + seconds
    while time.now < end:
        permit = pacer.acquire(deadline=time.now + 100)
        assert permit is not None
        pacer.succeeded(permit)
        permits.append(permit)
        time.now = max(time.now, permit.at + every)
    return permits


def cut_at(rate: float, time: FakeTime, retry_after: float | None = None) -> Pacer:
    """A pacer that was sending `rate` calls/s for a second when Svix answered 429."""
    pacer = pacer_on(time)
    send_for(pacer, time, seconds=1.0, every=1 / rate)
    last = pacer.acquire(deadline=time.now + 100)
    assert last is not None
    pacer.refused(last, retry_after)
    return pacer


def test_until_svix_refuses_a_call_nothing_waits():
    time = FakeTime(start=100.0)
    pacer = pacer_on(time)
    permits = [pacer.acquire(deadline=time.now) for _ in range(1000)]
    assert None not in permits
    assert time.sleeps == []
    assert pacer.rate is None
    assert pacer.retry_after() == 0


def test_a_429_cuts_the_rate_to_beta_of_what_was_sent():
    time = FakeTime(start=100.0)
    pacer = cut_at(100.0, time)
    assert pacer.rate == pytest.approx(BETA * 100, rel=0.03)


def test_calls_already_in_flight_at_the_cut_do_not_cut_again():
    time = FakeTime(start=100.0)
    pacer = pacer_on(time)
    send_for(pacer, time, seconds=1.0, every=0.01)
    in_flight = [pacer.acquire(deadline=time.now + 100) for _ in range(32)]
    for permit in in_flight:  # every call in flight met the empty bucket
        assert permit is not None
        pacer.refused(permit, 1.0)
    once = pacer.rate
    assert once is not None and once == pytest.approx(BETA * 132, rel=0.03)
    # A call that started after the cut and still meets a 429 cuts again.
    after = pacer.acquire(deadline=time.now + 100)
    assert after is not None
    pacer.refused(after, 1.0)
    assert pacer.rate == pytest.approx(BETA * once)


def test_paced_calls_start_one_interval_apart():
    time = FakeTime(start=100.0)
    pacer = cut_at(100.0, time)
    rate = pacer.rate
    assert rate is not None
    permits = [pacer.acquire(deadline=time.now + 100) for _ in range(20)]
    starts = [p.at for p in permits if p is not None]
    assert len(starts) == 20
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert all(gap == pytest.approx(1 / rate) for gap in gaps)


def test_with_a_retry_after_the_rate_is_back_where_it_was_cut_when_it_has_passed():
    time = FakeTime(start=100.0)
    pacer = cut_at(100.0, time, retry_after=1.0)
    cut_rate = pacer.rate
    assert cut_rate is not None
    halfway = send_for(pacer, time, seconds=0.5, every=0.001)
    assert halfway
    middle = pacer.rate
    assert middle is not None and cut_rate < middle < 100
    send_for(pacer, time, seconds=0.5, every=0.001)
    assert pacer.rate == pytest.approx(100, rel=0.05)
    # Concave: most of the way back is made in the first half.
    assert middle - cut_rate > (100 - cut_rate) / 2


def test_without_retry_after_the_way_back_takes_cubics_own_time():
    time = FakeTime(start=100.0)
    pacer = cut_at(100.0, time)
    k = (100 * (1 - BETA) / SCALE) ** (1 / 3)  # about 4.2 s
    send_for(pacer, time, seconds=k / 2, every=0.001)
    rate = pacer.rate
    assert rate is not None and rate < 99
    send_for(pacer, time, seconds=k / 2, every=0.001)
    assert pacer.rate == pytest.approx(100, rel=0.05)


def test_the_rate_never_grows_past_twice_what_is_sent():
    time = FakeTime(start=100.0)
    pacer = cut_at(100.0, time, retry_after=1.0)
    send_for(pacer, time, seconds=3.0, every=0.1)  # demand fell to 10/s
    rate = pacer.rate
    assert rate is not None and rate <= 2 * 10 * 1.15  # ten or eleven calls in the last second


def test_the_limit_goes_once_svix_has_been_content_for_long():
    time = FakeTime(start=100.0)
    pacer = cut_at(100.0, time, retry_after=1.0)
    # The curve reaches 8 x the cut rate some 12 s after it is back: 1 + (700 / 0.4)^(1/3).
    send_for(pacer, time, seconds=15.0, every=0.001)
    assert pacer.rate is None


def test_cuts_stop_at_the_minimum_rate():
    time = FakeTime(start=100.0)
    pacer = cut_at(10.0, time)
    for _ in range(50):
        permit = pacer.acquire(deadline=time.now + 100)
        assert permit is not None
        pacer.refused(permit, None)
    rate = pacer.rate
    assert rate is not None and MIN_RATE <= rate < 1


def test_a_turn_past_the_deadline_is_refused_without_waiting():
    time = FakeTime(start=100.0)
    pacer = cut_at(2.0, time)  # 1.4 calls/s: a turn every 0.7 s
    first = pacer.acquire(deadline=time.now + 10)
    assert first is not None
    waited = len(time.sleeps)
    assert pacer.acquire(deadline=time.now + 0.1) is None
    assert len(time.sleeps) == waited
    assert pacer.retry_after() > 0.5


def test_retry_after_says_when_svix_said_to_come_back():
    time = FakeTime(start=100.0)
    pacer = cut_at(100.0, time, retry_after=7.0)
    assert pacer.retry_after() == pytest.approx(7.0, abs=0.1)
    time.now += 5
    assert pacer.retry_after() == pytest.approx(2.0, abs=0.1)


@pytest.mark.parametrize(
    ("told", "pause"),
    [
        (1.0, 1.0),
        (0.35, 0.35),
        (0.0, FLOOR),  # no retry storm
        (-4.0, FLOOR),
        (7200.0, CAP),  # no stall
        (math.inf, CAP),
        (math.nan, None),
        (None, None),  # absent or unreadable: the caller's own backoff
    ],
)
def test_retry_after_is_floored_and_capped(told: float | None, pause: float | None):
    assert bounded_retry_after(told, floor=FLOOR, cap=CAP) == pause


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("3", 3.0),
        (" 1.5 ", 1.5),
        ("0", 0.0),
        ("-4", 0.0),
        ("Wed, 21 Oct 2015 07:28:10 GMT", 10.0),
        ("Wed, 21 Oct 2015 07:27:10 GMT", 0.0),  # a date in the past
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_is_read_as_seconds_or_an_http_date(header: str | None, seconds: float | None):
    now = 1445412480.0  # 2015-10-21T07:28:00Z
    assert retry_after_seconds(header, now=now) == seconds


def test_an_hours_long_retry_after_still_lets_the_rate_come_back():
    time = FakeTime(start=100.0)
    pacer = cut_at(100.0, time, retry_after=3 * 3600.0)
    send_for(pacer, time, seconds=5.0, every=0.001)  # cubic's own 4.2 s, not three hours
    assert pacer.rate == pytest.approx(100, rel=0.1)


def test_calls_waiting_on_many_threads_keep_the_pace():
    pacer = Pacer(retry_floor=FLOOR, retry_cap=CAP)
    clock = time.monotonic
    while pacer.rate is None or pacer.rate > 60:  # paced at about 50 calls/s
        permit = pacer.acquire(deadline=clock() + 10)
        assert permit is not None
        pacer.refused(permit, None)
    rate = pacer.rate
    started: list[tuple[int, float]] = []
    lock = threading.Lock()

    def call(n: int) -> None:
        permit = pacer.acquire(deadline=clock() + 10)
        assert permit is not None
        with lock:
            started.append((n, permit.at))

    threads = [threading.Thread(target=call, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(started) == 8
    moments = sorted(at for _, at in started)
    gaps = [b - a for a, b in itertools.pairwise(moments)]
    assert all(gap >= 1 / rate - 1e-6 for gap in gaps)
