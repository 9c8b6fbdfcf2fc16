"""The pace at which the whole process calls Svix: a rate that a 429 lowers and successes raise
again, so that an instance sends at its share of Svix's limit instead of stopping.

The arithmetic is the adaptive retry mode of AWS's SDKs (client-side rate adaptation on
throttling, after TCP's CUBIC), with TCP's rule that one window of calls earns one cut:

- Until Svix first answers 429 there is no limit at all (an unlimited Svix costs nothing).
- A 429 on a call that started after the last cut cuts the rate to BETA times what the process
  was sending (its measured rate, or the paced rate when lower). The calls already in flight
  when that happened answer 429 too; they do not cut again.
- The rate then grows back along a cubic curve: fast at first, flat around the rate of the cut
  (the last one known to be too much), then probing above it, faster the longer Svix is content.
  A Retry-After shortens the way back: the rate is back where it was cut when Retry-After has
  passed, so Svix's own answer bounds how long the rate stays cut.
- The rate never grows past twice what the process actually sends, so an idle instance does not
  build up a rate it never tried; once the curve has climbed far above the last cut, the limit
  goes away.

Calls wait for their turn (one every 1/rate seconds, first come first served, at the rate of
the moment) rather than being refused; a call whose turn would come after its deadline gets
none, and the caller answers 429.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

BETA = 0.7  # a 429 cuts the rate to 70 % (CUBIC's and the AWS SDKs' factor)
SCALE = 0.4  # CUBIC's C, in calls/s per s³: how fast the rate probes above the last cut
MIN_RATE = 0.5  # calls/s: the rate never falls below this (as in the AWS SDKs)
MEASURE_SECONDS = 1.0  # the sending rate is measured over this much of the recent past
LIFT_FACTOR = 8.0  # the limit goes once the curve has reached this many times the last cut


@dataclass(frozen=True, slots=True)
class Permit:
    """A call's turn: when it started, and how many cuts the pacer had made by then."""

    at: float
    generation: int


def bounded_retry_after(retry_after: float | None, *, floor: float, cap: float) -> float | None:
    """Svix's Retry-After as a pause: never shorter than `floor` (a 0 or a negative value must
    not turn into a retry storm), never longer than `cap` (an absurd one must not stall the
    event); None when Svix sent none, or nothing readable."""
    if retry_after is None or math.isnan(retry_after):
        return None
    return max(floor, min(retry_after, cap))


