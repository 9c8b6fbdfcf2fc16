"""A light load generator: C threads, each with its own keep-alive connection, for a fixed window.

It shares two cores with what it measures, so it stays small: `http.client` on a persistent
connection (no `requests`, no connection pool), bodies made by string replacement, and every
sample kept as a tuple. It measures its own CPU over the window so the report can show it.
"""

from __future__ import annotations

import http.client
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import psutil

_HEADERS = {"Content-Type": "application/json"}
# Failures of a reused keep-alive connection that the server closed while it sat idle: the
# request never reached the application, so it is sent again once on a fresh connection.
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


class Worker(Protocol):
    def call(self, n: int) -> int:
        """Sends request number `n` of this worker and returns the status it got."""
        ...

    def close(self) -> None: ...


class HttpPoster:
    """POSTs to one URL path over a keep-alive connection of its own."""

    def __init__(
        self,
        host: str,
        port: int,
        body_for: Callable[[int], bytes],
        *,
        path: str = "/",
        timeout: float = 60.0,
    ) -> None:
        self._host = host
        self._port = port
        self._path = path
        self._timeout = timeout
        self._body_for = body_for
        self._connection: http.client.HTTPConnection | None = None
        self.reconnects = 0

    def _connect(self) -> http.client.HTTPConnection:
        self.reconnects += 1
        self._connection = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        return self._connection

    def post(self, body: bytes) -> tuple[int, bytes]:
        status, data, _ = self.exchange(body)
        return status, data

    def exchange(self, body: bytes) -> tuple[int, bytes, http.client.HTTPMessage]:
        """POSTs `body`: the status, the body and the headers of the answer."""
        reused = self._connection is not None
        connection = self._connection or self._connect()
        try:
            connection.request("POST", self._path, body=body, headers=_HEADERS)
            response = connection.getresponse()
            data = response.read()
        except _STALE:
            connection.close()
            self._connection = None
            if not reused:
                raise
            return self.exchange(body)
        except BaseException:
            connection.close()
            self._connection = None
            raise
        if response.will_close:
            connection.close()
            self._connection = None
        return response.status, data, response.headers

    def call(self, n: int) -> int:
        return self.post(self._body_for(n))[0]

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


@dataclass
class LoadResult:
    clients: int
    window_seconds: float
    completed: int  # requests that completed inside the window
    statuses: dict[str, int]  # status (or exception name) -> count, inside the window
    latencies_ms: list[float] = field(repr=False)
    client_cpu_seconds: float  # this process (the load generator) over the window
    unfinished: int  # workers still busy when the drain timeout ran out
    started: int  # requests started in all (warm-up, window and drain)

    def count(self, *statuses: int) -> int:
        return sum(self.statuses.get(str(s), 0) for s in statuses)

    @property
    def rate(self) -> float:
        return self.completed / self.window_seconds if self.window_seconds else 0.0

    def percentile_ms(self, q: float) -> float | None:
        if not self.latencies_ms:
            return None
        if len(self.latencies_ms) == 1:
            return self.latencies_ms[0]
        cuts = statistics.quantiles(self.latencies_ms, n=1000, method="inclusive")
        return cuts[min(len(cuts) - 1, max(0, round(q * 1000) - 1))]

    @property
    def client_cpu_share(self) -> float:
        """The load generator's CPU as a share of one core over the window."""
        return self.client_cpu_seconds / self.window_seconds if self.window_seconds else 0.0

    def summary(self) -> dict[str, object]:
        return {
            "clients": self.clients,
            "window_seconds": round(self.window_seconds, 3),
            "completed": self.completed,
            "per_second": round(self.rate, 1),
            "p50_ms": _round(self.percentile_ms(0.50)),
            "p99_ms": _round(self.percentile_ms(0.99)),
            "statuses": self.statuses,
            "load_generator_cpu_seconds": round(self.client_cpu_seconds, 3),
            "load_generator_cpu_share_of_core": round(self.client_cpu_share, 3),
            "unfinished_workers": self.unfinished,
            "started": self.started,
        }


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def _cpu() -> float:
    times = psutil.Process().cpu_times()
    return float(times.user + times.system)


def run_load(
    make_worker: Callable[[int], Worker],
    *,
    clients: int,
    seconds: float,
    warmup: float = 1.0,
    on_window_start: Callable[[], None] | None = None,
    on_window_end: Callable[[], None] | None = None,
    drain_timeout: float = 60.0,
) -> LoadResult:
    """Runs `clients` workers flat out for `warmup + seconds`, then lets them finish.

    Only requests that complete inside the window (after the warm-up) count. The hooks run on
    this thread at the window's edges (CPU samples, emulator counters). Bounded: no request
    starts after the window, and the drain waits at most `drain_timeout`."""
    samples: list[list[tuple[float, float, str]]] = [[] for _ in range(clients)]
    started = [0] * clients
    go = threading.Event()
    window: dict[str, float] = {}

    def loop(index: int) -> None:
        worker = make_worker(index)
        record = samples[index].append
        n = 0
        go.wait()
        end = window["end"]
        clock = time.perf_counter
        try:
            while True:
                begin = clock()
                if begin >= end:
                    break
                n += 1
                try:
                    outcome = str(worker.call(n))
                except Exception as exc:  # noqa: BLE001 - counted and shown, never fatal
                    outcome = type(exc).__name__
                    time.sleep(0.05)  # a refused connection must not spin a core
                done = clock()
                record((done, (done - begin) * 1000.0, outcome))
        finally:
            started[index] = n
            worker.close()

    threads = [
        threading.Thread(target=loop, args=(i,), name=f"bench-load-{i}", daemon=True)
        for i in range(clients)
    ]
    for thread in threads:
        thread.start()
    start = time.perf_counter()
    window["start"] = start + warmup
    window["end"] = window["start"] + seconds
    go.set()
    _sleep_until(window["start"])
    if on_window_start is not None:
        on_window_start()
    cpu_before = _cpu()
    measured_start = time.perf_counter()
    _sleep_until(window["end"])
    cpu_after = _cpu()
    measured_end = time.perf_counter()
    if on_window_end is not None:
        on_window_end()
    drain_deadline = time.monotonic() + drain_timeout
    for thread in threads:
        thread.join(max(0.0, drain_deadline - time.monotonic()))
    unfinished = sum(thread.is_alive() for thread in threads)

    statuses: Counter[str] = Counter()
    latencies: list[float] = []
    for per_client in samples:
        for done, latency, outcome in list(per_client):
            if measured_start <= done <= measured_end:
                statuses[outcome] += 1
                latencies.append(latency)
    latencies.sort()
    return LoadResult(
        clients=clients,
        window_seconds=measured_end - measured_start,
        completed=sum(statuses.values()),
        statuses=dict(sorted(statuses.items())),
        latencies_ms=latencies,
        client_cpu_seconds=cpu_after - cpu_before,
        unfinished=unfinished,
        started=sum(started),
    )


def _sleep_until(moment: float) -> None:
    while True:
        remaining = moment - time.perf_counter()
        if remaining <= 0:
            return
        time.sleep(min(remaining, 0.5))
