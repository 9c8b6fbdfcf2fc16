"""Fault configuration (the JSON of `PUT /_emulator/faults`) and the decisions it drives.

It also holds the one answer of Svix's that is unconfirmed and chosen per run rather than
injected: the status of a message refused because its event type is archived."""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

# 409 stands for the conflict Svix can answer when it creates an application for a message and a
# concurrent request just did: a 409 that is not about the message's eventId.
ERROR_STATUSES = (409, 500, 502, 503)
# How Svix refuses a message whose event type is archived is unconfirmed: 400 with
# `{"code": "event_type_archived", ...}` (the default), or 422 with a validation item.
ARCHIVED_TYPE_STATUSES = (400, 422)
DEFAULT_ARCHIVED_TYPE_STATUS = 400
MAX_LATENCY_MS = 60_000
MAX_SLOW_SECONDS = 600.0
# The shapes a 429's Retry-After can take (Svix's is unconfirmed): whole seconds until the next
# token (at least 1, the only form HTTP allows), the exact wait as a fraction, 0, a negative
# number, an HTTP date, something unreadable, two hours, or no header at all.
RETRY_AFTER_FORMS = (
    "seconds",
    "fractional",
    "zero",
    "negative",
    "http-date",
    "garbage",
    "hours",
    "absent",
)


class FaultConfigError(ValueError):
    """The fault configuration is malformed; the message says which part."""


@dataclass(slots=True)
class Trigger:
    """Fires for the next `next` eligible requests, then with `probability` on each one."""

    probability: float = 0.0
    next: int = 0

    def fires(self, rng: random.Random) -> bool:
        if self.next > 0:
            self.next -= 1
            return True
        return self.probability > 0.0 and rng.random() < self.probability

    def to_json(self) -> dict[str, Any]:
        return {"next": self.next} if self.probability == 0.0 else {"probability": self.probability}


@dataclass(slots=True)
class ErrorFault:
    status: int
    trigger: Trigger


@dataclass(slots=True)
class SlowFault:
    seconds: float
    trigger: Trigger


@dataclass(slots=True)
class RateLimit:
    per_second: float
    burst: float
    retry_after: bool = True  # any header at all (every form but "absent")
    retry_after_form: str = "seconds"  # one of RETRY_AFTER_FORMS

    def retry_after_json(self) -> bool | str:
        """True and false for the two original forms (whole seconds, none), else the form."""
        if self.retry_after_form in ("seconds", "absent"):
            return self.retry_after
        return self.retry_after_form

    def retry_after_header(self, wait: float, wall_clock: float) -> str | None:
        """The Retry-After of a 429 when the next token comes in `wait` seconds."""
        form = self.retry_after_form
        if form == "seconds":
            return str(max(1, math.ceil(wait)))
        if form == "fractional":
            return f"{max(wait, 0.001):.3f}"
        if form == "http-date":
            return formatdate(math.ceil(wall_clock + wait), usegmt=True)
        return {"zero": "0", "negative": "-1", "garbage": "soon", "hours": "7200"}.get(form)


@dataclass(slots=True)
class FaultConfig:
    latency_ms: float = 0.0
    rate_limit: RateLimit | None = None
    errors: list[ErrorFault] = field(default_factory=list)
    drop_before_store: Trigger | None = None
    drop_after_store: Trigger | None = None
    slow_after_store: SlowFault | None = None
    seed: int | None = None
    archived_type_status: int | None = None  # None: DEFAULT_ARCHIVED_TYPE_STATUS

    def to_json(self) -> dict[str, Any]:
        slow = self.slow_after_store
        out: dict[str, Any] = {
            "latency_ms": self.latency_ms,
            "rate_limit": None
            if self.rate_limit is None
            else {
                "per_second": self.rate_limit.per_second,
                "burst": self.rate_limit.burst,
                "retry_after": self.rate_limit.retry_after_json(),
            },
            "errors": [{"status": e.status, **e.trigger.to_json()} for e in self.errors],
            "drop_before_store": _trigger_json(self.drop_before_store),
            "drop_after_store": _trigger_json(self.drop_after_store),
            "slow_after_store": None
            if slow is None
            else {"seconds": slow.seconds, **slow.trigger.to_json()},
            "seed": self.seed,
        }
        # Shown only when chosen, so a configuration that leaves it out reads back unchanged.
        if self.archived_type_status is not None:
            out["archived_type_status"] = self.archived_type_status
        return out

    @property
    def archived_type_refusal_status(self) -> int:
        if self.archived_type_status is None:
            return DEFAULT_ARCHIVED_TYPE_STATUS
        return self.archived_type_status


def _trigger_json(trigger: Trigger | None) -> dict[str, Any] | None:
    return None if trigger is None else trigger.to_json()


