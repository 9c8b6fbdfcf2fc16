"""Scenarios 1, 2, 3 and 5 (4 is bench/ratelimit.py). Each returns a plain dict of figures (the
JSON), bounded in time."""

from __future__ import annotations

import contextlib
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from bench import importtime, profile
from bench.config import BENCH_DIR, RESULTS_DIR, ROOT, BenchConfig
from bench.events import EventFactory
from bench.load import HttpPoster, LoadResult, Worker, run_load
from bench.processes import (
    FunctionServer,
    running_function,
    start_function,
    tree_cpu_seconds,
    tree_cpu_split,
)
from svix_emulator.testing import RunningEmulator

RELAY_SOURCE = ROOT / "main.py"
HELLO_SOURCE = BENCH_DIR / "hello" / "main.py"
HELLO_SVIX_SOURCE = BENCH_DIR / "hello_svix" / "main.py"
FORWARD_SOURCE = BENCH_DIR / "hello_forward" / "main.py"
LEAN_SOURCE = BENCH_DIR / "hello_relay" / "main.py"
# Nothing should take this long; a scenario past it stops repeating and says so.
SCENARIO_DEADLINE_SECONDS = 120.0


@dataclass
class Context:
    config: BenchConfig
    events: EventFactory
    emulator: RunningEmulator

    def relay_env(self) -> dict[str, str]:
        return self.config.relay_env(self.emulator.url, self.emulator.token)

    @contextlib.contextmanager
    def relay(self, log_name: str = "relay.log") -> Iterator[FunctionServer]:
        with running_function(
            "relay", RELAY_SOURCE, "relay", self.relay_env(), log_path=RESULTS_DIR / log_name
        ) as server:
            yield server


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


class _Window:
    """CPU of the servers, the machine and the emulator's counters, at the window's edges."""

    def __init__(self, server_pid: int | None, emulator: RunningEmulator) -> None:
        self.server_pid = server_pid
        self.emulator = emulator
        self.marks: list[dict[str, Any]] = []

    def mark(self) -> None:
        machine = psutil.cpu_times()
        user, system = tree_cpu_split(self.server_pid) if self.server_pid else (0.0, 0.0)
        self.marks.append(
            {
                "server": user + system,
                "server_system": system,
                "emulator": tree_cpu_seconds(self.emulator.pid),
                "busy": machine.user
                + machine.system
                + machine.nice
                + machine.irq
                + machine.softirq,
                "stats": self.emulator.stats(),
            }
        )

    def delta(self, key: str) -> float:
        return float(self.marks[1][key] - self.marks[0][key])

    def stat_delta(self, *path: str) -> int:
        def pick(stats: dict[str, Any]) -> int:
            value: Any = stats
            for part in path:
                value = value[part]
            return int(value)

        return pick(self.marks[1]["stats"]) - pick(self.marks[0]["stats"])


def _loaded(
    ctx: Context,
    make_worker: Callable[[int], Worker],
    server_pid: int | None,
    *,
    warmup: float | None = None,
) -> tuple[LoadResult, _Window]:
    window = _Window(server_pid, ctx.emulator)
    result = run_load(
        make_worker,
        clients=ctx.config.clients,
        seconds=ctx.config.seconds,
        warmup=ctx.config.warmup if warmup is None else warmup,
        on_window_start=window.mark,
        on_window_end=window.mark,
    )
    return result, window


def _load_figures(result: LoadResult, window: _Window, ok: tuple[int, ...]) -> dict[str, Any]:
    figures = result.summary()
    done = result.count(*ok)
    server_cpu = window.delta("server")
    emulator_cpu = window.delta("emulator")
    busy = window.delta("busy")
    figures.update(
        ok=done,
        ok_per_second=round(done / result.window_seconds, 1),
        server_cpu_seconds=round(server_cpu, 3),
        server_system_cpu_seconds=round(window.delta("server_system"), 3),
        server_cpu_seconds_per_1000=round(server_cpu / done * 1000, 4) if done else None,
        emulator_cpu_seconds=round(emulator_cpu, 3),
        emulator_cpu_seconds_per_1000=round(emulator_cpu / done * 1000, 4) if done else None,
        svix_messages_created=window.stat_delta("messages_created"),
        # Whatever else ran on the machine meanwhile (other people's tests): a noise gauge.
        other_processes_cpu_cores=round(
            max(0.0, busy - server_cpu - emulator_cpu - result.client_cpu_seconds)
            / result.window_seconds,
            2,
        ),
    )
    return figures


