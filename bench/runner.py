"""One benchmark run: the emulator, then each scenario asked for, then the report."""

from __future__ import annotations

import dataclasses
import os
import platform
import sys
import time
from importlib import metadata
from typing import Any

from bench import ratelimit, scenarios
from bench.config import EVENTS_DIR, RESULTS_DIR, ROOT, BenchConfig
from bench.events import EventFactory
from bench.processes import FunctionServer
from bench.report import render, targets, write_json
from svix_emulator.testing import start_emulator


def _versions() -> dict[str, str]:
    out = {}
    for name in ("svix", "functions-framework", "gunicorn", "flask", "httpx", "pydantic"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def _say(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run whose CPU per request is the median (or, for a client-only run such as the
    floor, whose rate is): one noisy window on a shared machine does not decide a figure. The
    other runs' figures are kept beside it."""
    key = "server_cpu_seconds_per_1000" if runs[0].get("server_cpu_seconds") else "per_second"
    ordered = sorted(runs, key=lambda run: run[key] or 0.0)
    chosen = dict(ordered[len(ordered) // 2])
    chosen["runs"] = [
        {
            "per_second": run["per_second"],
            "cpu_seconds_per_1000": run["server_cpu_seconds_per_1000"],
        }
        for run in runs
    ]
    return chosen


def _take_turns(
    ctx: scenarios.Context,
    config: BenchConfig,
    relay: FunctionServer,
    windows: dict[str, list[dict[str, Any]]],
) -> None:
    """One window of the relay, then one of each reference its targets compare it with."""
    turn: dict[str, Any] = {"relay": lambda: scenarios.relay_load(ctx, relay)}
    if config.wants("throughput"):
        turn["floor"] = lambda: scenarios.floor(ctx)  # the svix SDK straight to the emulator
    if config.wants("cpu"):
        turn["hello"] = lambda: scenarios.hello_load(ctx)
        turn["forward"] = lambda: scenarios.forward_load(ctx)  # one bare http.client call
        turn["lean"] = lambda: scenarios.lean_load(ctx)  # the least a relay does
    for name, window in turn.items():
        windows.setdefault(name, []).append(window())


def run(config: BenchConfig) -> dict[str, Any]:
    started = time.monotonic()
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    load_before = os.getloadavg()
    events = EventFactory(EVENTS_DIR)
    _say(f"Svix emulator with {config.latency_ms:g} ms latency")
    with start_emulator(seed=7, latency_ms=round(config.latency_ms)) as emulator:
        ctx = scenarios.Context(config, events, emulator)
        relay_figures: dict[str, Any] | None = None
        windows: dict[str, list[dict[str, Any]]] = {}
        needs_relay = ("throughput", "cpu", "batch")
        if config.profile or any(config.wants(s) for s in needs_relay):
            _say(f"relay under functions-framework/gunicorn, THREADS={config.threads}")
            with ctx.relay() as relay:
                if config.wants("throughput") or config.wants("cpu"):
                    # Strategy: the relay's windows and its references' take turns, so that
                    # a neighbour's burst on a shared machine falls on all of them alike
                    # rather than on whichever happened to run then.
                    for turn in range(config.load_repeats):
                        _say(
                            f"1/2 window {turn + 1} of {config.load_repeats}: relay, then its "
                            f"references ({config.clients} clients, {config.seconds:g} s each)"
                        )
                        _take_turns(ctx, config, relay, windows)
                    relay_figures = _median_run(windows["relay"])
                if config.profile:
                    _say("profile: the relay under the same load with py-spy attached")
                    results["profile"] = scenarios.profiled_relay_load(ctx, relay)
                if config.wants("batch"):
                    _say(f"3 batch: {config.batch_size} events against 1")
                    results["batch"] = scenarios.batch(ctx, relay)
        if config.wants("ratelimit"):
            results["ratelimit"] = ratelimit.run_all(config, events, emulator, _say)
        if config.wants("throughput") and relay_figures is not None:
            results["throughput"] = {"relay": relay_figures, "floor": _median_run(windows["floor"])}
        if config.wants("cpu") and relay_figures is not None:
            hello = _median_run(windows["hello"])
            forward = _median_run(windows["forward"])
            lean = _median_run(windows["lean"])
            relay_cpu = relay_figures["server_cpu_seconds_per_1000"]
            hello_cpu = hello["server_cpu_seconds_per_1000"]
            results["cpu"] = {
                "relay_cpu_seconds_per_1000": relay_cpu,
                "hello_cpu_seconds_per_1000": hello_cpu,
                "ratio": round(relay_cpu / hello_cpu, 2) if relay_cpu and hello_cpu else None,
                "forward_cpu_seconds_per_1000": forward["server_cpu_seconds_per_1000"],
                "lean_cpu_seconds_per_1000": lean["server_cpu_seconds_per_1000"],
                "relay": relay_figures,
                "hello": hello,
                "forward": forward,
                "lean": lean,
            }
        if config.wants("coldstart"):
            _say(f"5 cold start: relay, hello, hello+svix, {config.coldstart_repeats} times each")
            results["coldstart"] = scenarios.coldstart(ctx)
    config_json = {
        k: (os.path.relpath(v, ROOT) if k == "output" else v)
        for k, v in dataclasses.asdict(config).items()
    }
    config_json["max_in_flight"] = config.in_flight
    return {
        "config": config_json,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "versions": _versions(),
        },
        "targets": {t.name: t.as_json() for t in targets(results)},
        "results": results,
        "elapsed_seconds": round(time.monotonic() - started, 1),
    }


def main(config: BenchConfig) -> int:
    document = run(config)
    print(render(document["results"], document["config"]))
    write_json(config.output, document)
    shown = os.path.relpath(config.output)
    print(f"\nJSON: {shown}  (run took {document['elapsed_seconds']:.0f} s)")
    return 0
