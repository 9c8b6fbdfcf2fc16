"""Command line and `SVIX_EMULATOR_*` environment: both become a `Settings` and an address."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from svix_emulator import DEFAULT_TOKEN
from svix_emulator.faults import (
    ARCHIVED_TYPE_STATUSES,
    RETRY_AFTER_FORMS,
    FaultConfigError,
    parse_faults,
)
from svix_emulator.server import make_server
from svix_emulator.state import Settings, State

ENV_PREFIX = "SVIX_EMULATOR_"
_TRUE = {"1", "true", "yes", "on"}


def _parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    def default(name: str, fallback: str | None = None) -> str | None:
        return env.get(ENV_PREFIX + name, fallback)

    def flag(name: str) -> bool:
        return env.get(ENV_PREFIX + name, "").strip().lower() in _TRUE

    errors_env = default("ERRORS")
    parser = argparse.ArgumentParser(
        prog="python -m svix_emulator",
        description="A local Svix API emulator with faults on demand. Every flag can also be set "
        f"with an environment variable {ENV_PREFIX}<FLAG> (upper case, '-' as '_'); "
        "flags win over the environment.",
    )
    add = parser.add_argument
    add("--host", default=default("HOST", "127.0.0.1"), help="address to bind (127.0.0.1)")
    add("--port", type=int, default=int(default("PORT", "0") or 0), help="0 = any free port")
    add("--token", default=default("TOKEN", DEFAULT_TOKEN), help=f"bearer token ({DEFAULT_TOKEN})")
    add("--seed", type=int, default=int(default("SEED", "0") or 0), help="ids and fault dice")
    add("--port-file", default=default("PORT_FILE"), help="also write the port to this file")
    add("--verbose", action="store_true", default=flag("VERBOSE"), help="log requests to stderr")
    add("--faults", default=default("FAULTS"), help="fault configuration as JSON (control API)")
    add("--latency-ms", type=float, default=default("LATENCY_MS"), help="delay every API call")
    add("--rate-limit", default=default("RATE_LIMIT"), help="message creates per token: N[/s|/m]")
    add("--rate-limit-burst", type=float, default=default("RATE_LIMIT_BURST"), help="bucket size")
    add(
        "--no-retry-after",
        action="store_true",
        default=flag("NO_RETRY_AFTER"),
        help="answer 429 without a Retry-After header (as --retry-after absent)",
    )
    add(
        "--retry-after",
        choices=RETRY_AFTER_FORMS,
        default=default("RETRY_AFTER"),
        help="the form of a 429's Retry-After (seconds: whole seconds, at least 1)",
    )
    add(
        "--error",
        action="append",
        default=errors_env.split(",") if errors_env else None,
        metavar="STATUS:WHEN",
        help="inject 500/502/503 on message create; WHEN is a probability or next=N; repeatable "
        f"({ENV_PREFIX}ERRORS takes a comma list)",
    )
    add("--drop-before-store", default=default("DROP_BEFORE_STORE"), metavar="WHEN")
    add("--drop-after-store", default=default("DROP_AFTER_STORE"), metavar="WHEN")
    add("--slow-after-store", default=default("SLOW_AFTER_STORE"), metavar="SECONDS:WHEN")
    add(
        "--archived-type-status",
        type=int,
        choices=ARCHIVED_TYPE_STATUSES,
        default=default("ARCHIVED_TYPE_STATUS"),
        help="how a message whose event type is archived is refused: 400 (code "
        "event_type_archived, the default) or 422 (a validation error)",
    )
    return parser


def _when(text: str) -> dict[str, Any]:
    """`0.25` (a probability) or `next=3`."""
    text = text.strip()
    if text.startswith("next="):
        return {"next": int(text[5:])}
    return {"probability": float(text)}


def _rate(text: str) -> float:
    number, _, unit = text.strip().partition("/")
    per = {"": 1.0, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0}[unit.strip().lower()]
    return float(number) / per


def faults_from_args(args: argparse.Namespace) -> dict[str, Any]:
    faults: dict[str, Any] = json.loads(args.faults) if args.faults else {}
    if not isinstance(faults, dict):
        raise ValueError("--faults must be a JSON object")
    if args.latency_ms is not None:
        faults["latency_ms"] = float(args.latency_ms)
    if args.rate_limit:
        limit: dict[str, Any] = {"per_second": _rate(args.rate_limit)}
        if args.rate_limit_burst is not None:
            limit["burst"] = float(args.rate_limit_burst)
        limit["retry_after"] = args.retry_after or not args.no_retry_after
        faults["rate_limit"] = limit
    if args.error:
        errors = []
        for item in args.error:
            status, _, when = item.partition(":")
            errors.append({"status": int(status), **_when(when)})
        faults["errors"] = errors
    for name in ("drop_before_store", "drop_after_store"):
        value = getattr(args, name)
        if value:
            faults[name] = _when(value)
    if args.slow_after_store:
        seconds, _, when = args.slow_after_store.partition(":")
        faults["slow_after_store"] = {"seconds": float(seconds), **_when(when or "1.0")}
    if args.archived_type_status is not None:
        faults["archived_type_status"] = args.archived_type_status
    return faults


def _write_port_file(path: str, port: int) -> None:
    # Written aside then renamed, so a reader never sees a half-written number.
    temporary = f"{path}.tmp{os.getpid()}"
    with open(temporary, "w", encoding="ascii") as handle:
        handle.write(f"{port}\n")
    os.replace(temporary, path)


def _stop(signum: int, frame: object) -> NoReturn:
    raise SystemExit(0)


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> None:
    parser = _parser(os.environ if env is None else env)
    args = parser.parse_args(argv)
    try:
        faults = faults_from_args(args)
        parse_faults(faults)
    except (ValueError, KeyError, FaultConfigError) as exc:
        parser.error(f"invalid fault options: {exc}")
    settings = Settings(token=args.token, seed=args.seed, faults=faults, verbose=args.verbose)
    server = make_server(args.host, args.port, State(settings))
    port = int(server.server_address[1])
    if args.port_file:
        _write_port_file(args.port_file, port)
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"svix emulator listening on http://{host}:{port}", flush=True)
    signal.signal(signal.SIGTERM, _stop)
    try:
        server.serve_forever(poll_interval=0.25)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        sys.stdout.flush()
