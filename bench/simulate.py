"""`python -m bench.simulate`: many relay instances against Svix's token bucket, simulated.

What the machine cannot run (a hundred instances), on a simulated clock: each instance is the
relay's own Pacer (its arithmetic: cuts, the cubic way back, the measured rate), with the
queue of waiting calls played out here as `Pacer.acquire` plays it (first come, first served;
refused at once when the turn would come after the deadline). Svix is a token bucket per token
with a fixed latency and a Retry-After of whole seconds (or none); the pushes come from C
clients through a least-busy balancer, and a refused push comes back after the relay's
Retry-After. It says how per-instance pacing scales, not what a real machine measures.

    .venv/bin/python -m bench.simulate --instances 1,8,100 --bucket 0.2 --seconds 60
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import math
import random
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from relay.delivery.pacer import Pacer, Permit


@dataclass(frozen=True)
class Setup:
    instances: int
    clients: int
    rate: float = 100.0
    bucket: float = 20.0
    retry_after: bool = True
    latency: float = 0.025
    budget: float = 40.0
    warmup: float = 10.0
    seconds: float = 60.0
    backoff_initial: float = 0.2
    seed: int = 1


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self._events: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()

    def at(self, moment: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._events, (max(moment, self.now), next(self._order), action))

    def run(self, until: float) -> None:
        while self._events and self._events[0][0] <= until:
            self.now, _, action = heapq.heappop(self._events)
            action()


def simulate(setup: Setup) -> dict[str, float]:
    clock = _Clock()
    rng = random.Random(setup.seed)
    bucket = [setup.bucket, 0.0]  # tokens, when last filled
    counts = {"delivered": 0, "refused": 0, "answered_429": 0}
    window = (setup.warmup, setup.warmup + setup.seconds)
    pacers = [
        Pacer(retry_floor=setup.backoff_initial, retry_cap=60.0, clock=lambda: clock.now)
        for _ in range(setup.instances)
    ]
    queues: list[deque[tuple[float, Callable[[Permit], None], Callable[[], None]]]] = [
        deque() for _ in pacers
    ]
    busy = [0] * setup.instances

    def svix() -> float | bool | None:
        """True when taken, else the Retry-After (None: none)."""
        tokens, last = bucket
        tokens = min(setup.bucket, tokens + (clock.now - last) * setup.rate)
        bucket[:] = [tokens - 1 if tokens >= 1 else tokens, clock.now]
        if tokens >= 1:
            return True
        return float(max(1, math.ceil((1 - tokens) / setup.rate))) if setup.retry_after else None

    def serve_head(i: int) -> None:
        pacer, queue = pacers[i], queues[i]
        if not queue:
            return
        deadline, go, refuse = queue[0]
        if pacer.rate is None or clock.now >= pacer.next_turn():
            queue.popleft()
            go(pacer.take_turn())
            clock.at(clock.now, lambda: serve_head(i))
        elif pacer.next_turn() > deadline:
            queue.popleft()
            refuse()
            clock.at(clock.now, lambda: serve_head(i))
        else:
            clock.at(pacer.next_turn(), lambda: serve_head(i))

    def acquire(i: int, deadline: float, go: Callable[[Permit], None], refuse: Callable[[], None]):
        pacer, queue = pacers[i], queues[i]
        if pacer.rate is None and not queue:
            go(pacer.take_turn())
            return
        rate = pacer.rate
        if rate is not None and max(pacer.next_turn(), clock.now) + len(queue) / rate > deadline:
            refuse()
            return
        queue.append((deadline, go, refuse))
        if len(queue) == 1:
            serve_head(i)

    def push(i: int, done: Callable[[float | None], None]) -> None:
        pacer, deadline, attempts = pacers[i], clock.now + setup.budget, [0]

        def refused_here() -> None:
            counts["answered_429"] += 1
            done(max(1.0, math.ceil(pacer.retry_after())))

        def attempt() -> None:
            acquire(i, deadline, send, refused_here)

        def send(permit: Permit) -> None:
            attempts[0] += 1
            clock.at(clock.now + setup.latency / 2, lambda: arrive(permit))

        def arrive(permit: Permit) -> None:
            answer = svix()
            clock.at(clock.now + setup.latency / 2, lambda: back(permit, answer))

        def back(permit: Permit, answer: float | bool | None) -> None:
            counted = window[0] <= clock.now <= window[1]
            if answer is True:
                counts["delivered"] += counted
                lifted = pacer.rate is not None
                pacer.succeeded(permit)
                if lifted and pacer.rate is None:
                    serve_head(i)
                done(None)
                return
            counts["refused"] += counted
            pause = pacer.refused(permit, answer if isinstance(answer, float) else None)
            if pause is None:
                ceiling = setup.backoff_initial * 2 ** (attempts[0] - 1)
                pause = max(setup.backoff_initial, rng.uniform(ceiling / 2, ceiling))
            if clock.now + pause >= deadline:
                refused_here()
            else:
                clock.at(clock.now + pause, attempt)

        attempt()

    turn = itertools.count()

    def client() -> None:
        if clock.now > window[1]:
            return
        start = next(turn)
        i = min(range(setup.instances), key=lambda k: (busy[k], (k - start) % setup.instances))
        busy[i] += 1

        def done(retry_after: float | None) -> None:
            busy[i] -= 1
            clock.at(clock.now + (0.1 if retry_after is not None else 0.001), client)

        push(i, done)

    for n in range(setup.clients):
        clock.at(n * 1e-4, client)
    clock.run(window[1] + 60)
    delivered = counts["delivered"]
    return {
        "delivered_share_of_limit": round(delivered / setup.seconds / setup.rate, 3),
        "svix_429_per_delivered": round(counts["refused"] / delivered, 3)
        if delivered
        else math.inf,
        "relay_answers_429": counts["answered_429"],
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.simulate", description=__doc__)
    parser.add_argument("--instances", default="1,4,8,100,200")
    parser.add_argument("--clients-per-instance", type=int, default=4)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--bucket", type=float, default=0.2, help="as a share of the rate")
    parser.add_argument("--no-retry-after", action="store_true")
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args(argv)
    print("| instances | clients | delivered/R | Svix 429s per delivered | relay 429 answers |")
    print("| --- | --- | --- | --- | --- |")
    for instances in (int(n) for n in args.instances.split(",")):
        clients = max(32, args.clients_per_instance * instances)
        figures = simulate(
            Setup(
                instances=instances,
                clients=clients,
                rate=args.rate,
                bucket=args.rate * args.bucket,
                retry_after=not args.no_retry_after,
                seconds=args.seconds,
            )
        )
        print(
            f"| {instances} | {clients} | {figures['delivered_share_of_limit']} "
            f"| {figures['svix_429_per_delivered']} | {figures['relay_answers_429']} |"
        )


if __name__ == "__main__":
    main()
