"""`python -m bench`: the relay's benchmark (see bench/README.md)."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from bench.config import SCENARIOS, BenchConfig, production_threads
from svix_emulator.faults import RETRY_AFTER_FORMS


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be above 0")
    return value


def _counts(text: str) -> tuple[int, ...]:
    return tuple(_positive_int(part) for part in text.split(",") if part.strip())


def _shares(text: str) -> tuple[float, ...]:
    return tuple(_positive_float(part) for part in text.split(",") if part.strip())


def _choices(allowed: tuple[str, ...]) -> Callable[[str], tuple[str, ...]]:
    def parse(text: str) -> tuple[str, ...]:
        chosen = tuple(part.strip() for part in text.split(",") if part.strip())
        unknown = [c for c in chosen if c not in allowed]
        if unknown or not chosen:
            raise argparse.ArgumentTypeError(f"choose from {','.join(allowed)}")
        return chosen

    return parse


def _scenarios(text: str) -> tuple[str, ...]:
    chosen = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [s for s in chosen if s not in SCENARIOS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(
            f"choose from {','.join(SCENARIOS)} (got {', '.join(unknown) or 'nothing'})"
        )
    return chosen


def parse_args(argv: Sequence[str] | None = None) -> BenchConfig:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark the relay against a local Svix emulator, each figure beside its "
        "baseline, with PASS/FAIL against the project's targets.",
    )
    add = parser.add_argument
    add("--clients", type=_positive_int, default=32, help="concurrent clients (32)")
    add("--seconds", type=_positive_float, default=10.0, help="timed window per load run (10)")
    add("--latency-ms", type=float, default=25.0, help="Svix emulator latency per call (25)")
    add("--rate", type=_positive_float, default=100.0, help="Svix rate limit, messages/s (100)")
    add(
        "--threads",
        type=_positive_int,
        default=production_threads(),
        help=f"gunicorn THREADS, as deploy.sh sets from CONCURRENCY ({production_threads()})",
    )
    add(
        "--max-in-flight",
        type=_positive_int,
        default=None,
        help="RELAY_MAX_IN_FLIGHT (default: THREADS, as deploy.sh sets it)",
    )
    add(
        "--only",
        type=_scenarios,
        default=SCENARIOS,
        help=f"comma list of scenarios ({','.join(SCENARIOS)}; default all)",
    )
    add(
        "--load-repeats",
        type=_positive_int,
        default=3,
        help="timed windows per load figure (relay, floor, hello); the median is reported (3)",
    )
    add(
        "--coldstart-repeats",
        type=_positive_int,
        default=3,
        help="cold starts of each variant; the median is judged (3)",
    )
    add(
        "--profile",
        action="store_true",
        help="one more relay run with py-spy on the gunicorn worker (needs py-spy and ptrace)",
    )
    add(
        "--relay-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an extra relay setting for an experiment, e.g. RELAY_LOG_LEVEL=WARNING (repeatable)",
    )
    add(
        "--instances",
        type=_counts,
        default=(1, 4, 8),
        help="rate limit: relay instances sharing the Svix token, a comma list (1,4,8)",
    )
    add(
        "--buckets",
        type=_shares,
        default=(0.2, 1.0),
        help="rate limit: Svix's token bucket as shares of R, a comma list (0.2,1)",
    )
    add(
        "--retry-after",
        type=_choices(RETRY_AFTER_FORMS),
        default=("seconds", "absent"),
        help=f"rate limit: the emulator's Retry-After forms ({','.join(RETRY_AFTER_FORMS)}; "
        "default seconds,absent)",
    )
    add(
        "--push-retry",
        type=_choices(("retry-after", "pubsub")),
        default=("retry-after", "pubsub"),
        help="rate limit: a refused push comes back after the relay's Retry-After, or after "
        "10 s as Pub/Sub's retry policy does (default both)",
    )
    add(
        "--ratelimit-seconds",
        type=_positive_float,
        default=10.0,
        help="rate limit: timed window of each combination, after a 2 s warm-up (10)",
    )
    add(
        "--ratelimit-repeats",
        type=_positive_int,
        default=1,
        help="rate limit: runs of each combination; the median is reported (1)",
    )
    add(
        "--pubsub-time-budget",
        type=_positive_float,
        default=1.0,
        help="rate limit: RELAY_TIME_BUDGET_SECONDS with --push-retry pubsub (1)",
    )
    add("--output", type=Path, default=None, help="JSON path (bench/results/latest.json)")
    args = parser.parse_args(argv)
    if args.latency_ms < 0:
        parser.error("--latency-ms must not be negative")
    config = BenchConfig(
        clients=args.clients,
        seconds=args.seconds,
        latency_ms=args.latency_ms,
        rate=args.rate,
        threads=args.threads,
        max_in_flight=args.max_in_flight,
        only=args.only,
        profile=args.profile,
        coldstart_repeats=args.coldstart_repeats,
        load_repeats=args.load_repeats,
        relay_extra_env=tuple(_setting(text, parser) for text in args.relay_env),
        instance_counts=args.instances,
        bucket_shares=args.buckets,
        retry_after_forms=args.retry_after,
        push_retries=args.push_retry,
        ratelimit_seconds=args.ratelimit_seconds,
        ratelimit_repeats=args.ratelimit_repeats,
        pubsub_time_budget=args.pubsub_time_budget,
    )
    if args.output is not None:
        config = BenchConfig(**{**config.__dict__, "output": args.output.resolve()})
    return config


def _setting(text: str, parser: argparse.ArgumentParser) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.startswith(("RELAY_", "SVIX_")):
        parser.error(f"--relay-env takes RELAY_NAME=VALUE or SVIX_NAME=VALUE, got {text!r}")
    return name, value


def _terminate(signum: int, frame: object) -> NoReturn:
    # SIGTERM unwinds like Ctrl-C, so every server this run started is stopped on the way out.
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    from bench.runner import main as run_main

    try:
        return run_main(config)
    except KeyboardInterrupt:
        print("bench: interrupted; servers stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
