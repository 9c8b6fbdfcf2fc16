"""What every sender in the process passes before calling Svix, so that a 429 slows the process,
not a thread.

Two mechanisms, both shared by all threads:
- a **pause**: a 429 closes the gate until its Retry-After has passed (or an exponential,
  jittered backoff when Svix sent none), for every sender;
- a **concurrency limit** that only exists while Svix is rate limiting: a 429 halves the number
  of calls allowed in flight, each success adds a little back (AIMD, as TCP does), and once it
  has grown past the ceiling the limit goes away. Without it, every call in flight when the
  limit is hit earns its own 429, and after each pause all senders rush at once.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable


class RateLimitGate:
    def __init__(
        self,
        *,
        initial_backoff: float,
        max_backoff: float,
        ceiling: int = 256,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._initial = initial_backoff
        self._max = max_backoff
        self._ceiling = ceiling
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._permits = threading.Condition(self._lock)
        self._open_at = 0.0
        self._strikes = 0  # 429s in a row without Retry-After: the backoff grows with them
        self._limit: float | None = None  # calls allowed in flight; None while Svix is content
        self._in_flight = 0
        # Bumped at each decrease: the calls that were already in flight then answer 429 too,
        # and must not halve the limit again (one decrease per window, as TCP does).
        self._epoch = 0

    def close_for(self, retry_after: float | None) -> float:
        """Record a 429's pause and return how long the gate stays closed from now.

        Honour Retry-After when Svix sent it; otherwise back off exponentially with jitter.
        """
        with self._lock:
            now = self._clock()
            if retry_after is not None:
                window = min(retry_after, self._max * 12)
            elif self._open_at > now:
                # Calls that were in flight when the gate closed answer 429 too: one strike each
                # time the gate closes, not one per call.
                return self._open_at - now
            else:
                self._strikes += 1
                ceiling = min(self._max, self._initial * 2 ** (self._strikes - 1))
                window = self._rng.uniform(ceiling / 2, ceiling)
            self._open_at = max(self._open_at, now + window)
            return self._open_at - now

    def remaining(self) -> float:
        return max(0.0, self._open_at - self._clock())

    @property
    def limit(self) -> float | None:
        return self._limit

    def enter(self, deadline: float) -> int | None:
        """Wait until a call to Svix may start and return its ticket for `leave`; None (having
        waited as little as possible) when it could not start before `deadline`."""
        while True:
            if not self._wait_for_window(deadline):
                return None
            with self._permits:
                while self._limit is not None and self._in_flight >= self._limit:
                    timeout = deadline - self._clock()
                    if timeout <= 0:
                        return None
                    self._permits.wait(timeout)
                if self._open_at <= self._clock():
                    self._in_flight += 1
                    return self._epoch
            # Another sender's 429 closed the gate while this one waited for a permit.

    def leave(self, ticket: int, *, rate_limited: bool) -> None:
        with self._permits:
            self._in_flight -= 1
            if rate_limited:
                if ticket == self._epoch:
                    basis = self._limit if self._limit is not None else self._in_flight + 1
                    self._limit = max(1.0, basis / 2)
                    self._epoch += 1
            else:
                self._strikes = 0
                if self._limit is not None:
                    self._limit += 1 / self._limit
                    if self._limit >= self._ceiling:
                        self._limit = None
            # The limit may have grown, or gone: every waiter looks again.
            self._permits.notify_all()

    def _wait_for_window(self, deadline: float) -> bool:
        while True:
            remaining = self.remaining()
            if remaining <= 0:
                return True
            # Spread the senders over a short stretch after the window instead of all at once.
            spread = self._rng.uniform(0, min(0.2, remaining / 4))
            if self._clock() + remaining + spread > deadline:
                return False
            self._sleep(remaining + spread)