def _poster(ctx: Context, server: FunctionServer, tag: str) -> Callable[[int], HttpPoster]:
    def make(client: int) -> HttpPoster:
        return HttpPoster(
            "127.0.0.1",
            server.port,
            lambda n: ctx.events.push_body(tag, client, n),
            timeout=60.0,
        )

    return make


# --- 1 and 2: the relay under load, the floor, hello-world ------------------------------------


def relay_load(ctx: Context, relay: FunctionServer) -> dict[str, Any]:
    """C clients posting single-event push envelopes to the relay for T seconds."""
    ctx.emulator.reset()
    result, window = _loaded(ctx, _poster(ctx, relay, "load"), relay.pid)
    figures = _load_figures(result, window, (200,))
    figures["relay_rss_mb"] = round(relay.rss_bytes() / 2**20, 1)
    figures["gunicorn_workers"] = len(relay.worker_pids())
    return figures


class _SvixCreator:
    """One client thread of the floor: the svix SDK straight to the emulator, one shared client."""

    def __init__(self, svix: Any, events: EventFactory, client: int) -> None:
        self._svix = svix
        self._events = events
        self._client = client

    def call(self, n: int) -> int:
        from svix.api import ApplicationIn, MessageCreateOptions, MessageIn
        from svix.exceptions import HttpError

        app, event_type, event_id, payload = self._events.message("floor", self._client, n)
        message = MessageIn(
            event_type=event_type,
            event_id=event_id,
            payload=payload,
            application=ApplicationIn(name=app, uid=app),
        )
        options = MessageCreateOptions(idempotency_key=f"bench-{event_id}", with_content=False)
        try:
            self._svix.message.create(app, message, options)
        except HttpError as exc:
            return int(exc.status_code)
        return 202

    def close(self) -> None:
        pass


def floor(ctx: Context) -> dict[str, Any]:
    """The same messages, created straight from C threads with the svix SDK (one shared client).

    The SDK's default httpx pool keeps 20 idle connections; with more clients than that, the
    rest would reconnect on every call, so the floor gets a pool sized for C (as the relay's
    sender has): the floor must not be slowed by something the relay does not suffer."""
    import httpx
    from svix.api import Svix, SvixOptions

    ctx.emulator.reset()
    svix = Svix(ctx.emulator.token, SvixOptions(server_url=ctx.emulator.url))
    clients = ctx.config.clients
    svix._httpx_client = httpx.Client(
        limits=httpx.Limits(max_connections=max(100, clients), max_keepalive_connections=clients),
        trust_env=False,
    )
    try:
        result, window = _loaded(ctx, lambda client: _SvixCreator(svix, ctx.events, client), None)
    finally:
        svix._httpx_client.close()
    return _load_figures(result, window, (200, 201, 202))


def hello_load(ctx: Context) -> dict[str, Any]:
    """A functions-framework hello-world under the same C clients, T seconds, THREADS."""
    with running_function(
        "hello", HELLO_SOURCE, "hello", ctx.config.function_env(), log_path=None
    ) as hello:
        result, window = _loaded(ctx, _poster(ctx, hello, "hello"), hello.pid)
        figures = _load_figures(result, window, (200,))
        figures["rss_mb"] = round(hello.rss_bytes() / 2**20, 1)
    return figures


def forward_load(ctx: Context) -> dict[str, Any]:
    """A function that makes one plain HTTP call to Svix per request, under the same load: the
    CPU any relay pays for its one Svix call, before parsing, models and logging."""
    return _reference_load(ctx, "forward", FORWARD_SOURCE, "hello_forward", log=False)


def lean_load(ctx: Context) -> dict[str, Any]:
    """The least any relay does (read the push, write the body, one call with the relay's HTTP
    client, one log line, a JSON answer; no checks), under the same load: what the relay's
    checks and bookkeeping cost is the distance to it."""
    return _reference_load(ctx, "lean", LEAN_SOURCE, "hello_relay", log=True)


