"""Scenario 4: several relay instances sharing one Svix token under Svix's rate limit.

For each combination of bucket size, Retry-After form, instance count and push retry policy:
the emulator limits message creation to R/s per token (a token bucket of the given size,
latency as in every scenario), N relay processes start cold (functions-framework, configured
as deploy.sh configures them), and the push load (bench/pushload.py) runs for a warm-up and a
timed window, then drains. Lost and duplicated events come from comparing what the load
generator had acknowledged with what the emulator stored.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bench.config import RESULTS_DIR, ROOT, BenchConfig
from bench.processes import running_functions, tree_cpu_seconds
from bench.pushload import run_pushes

if TYPE_CHECKING:
    from bench.events import EventFactory
    from svix_emulator.testing import RunningEmulator

RELAY_SOURCE = ROOT / "main.py"
PUBSUB_BACKOFF_SECONDS = 10.0  # deploy.sh's MIN_RETRY_DELAY: Pub/Sub ignores Retry-After
REFUSED_WITHOUT_RETRY_AFTER_SECONDS = 1.0  # a 503, or a 429 that says nothing
WARMUP_SECONDS = 2.0


@dataclass(frozen=True)
class Case:
    bucket: float  # Svix's bucket, in calls
    retry_after: str  # the emulator's Retry-After form (svix_emulator.faults.RETRY_AFTER_FORMS)
    instances: int
    push_retry: str  # "retry-after": the push comes back after the relay's Retry-After;
    # "pubsub": after a fixed 10 s, as Pub/Sub's retry policy does

    def label(self, rate: float) -> str:
        bucket = "R" if self.bucket == rate else f"R/{rate / self.bucket:g}"
        return (
            f"bucket {bucket}, Retry-After {self.retry_after}, {self.instances} instance"
            f"{'s' if self.instances > 1 else ''}, push retry {self.push_retry}"
        )


def cases(config: BenchConfig) -> list[Case]:
    return [
        Case(config.rate * share, form, instances, retry)
        for retry in config.push_retries
        for share in config.bucket_shares
        for form in config.retry_after_forms
        for instances in config.instance_counts
    ]


def _backoff(case: Case) -> Callable[[int, str | None], float]:
    def backoff(status: int, retry_after: str | None) -> float:
        if case.push_retry == "pubsub":
            return PUBSUB_BACKOFF_SECONDS
        try:
            return max(0.0, float(retry_after or "x"))
        except ValueError:
            return REFUSED_WITHOUT_RETRY_AFTER_SECONDS

    return backoff


def run_case(
    config: BenchConfig, events: EventFactory, emulator: RunningEmulator, case: Case, tag: str
) -> dict[str, Any]:
    emulator.reset()
    emulator.set_faults(
        latency_ms=config.latency_ms,
        rate_limit={
            "per_second": config.rate,
            "burst": case.bucket,
            "retry_after": case.retry_after,
        },
    )
    env = config.relay_env(emulator.url, emulator.token)
    if case.push_retry == "pubsub":
        env["RELAY_TIME_BUDGET_SECONDS"] = f"{config.pubsub_time_budget:g}"
    marks: list[dict[str, Any]] = []
    with running_functions(
        "ratelimit-relay", RELAY_SOURCE, "relay", [env] * case.instances, log_dir=RESULTS_DIR
    ) as relays:

        def mark() -> None:
            marks.append(
                {
                    "stats": emulator.stats(),
                    "relays": sum(tree_cpu_seconds(r.pid) for r in relays),
                    "emulator": tree_cpu_seconds(emulator.pid),
                    "busy": _busy(),
                }
            )

        result = run_pushes(
            [relay.port for relay in relays],
            lambda n: events.push_body(tag, 0, n),
            clients=config.clients,
            backoff=_backoff(case),
            warmup=WARMUP_SECONDS,
            seconds=config.ratelimit_seconds,
            on_window_start=mark,
            on_window_end=mark,
        )
    stats = emulator.stats()
    messages = emulator.messages()
    stored = Counter(m["eventId"] for m in messages)
    emulator.reset()
    wanted = {events.event_id(tag, 0, n) for n in result.acknowledged}
    window = result.window_seconds

    def delta(*path: str) -> int:
        values = []
        for sample in marks:
            value: Any = sample["stats"]
            for part in path:
                value = value[part]
            values.append(int(value))
        return values[1] - values[0]

    delivered = delta("messages_created")
    limited = delta("faults_injected", "rate_limited")
    measured_cpu = (
        marks[1]["relays"] - marks[0]["relays"] + marks[1]["emulator"] - marks[0]["emulator"]
    )
    return {
        "case": case.__dict__,
        "label": case.label(config.rate),
        "window_seconds": round(window, 3),
        "delivered": delivered,
        "delivered_per_second": round(delivered / window, 1),
        "delivered_share_of_limit": round(delivered / window / config.rate, 3),
        "svix_429": limited,
        "svix_429_per_delivered": round(limited / delivered, 3) if delivered else None,
        # From the first push: the cold start's 429s included.
        "whole_run_delivered": stats["messages_created"],
        "whole_run_svix_429": stats["faults_injected"]["rate_limited"],
        "whole_run_svix_429_per_delivered": round(
            stats["faults_injected"]["rate_limited"] / stats["messages_created"], 3
        )
        if stats["messages_created"]
        else None,
        # Messages Svix took in each second from the first push: how fast the pace converged.
        "delivered_each_second_from_cold": _each_second(
            [m["timestamp"] for m in messages], result.first_push_at, WARMUP_SECONDS + 4
        ),
        "lost": len(wanted - set(stored)),
        "duplicated": sum(count - 1 for count in stored.values() if count > 1)
        + int(stats["duplicate_source_events"]),
        "pending_after_drain": len(result.pending),
        "stored_not_acknowledged": len(set(stored) - wanted),
        "pushes": len(result.pushed),
        "redeliveries": result.redeliveries,
        "relay_answers_window": result.window_answers,
        "relay_answers": result.answers,
        "per_instance_answers": result.per_instance,
        "drained_after_seconds": round(result.drained_after, 1),
        "load_generator_cpu_cores": round(result.client_cpu_seconds / window, 2),
        "other_processes_cpu_cores": round(
            max(0.0, marks[1]["busy"] - marks[0]["busy"] - measured_cpu - result.client_cpu_seconds)
            / window,
            2,
        ),
    }


def _each_second(timestamps: list[str], start: float, seconds: float) -> list[int]:
    counts = [0] * int(seconds)
    for text in timestamps:
        offset = datetime.fromisoformat(text).timestamp() - start
        if 0 <= offset < len(counts):
            counts[int(offset)] += 1
    return counts


def _busy() -> float:
    import psutil

    machine = psutil.cpu_times()
    return float(machine.user + machine.system + machine.nice + machine.irq + machine.softirq)


def run_all(
    config: BenchConfig,
    events: EventFactory,
    emulator: RunningEmulator,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """Every case, `ratelimit_repeats` times each; the run with the median delivered share is
    reported, all are kept."""
    out: dict[str, Any] = {
        "rate_limit_per_second": config.rate,
        "seconds": config.ratelimit_seconds,
        "warmup_seconds": WARMUP_SECONDS,
        "pubsub_time_budget_seconds": config.pubsub_time_budget,
        "cases": [],
    }
    for index, case in enumerate(cases(config)):
        runs = []
        for repeat in range(config.ratelimit_repeats):
            say(
                f"4 rate limit: {case.label(config.rate)} ({repeat + 1}/{config.ratelimit_repeats})"
            )
            runs.append(run_case(config, events, emulator, case, f"limit{index}r{repeat}"))
        ordered = sorted(runs, key=lambda run: run["delivered_share_of_limit"])
        chosen = dict(ordered[len(ordered) // 2])
        chosen["runs"] = [
            {
                "delivered_share_of_limit": run["delivered_share_of_limit"],
                "svix_429_per_delivered": run["svix_429_per_delivered"],
                "lost": run["lost"],
                "duplicated": run["duplicated"],
                "other_processes_cpu_cores": run["other_processes_cpu_cores"],
            }
            for run in runs
        ]
        chosen["median_svix_429_per_delivered"] = statistics.median(
            run["svix_429_per_delivered"] or 0.0 for run in runs
        )
        out["cases"].append(chosen)
    return out


def verdict(case: dict[str, Any]) -> bool:
    """delivered >= 0.9 R, Svix 429s <= 0.1 per delivered event, nothing lost or duplicated."""
    return (
        case["delivered_share_of_limit"] >= 0.9
        and (case["svix_429_per_delivered"] or 0.0) <= 0.1
        and case["lost"] == 0
        and case["duplicated"] == 0
    )