def _number(where: str, value: object, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise FaultConfigError(f"{where} must be a number")
    if not low <= value <= high:
        raise FaultConfigError(f"{where} must be between {low} and {high}")
    return float(value)


def _integer(where: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise FaultConfigError(f"{where} must be an integer")
    if value < low:
        raise FaultConfigError(f"{where} must be at least {low}")
    return value


def _object(where: str, value: object, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise FaultConfigError(f"{where} must be an object or null")
    unknown = set(value) - allowed
    if unknown:
        raise FaultConfigError(f"{where}: unknown keys {sorted(unknown)}")
    return value


def _trigger(where: str, spec: dict[str, Any]) -> Trigger:
    if ("probability" in spec) == ("next" in spec):
        raise FaultConfigError(f"{where} needs exactly one of 'probability' or 'next'")
    if "next" in spec:
        return Trigger(next=_integer(f"{where}.next", spec["next"], 0))
    return Trigger(probability=_number(f"{where}.probability", spec["probability"], 0.0, 1.0))


def parse_faults(data: object) -> FaultConfig:
    """Validates a fault configuration; keys left out mean that fault is off."""
    spec = _object(
        "faults",
        data,
        {
            "latency_ms",
            "rate_limit",
            "errors",
            "drop_before_store",
            "drop_after_store",
            "slow_after_store",
            "seed",
            "archived_type_status",
        },
    )
    config = FaultConfig()
    if spec.get("latency_ms") is not None:
        config.latency_ms = _number("latency_ms", spec["latency_ms"], 0, MAX_LATENCY_MS)
    if spec.get("rate_limit") is not None:
        limit = _object("rate_limit", spec["rate_limit"], {"per_second", "burst", "retry_after"})
        if "per_second" not in limit:
            raise FaultConfigError("rate_limit.per_second is required")
        per_second = _number("rate_limit.per_second", limit["per_second"], 1e-3, 1e9)
        burst = limit.get("burst")
        form = limit.get("retry_after", True)
        if isinstance(form, bool):
            form = "seconds" if form else "absent"
        if form not in RETRY_AFTER_FORMS:
            raise FaultConfigError(
                f"rate_limit.retry_after must be true, false or one of {list(RETRY_AFTER_FORMS)}"
            )
        config.rate_limit = RateLimit(
            per_second=per_second,
            burst=max(1.0, per_second)
            if burst is None
            else _number("rate_limit.burst", burst, 1, 1e9),
            retry_after=form != "absent",
            retry_after_form=form,
        )
    errors = spec.get("errors")
    if errors is not None:
        if not isinstance(errors, list):
            raise FaultConfigError("errors must be a list")
        for index, item in enumerate(errors):
            where = f"errors[{index}]"
            entry = _object(where, item, {"status", "probability", "next"})
            if entry.get("status") not in ERROR_STATUSES:
                raise FaultConfigError(f"{where}.status must be one of {list(ERROR_STATUSES)}")
            config.errors.append(ErrorFault(entry["status"], _trigger(where, entry)))
    for name in ("drop_before_store", "drop_after_store"):
        if spec.get(name) is not None:
            setattr(
                config, name, _trigger(name, _object(name, spec[name], {"probability", "next"}))
            )
    if spec.get("slow_after_store") is not None:
        slow = _object(
            "slow_after_store", spec["slow_after_store"], {"seconds", "probability", "next"}
        )
        if "seconds" not in slow:
            raise FaultConfigError("slow_after_store.seconds is required")
        config.slow_after_store = SlowFault(
            seconds=_number("slow_after_store.seconds", slow["seconds"], 0, MAX_SLOW_SECONDS),
            trigger=_trigger("slow_after_store", slow),
        )
    if spec.get("seed") is not None:
        config.seed = _integer("seed", spec["seed"], -(2**63))
    status = spec.get("archived_type_status")
    if status is not None:
        if isinstance(status, bool) or status not in ARCHIVED_TYPE_STATUSES:
            raise FaultConfigError(
                f"archived_type_status must be one of {list(ARCHIVED_TYPE_STATUSES)} or null"
            )
        config.archived_type_status = int(status)
    return config


class FaultState:
    """The active faults with their random source and token buckets; callers hold the store lock."""

    def __init__(self, config: FaultConfig, default_seed: int) -> None:
        self.config = config
        # Every new configuration restarts its random sequence so a test's faults do not depend
        # on the requests that came before it.
        self.rng = random.Random(default_seed if config.seed is None else config.seed)
        self._buckets: dict[str, tuple[float, float]] = {}

    def rate_limited(self, token: str, now: float) -> float | None:
        """Seconds until a token is back in the bucket when the request is over the limit."""
        limit = self.config.rate_limit
        if limit is None:
            return None
        tokens, last = self._buckets.get(token, (limit.burst, now))
        tokens = min(limit.burst, tokens + (now - last) * limit.per_second)
        if tokens >= 1.0:
            self._buckets[token] = (tokens - 1.0, now)
            return None
        self._buckets[token] = (tokens, now)
        return (1.0 - tokens) / limit.per_second

    def retry_after_header(self, wait: float, *, wall_clock: float | None = None) -> str | None:
        """The Retry-After for a 429 whose next token comes in `wait` seconds; None: no header."""
        limit = self.config.rate_limit
        if limit is None:
            return None
        return limit.retry_after_header(wait, time.time() if wall_clock is None else wall_clock)

    def injected_error(self) -> int | None:
        for fault in self.config.errors:
            if fault.trigger.fires(self.rng):
                return fault.status
        return None

    def drop_before_store(self) -> bool:
        trigger = self.config.drop_before_store
        return trigger is not None and trigger.fires(self.rng)

    def drop_after_store(self) -> bool:
        trigger = self.config.drop_after_store
        return trigger is not None and trigger.fires(self.rng)

    def slow_after_store(self) -> float | None:
        slow = self.config.slow_after_store
        if slow is not None and slow.trigger.fires(self.rng):
            return slow.seconds
        return None