def _reference_load(
    ctx: Context, name: str, source: Path, target: str, *, log: bool
) -> dict[str, Any]:
    ctx.emulator.reset()
    env = {
        **ctx.config.function_env(),
        "SVIX_SERVER_URL": ctx.emulator.url,
        "SVIX_AUTH_TOKEN": ctx.emulator.token,
    }
    # A function that logs writes to a file, as the relay does in the benchmark.
    log_path = RESULTS_DIR / f"{name}.log" if log else None
    with running_function(name, source, target, env, log_path=log_path) as server:
        result, window = _loaded(ctx, _poster(ctx, server, name), server.pid)
        figures = _load_figures(result, window, (200,))
    return figures


def profiled_relay_load(ctx: Context, relay: FunctionServer) -> dict[str, Any]:
    """An extra relay run (not counted in the targets: py-spy takes CPU too) with py-spy on the
    gunicorn worker for the whole window."""
    ctx.emulator.reset()
    workers = relay.worker_pids()
    if not workers:
        return {"error": "the relay has no gunicorn worker to profile"}
    raw = RESULTS_DIR / "relay-profile.raw"
    raw.unlink(missing_ok=True)
    recorders: list[Any] = []

    def start() -> None:
        recorders.append(profile.start_recording(workers[0], ctx.config.seconds, raw))

    result = run_load(
        _poster(ctx, relay, "prof"),
        clients=ctx.config.clients,
        seconds=ctx.config.seconds,
        warmup=ctx.config.warmup,
        on_window_start=start,
    )
    errors = ""
    for recorder in recorders:
        try:
            _, stderr = recorder.communicate(timeout=ctx.config.seconds + 30)
            errors = stderr.decode(errors="replace")[-500:]
        except Exception:  # noqa: BLE001 - a profiler problem must not end the run
            recorder.kill()
            recorder.wait(timeout=5)
            errors = "py-spy did not finish in time"
    figures: dict[str, Any] = {
        "per_second_while_profiled": round(result.rate, 1),
        "raw": str(raw.relative_to(ROOT)),
    }
    if raw.exists():
        figures.update(profile.summarise(raw))
    else:
        figures["error"] = errors.strip() or "py-spy wrote nothing"
    return figures


# --- 3: batches --------------------------------------------------------------------------------


def _timed_post(poster: HttpPoster, body: bytes) -> tuple[float, int, dict[str, Any]]:
    begin = time.perf_counter()
    status, data = poster.post(body)
    took = time.perf_counter() - begin
    try:
        answer = json.loads(data)
    except ValueError:
        answer = {}
    return took, status, answer if isinstance(answer, dict) else {}


