"""What a benchmark run is asked to do, and the production settings it mirrors."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
EVENTS_DIR = ROOT / "tests" / "data" / "events"
DEPLOY_SCRIPT = ROOT / "deploy.sh"

SCENARIOS = ("throughput", "cpu", "batch", "ratelimit", "coldstart")

# What deploy.sh falls back to when it cannot be read (its own defaults at the time of writing).
_FALLBACK_CONCURRENCY = 16
_FALLBACK_TIME_BUDGET = 40.0


def _deploy_default(name: str, fallback: str) -> str:
    """The default deploy.sh gives `NAME=${NAME:-value}`, so the bench follows the script."""
    try:
        text = DEPLOY_SCRIPT.read_text(encoding="utf-8")
    except OSError:
        return fallback
    match = re.search(rf"^{name}=\$\{{{name}:-([^}}$]+)\}}", text, re.MULTILINE)
    return match.group(1) if match else fallback


def production_threads() -> int:
    """deploy.sh sets THREADS=$CONCURRENCY for the gunicorn worker."""
    try:
        return int(_deploy_default("CONCURRENCY", str(_FALLBACK_CONCURRENCY)))
    except ValueError:
        return _FALLBACK_CONCURRENCY


def production_time_budget() -> float:
    try:
        return float(_deploy_default("RELAY_TIME_BUDGET_SECONDS", str(_FALLBACK_TIME_BUDGET)))
    except ValueError:
        return _FALLBACK_TIME_BUDGET


@dataclass(frozen=True)
class BenchConfig:
    clients: int = 32
    seconds: float = 10.0
    latency_ms: float = 25.0
    rate: float = 100.0
    threads: int = field(default_factory=production_threads)
    # deploy.sh: RELAY_MAX_IN_FLIGHT defaults to $CONCURRENCY, i.e. to THREADS.
    max_in_flight: int | None = None
    only: tuple[str, ...] = SCENARIOS
    warmup: float = 1.0
    batch_size: int = 100
    batch_repeats: int = 5
    single_repeats: int = 20
    coldstart_repeats: int = 3
    load_repeats: int = 3  # timed windows per load figure; the median is reported
    output: Path = RESULTS_DIR / "latest.json"
    profile: bool = False  # an extra relay run under py-spy
    relay_extra_env: tuple[tuple[str, str], ...] = ()  # experiments: settings beyond deploy.sh's
    # Scenario 4, rate limits: every combination of these runs (bench/ratelimit.py).
    instance_counts: tuple[int, ...] = (1, 4, 8)
    bucket_shares: tuple[float, ...] = (0.2, 1.0)  # Svix's bucket as a share of R
    retry_after_forms: tuple[str, ...] = ("seconds", "absent")
    push_retries: tuple[str, ...] = ("retry-after", "pubsub")
    ratelimit_seconds: float = 10.0
    ratelimit_repeats: int = 1
    # With the push retry of Pub/Sub (10 s, whatever Retry-After says) the relay's own budget
    # must be short for any push to be refused at all: shorter than Svix's Retry-After of 1 s,
    # so that every event Svix refuses goes back to the subscription.
    pubsub_time_budget: float = 1.0

    @property
    def in_flight(self) -> int:
        return self.max_in_flight if self.max_in_flight is not None else self.threads

    def wants(self, scenario: str) -> bool:
        return scenario in self.only

    def relay_env(self, svix_url: str, svix_token: str) -> dict[str, str]:
        """The relay's environment as deploy.sh sets it, pointed at the emulator.

        No parking topic: it would need Pub/Sub, and no benchmark event is poison."""
        return {
            "THREADS": str(self.threads),
            "WORKERS": "1",
            "RELAY_MAX_IN_FLIGHT": str(self.in_flight),
            "RELAY_TIME_BUDGET_SECONDS": f"{production_time_budget():g}",
            "RELAY_LOG_FORMAT": "json",
            "GOOGLE_CLOUD_PROJECT": "bench-project",
            "SVIX_AUTH_TOKEN": svix_token,
            "SVIX_SERVER_URL": svix_url,
            **dict(self.relay_extra_env),
        }

    def function_env(self) -> dict[str, str]:
        """A hello-world function gets the same gunicorn settings as the relay."""
        return {"THREADS": str(self.threads), "WORKERS": "1"}