class Pacer:
    def __init__(
        self,
        *,
        retry_floor: float,
        retry_cap: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self._floor = retry_floor
        self._cap = retry_cap
        self._clock = clock
        self._lock = threading.Lock()
        self._sleep = sleep  # for a fake clock; else waiting calls wait on a condition
        # Calls waiting for their turn, first come first served; only the first one waits for
        # the clock, the others until the one ahead of them has started.
        self._queue: deque[threading.Condition] = deque()
        self._rate: float | None = None  # calls/s; None: not limited
        self._generation = 0  # cuts so far: a 429 for a call from before the last one is old news
        self._next_at = 0.0  # the next free slot
        self._starts: deque[float] = deque()  # when recent calls started, for the measured rate
        self._first_start: float | None = None
        # The cubic curve since the last cut: rate(t) = scale·(t - k)³ + w_max, t from the cut.
        self._cut_at = 0.0
        self._w_max = 0.0
        self._k = 0.0
        self._recovery_scale = SCALE
        self._quiet_until = 0.0  # Svix's last Retry-After, as a moment

    @property
    def rate(self) -> float | None:
        return self._rate

    def acquire(self, deadline: float) -> Permit | None:
        """Wait for this call's turn and return its permit; None when its turn would come after
        `deadline` (known at once when the queue ahead is already too long)."""
        with self._lock:
            now = self._clock()
            if self._rate is None and not self._queue:
                return self._take_turn(now)
            if self._rate is not None:
                turn = max(self._next_at, now) + len(self._queue) / self._rate
                if turn > deadline:
                    return None
            me = threading.Condition(self._lock)
            self._queue.append(me)
            try:
                while True:
                    now = self._clock()
                    if self._queue[0] is not me:
                        # Woken by the call ahead when it is this one's turn to be first.
                        if now >= deadline:
                            return None
                        me.wait(deadline - now)
                        continue
                    if self._rate is None or now >= self._next_at:
                        return self._take_turn(now)
                    if self._next_at > deadline:
                        return None
                    self._pause(me, self._next_at - now)
            finally:
                self._queue.remove(me)
                if self._queue:
                    self._queue[0].notify()

    def next_turn(self) -> float:
        """When the next call may start, the calls waiting aside (for a simulation that plays
        out the queue on a clock of its own; callers use `acquire`)."""
        return self._next_at if self._rate is not None else self._clock()

    def take_turn(self) -> Permit:
        """Start a call now without waiting (a simulation's; callers use `acquire`)."""
        with self._lock:
            return self._take_turn(self._clock())

    def _take_turn(self, now: float) -> Permit:
        """The caller holds the lock: the call starts now, the next one 1/rate later."""
        if self._rate is not None:
            self._next_at = max(self._next_at, now) + 1.0 / self._rate
        starts = self._starts
        starts.append(now)
        if starts[0] <= now - MEASURE_SECONDS:
            starts.popleft()  # one in, (at least) one out: the window stays short
        if self._first_start is None:
            self._first_start = now
        return Permit(now, self._generation)

    def _pause(self, me: threading.Condition, seconds: float) -> None:
        """The caller holds the lock; it is released while waiting."""
        if self._sleep is None:
            me.wait(seconds)
            return
        self._lock.release()
        try:
            self._sleep(seconds)
        finally:
            self._lock.acquire()

    def succeeded(self, permit: Permit) -> None:
        """Svix took the call: the rate grows along the curve (capped by what is sent)."""
        if self._rate is None:
            return
        with self._lock:
            if self._rate is None:
                return
            now = self._clock()
            grown = self._curve(now)
            if grown >= LIFT_FACTOR * self._w_max:
                self._rate = None
                if self._queue:
                    self._queue[0].notify()  # each call let through lets the next one go
                return
            self._rate = max(MIN_RATE, min(grown, 2.0 * self._measured(now)))

    def refused(self, permit: Permit, retry_after: float | None) -> float | None:
        """Svix answered 429 with `retry_after` seconds (None when absent or unreadable): cut
        the rate, once per window. Returns how long the refused call itself must wait (Svix's
        Retry-After, floored and capped), or None when Svix did not say."""
        pause = bounded_retry_after(retry_after, floor=self._floor, cap=self._cap)
        with self._lock:
            now = self._clock()
            if pause is not None:
                self._quiet_until = max(self._quiet_until, now + pause)
            if permit.generation != self._generation:
                return pause  # in flight before the last cut: that cut already answered it
            sending = self._measured(now)
            basis = sending if self._rate is None else min(sending, self._rate)
            self._w_max = max(MIN_RATE / BETA, basis)
            self._rate = BETA * self._w_max
            self._cut_at = now
            natural = (self._w_max * (1 - BETA) / SCALE) ** (1 / 3)
            # Back at the rate of the cut when Retry-After has passed, if that is sooner.
            self._k = natural if pause is None else min(natural, pause)
            self._recovery_scale = self._w_max * (1 - BETA) / self._k**3
            self._generation += 1
            if self._starts:  # the next turn comes at the new pace
                self._next_at = max(self._next_at, self._starts[-1] + 1.0 / self._rate)
        return pause

    def retry_after(self) -> float:
        """Seconds a caller turned away should wait: until Svix's last Retry-After has passed,
        or the calls waiting now have had their turns, whichever ends later."""
        with self._lock:
            now = self._clock()
            backlog = 0.0
            if self._rate is not None:
                backlog = max(self._next_at, now) + len(self._queue) / self._rate - now
            return max(0.0, self._quiet_until - now, backlog)

    def _curve(self, now: float) -> float:
        t = now - self._cut_at - self._k
        scale = self._recovery_scale if t < 0 else SCALE
        return scale * t**3 + self._w_max

    def _measured(self, now: float) -> float:
        """Calls started per second over the last MEASURE_SECONDS (or since the first call)."""
        starts = self._starts
        while starts and starts[0] <= now - MEASURE_SECONDS:
            starts.popleft()
        if self._first_start is None:
            return MIN_RATE
        span = min(MEASURE_SECONDS, max(now - self._first_start, 0.05))
        return max(MIN_RATE, len(starts) / span)