def batch(ctx: Context, relay: FunctionServer) -> dict[str, Any]:
    """One request carrying N events, against one single-event request, sequentially."""
    config = ctx.config
    ctx.emulator.reset()
    poster = HttpPoster("127.0.0.1", relay.port, lambda n: b"", timeout=60.0)
    deadline = time.monotonic() + SCENARIO_DEADLINE_SECONDS
    singles: list[float] = []
    batches: list[float] = []
    statuses: list[int] = []
    counts: list[dict[str, Any]] = []
    n = 0
    try:
        for _ in range(3):  # warm the connection and the relay's pool
            n += 1
            poster.post(ctx.events.push_body("warm", 0, n))
        poster.post(ctx.events.batch_body("warm", 1000, config.batch_size))
        for i in range(config.single_repeats):
            if time.monotonic() > deadline:
                break
            took, status, _ = _timed_post(poster, ctx.events.push_body("single", 0, i))
            singles.append(took)
            statuses.append(status)
        for i in range(config.batch_repeats):
            if time.monotonic() > deadline:
                break
            body = ctx.events.batch_body(f"batch{i}", 0, config.batch_size)
            took, status, answer = _timed_post(poster, body)
            batches.append(took)
            statuses.append(status)
            counts.append(answer.get("counts", {}))
    finally:
        poster.close()
    single = statistics.median(singles) if singles else None
    many = statistics.median(batches) if batches else None
    return {
        "batch_size": config.batch_size,
        "max_in_flight": config.in_flight,
        "single_ms_median": _ms(single) if single is not None else None,
        "single_ms_all": [_ms(s) for s in singles],
        "batch_ms_median": _ms(many) if many is not None else None,
        "batch_ms_all": [_ms(b) for b in batches],
        "ratio": round(many / single, 2) if single and many else None,
        "statuses": dict(sorted({str(s): statuses.count(s) for s in set(statuses)}.items())),
        "batch_counts": counts,
        # With M sends in flight and Svix answering in L ms, N events cannot take less than this.
        "batch_ms_lower_bound": round(
            -(-config.batch_size // config.in_flight) * config.latency_ms, 1
        ),
    }


# --- 4: rate limits are in bench/ratelimit.py ------------------------------------------------


# --- 5: cold start -----------------------------------------------------------------------------


def _cold_start(
    ctx: Context, name: str, source: Any, target: str, env: dict[str, str], n: int
) -> dict[str, Any]:
    server = start_function(name, source, target, env, log_path=None, timeout=60.0)
    try:
        poster = HttpPoster(
            "127.0.0.1",
            server.port,
            lambda _: ctx.events.push_body(f"cold{name}", 0, n),
            timeout=60.0,
        )
        try:
            status = poster.call(n)
        finally:
            poster.close()
        first_answer = time.perf_counter() - server.started_at
    finally:
        server.stop()
    return {
        "listening_ms": _ms(server.listening_after),
        "first_answer_ms": _ms(first_answer),
        "status": status,
    }


def compile_sources(*paths: Path) -> None:
    """Byte-compile the functions' own sources, as the Cloud Functions buildpack does at deploy
    (`python3 -m compileall -f -q .`): a deployed instance never compiles them at start. Where
    bytecode is not written (PYTHONDONTWRITEBYTECODE, as on these machines), every cold start
    here would otherwise compile all of the relay (about 55 ms) and hello-world nothing."""
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "-f", *map(str, paths)],
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=120,
    )


def coldstart(ctx: Context) -> dict[str, Any]:
    """Process start to the first 200 for a push, relay against hello-world and hello-svix.

    The variants take turns so that background noise spreads over all of them."""
    config = ctx.config
    compile_sources(RELAY_SOURCE, ROOT / "relay", HELLO_SOURCE.parent, HELLO_SVIX_SOURCE.parent)
    variants = {
        "relay": (RELAY_SOURCE, "relay", ctx.relay_env()),
        "hello": (HELLO_SOURCE, "hello", config.function_env()),
        "hello_svix": (HELLO_SVIX_SOURCE, "hello", config.function_env()),
    }
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    deadline = time.monotonic() + SCENARIO_DEADLINE_SECONDS
    for n in range(config.coldstart_repeats):
        if time.monotonic() > deadline:
            break
        for name, (source, target, env) in variants.items():
            runs[name].append(_cold_start(ctx, name, source, target, env, n))
    out: dict[str, Any] = {"repeats": config.coldstart_repeats}
    for name, items in runs.items():
        ok = [r for r in items if r["status"] == 200]
        out[name] = {
            "first_answer_ms_median": statistics.median(r["first_answer_ms"] for r in ok)
            if ok
            else None,
            # Background load only ever adds time: the minimum is the least noisy estimate.
            "first_answer_ms_min": min(r["first_answer_ms"] for r in ok) if ok else None,
            "listening_ms_median": statistics.median(r["listening_ms"] for r in ok) if ok else None,
            "runs": items,
        }
    relay_ms = out["relay"]["first_answer_ms_median"]
    svix_ms = out["hello_svix"]["first_answer_ms_median"]
    hello_ms = out["hello"]["first_answer_ms_median"]
    out["ratio_to_hello_svix"] = round(relay_ms / svix_ms, 2) if relay_ms and svix_ms else None
    out["ratio_to_hello"] = round(relay_ms / hello_ms, 2) if relay_ms and hello_ms else None
    relay_min = out["relay"]["first_answer_ms_min"]
    svix_min = out["hello_svix"]["first_answer_ms_min"]
    out["ratio_to_hello_svix_of_minimums"] = (
        round(relay_min / svix_min, 2) if relay_min and svix_min else None
    )
    hello_min = out["hello"]["first_answer_ms_min"]
    out["ratio_to_hello_of_minimums"] = (
        round(relay_min / hello_min, 2) if relay_min and hello_min else None
    )
    out["imports"] = importtime.measure(ROOT, ctx.relay_env()).as_json()
    return out
