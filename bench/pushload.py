"""Pushes as a push subscription delivers them to a service with several instances.

C client threads (the subscription's pushes in flight) each take the next message: one that is
due again after a refusal, else a new one while the window lasts. A load balancer in front of
the instances sends each push to the instance with the fewest pushes in flight (ties in turn),
as Cloud Run sends a request to an instance with room under its concurrency. A push answered
200 is acknowledged; any other answer puts the message back after a backoff: its Retry-After
where the retry policy honours one, else a fixed delay (Pub/Sub's own retry policy ignores
Retry-After; deploy.sh's minimum is 10 s). After a refusal the client also holds off a moment
(Pub/Sub's push backoff starts at 100 ms), so a relay answering 429 at once is not hammered.

After the window no new message is pushed; the ones put back are pushed again until every one
is acknowledged or the drain time runs out, so the caller can tell a lost event (acknowledged,
absent from Svix) from one still on its way.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import psutil

from bench.load import HttpPoster

NACK_PAUSE_SECONDS = 0.1


@dataclass
class PushLoadResult:
    window_seconds: float
    window_answers: dict[str, int]  # status (or exception name) -> answers inside the window
    answers: dict[str, int]  # the same for the whole run, drain included
    pushed: set[int]  # every message pushed at least once
    acknowledged: set[int]
    redeliveries: int
    client_cpu_seconds: float  # the load generator over the window
    first_push_at: float  # time.time() of the first push
    drained_after: float  # seconds from the window's end until nothing was left to push
    per_instance: list[int] = field(default_factory=list)  # pushes each instance answered

    @property
    def pending(self) -> set[int]:
        return self.pushed - self.acknowledged


class _Backlog:
    """New messages while the window lasts, and the refused ones when they are due again."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._due: list[tuple[float, int]] = []
        self._next_new = 0
        self._in_flight = 0
        self.new_until = float("inf")
        self.give_up_at = float("inf")

    def take(self) -> int | None:
        with self._changed:
            while True:
                now = time.monotonic()
                if self._due and self._due[0][0] <= now:
                    self._in_flight += 1
                    return heapq.heappop(self._due)[1]
                if now < self.new_until:
                    self._next_new += 1
                    self._in_flight += 1
                    return self._next_new
                if (not self._due and not self._in_flight) or now >= self.give_up_at:
                    self._changed.notify_all()
                    return None
                wait = self._due[0][0] - now if self._due else 0.5
                self._changed.wait(min(wait, self.give_up_at - now, 0.5))

    def done(self, number: int, *, again_after: float | None) -> None:
        with self._changed:
            self._in_flight -= 1
            if again_after is not None:
                heapq.heappush(self._due, (time.monotonic() + again_after, number))
            self._changed.notify_all()


class _Balancer:
    """The instance with the fewest pushes in flight; ties go round in turn."""

    def __init__(self, instances: int) -> None:
        self._lock = threading.Lock()
        self._busy = [0] * instances
        self._turn = 0
        self.answered = [0] * instances

    def pick(self) -> int:
        with self._lock:
            count = len(self._busy)
            self._turn += 1
            order = [(self._turn + k) % count for k in range(count)]
            chosen = min(order, key=self._busy.__getitem__)
            self._busy[chosen] += 1
            return chosen

    def release(self, instance: int) -> None:
        with self._lock:
            self._busy[instance] -= 1
            self.answered[instance] += 1


def run_pushes(
    ports: list[int],
    body_for: Callable[[int], bytes],
    *,
    clients: int,
    backoff: Callable[[int, str | None], float],
    warmup: float,
    seconds: float,
    drain_timeout: float = 90.0,
    on_window_start: Callable[[], None] | None = None,
    on_window_end: Callable[[], None] | None = None,
) -> PushLoadResult:
    """Pushes for `warmup + seconds`, then drains. `backoff(status, retry_after_header)` says
    how long a refused message waits before it is pushed again."""
    backlog = _Backlog()
    balancer = _Balancer(len(ports))
    answers: list[tuple[float, str]] = []
    pushed: set[int] = set()
    acknowledged: set[int] = set()
    redeliveries = [0]
    record_lock = threading.Lock()
    go = threading.Event()

    def client() -> None:
        posters = [HttpPoster("127.0.0.1", port, body_for, timeout=120.0) for port in ports]
        go.wait()
        try:
            while (number := backlog.take()) is not None:
                instance = balancer.pick()
                retry_after = None
                try:
                    status, _, headers = posters[instance].exchange(body_for(number))
                    outcome = str(status)
                    retry_after = headers.get("Retry-After")
                except Exception as exc:  # noqa: BLE001 - counted, and the push comes back
                    status, outcome = 0, type(exc).__name__
                finally:
                    balancer.release(instance)
                with record_lock:
                    answers.append((time.monotonic(), outcome))
                    if number in pushed:
                        redeliveries[0] += 1
                    pushed.add(number)
                    if status == 200:
                        acknowledged.add(number)
                if status == 200:
                    backlog.done(number, again_after=None)
                else:
                    backlog.done(number, again_after=backoff(status, retry_after))
                    time.sleep(NACK_PAUSE_SECONDS)
        finally:
            for poster in posters:
                poster.close()

    threads = [
        threading.Thread(target=client, name=f"bench-push-{i}", daemon=True) for i in range(clients)
    ]
    for thread in threads:
        thread.start()
    first_push_at = time.time()
    start = time.monotonic()
    window_start = start + warmup
    window_end = window_start + seconds
    backlog.new_until = window_end
    backlog.give_up_at = window_end + drain_timeout
    go.set()
    _sleep_until(window_start)
    if on_window_start is not None:
        on_window_start()
    cpu_before, measured_start = _cpu(), time.monotonic()
    _sleep_until(window_end)
    cpu_after, measured_end = _cpu(), time.monotonic()
    if on_window_end is not None:
        on_window_end()
    for thread in threads:
        thread.join(max(0.0, backlog.give_up_at + 130.0 - time.monotonic()))
    drained_after = time.monotonic() - measured_end
    inside = Counter(o for t, o in answers if measured_start <= t <= measured_end)
    return PushLoadResult(
        window_seconds=measured_end - measured_start,
        window_answers=dict(sorted(inside.items())),
        answers=dict(sorted(Counter(o for _, o in answers).items())),
        pushed=pushed,
        acknowledged=acknowledged,
        redeliveries=redeliveries[0],
        client_cpu_seconds=cpu_after - cpu_before,
        first_push_at=first_push_at,
        drained_after=drained_after,
        per_instance=balancer.answered,
    )


def _cpu() -> float:
    times = psutil.Process().cpu_times()
    return float(times.user + times.system)


def _sleep_until(moment: float) -> None:
    while (remaining := moment - time.monotonic()) > 0:
        time.sleep(min(remaining, 0.5))
