"""One pause shared by every sender in the process, so that a 429 slows the process, not a thread.

Without it, each of N threads would learn of the rate limit on its own and hammer Svix N times
per window: a retry storm that keeps the limit in force.
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
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._initial = initial_backoff
        self._max = max_backoff
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._open_at = 0.0
        self._strikes = 0  # 429s in a row without Retry-After: the backoff grows with them

    def close_for(self, retry_after: float | None) -> float:
        """Record a 429 and return how long the gate stays closed from now.

        Honour Retry-After when Svix sent it; otherwise back off exponentially with jitter.
        """
        with self._lock:
            now = self._clock()
            if retry_after is not None:
                window = min(retry_after, self._max * 12)
            else:
                self._strikes += 1
                ceiling = min(self._max, self._initial * 2 ** (self._strikes - 1))
                window = self._rng.uniform(ceiling / 2, ceiling)
            self._open_at = max(self._open_at, now + window)
            return self._open_at - now

    def record_success(self) -> None:
        if self._strikes:
            with self._lock:
                self._strikes = 0

    def remaining(self) -> float:
        return max(0.0, self._open_at - self._clock())

    def wait(self, deadline: float) -> bool:
        """Block until the gate is open; False (without waiting) when it opens after `deadline`."""
        while True:
            remaining = self.remaining()
            if remaining <= 0:
                return True
            # Spread the senders over a short stretch after the window instead of all at once.
            spread = self._rng.uniform(0, min(0.2, remaining / 4))
            if self._clock() + remaining + spread > deadline:
                return False
            self._sleep(remaining + spread)
