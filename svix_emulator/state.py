"""Everything the server shares between threads, behind one lock."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from svix_emulator import DEFAULT_TOKEN
from svix_emulator.faults import FaultConfig, FaultState, parse_faults
from svix_emulator.ids import format_timestamp
from svix_emulator.store import IDEMPOTENCY_WINDOW, Store
from svix_emulator.wire import (
    Reply,
    Request,
    bad_request,
    json_reply,
    method_not_allowed,
    parse_json,
)

Slot = tuple[str, str]  # (bearer token, idempotency key)
# A bound that keeps the clock inside what datetime can hold.
MAX_ADVANCE_SECONDS = 3650 * 86400


class IdempotencyTable(dict[Slot, Reply | None]):
    """Each slot's stored 2xx answer, or None while the first request is in flight; with when
    each answer was kept (emulator clock, microseconds), so it is forgotten after 12 hours."""

    def __init__(self) -> None:
        super().__init__()
        self.kept_at: dict[Slot, int] = {}

    def keep(self, slot: Slot, reply: Reply, moment: int) -> None:
        self[slot] = reply
        self.kept_at[slot] = moment

    def discard(self, slot: Slot) -> None:
        self.pop(slot, None)
        self.kept_at.pop(slot, None)

    def forget_if_expired(self, slot: Slot, now: int) -> None:
        kept = self.kept_at.get(slot)
        if kept is not None and now - kept >= IDEMPOTENCY_WINDOW // timedelta(microseconds=1):
            self.discard(slot)


@dataclass(frozen=True, slots=True)
class Settings:
    """The start-up configuration, which `POST /_emulator/reset` returns to."""

    token: str = DEFAULT_TOKEN
    seed: int = 0
    faults: dict[str, Any] = field(default_factory=dict)  # as given to `parse_faults`
    verbose: bool = False


class State:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.store = Store(settings.seed)
        self.faults = FaultState(parse_faults(settings.faults), settings.seed)
        self.idempotency = IdempotencyTable()

    def set_faults(self, config: FaultConfig) -> None:
        """Replaces the faults; the caller holds the lock."""
        self.faults = FaultState(config, self.settings.seed)

    def reset(self) -> None:
        """Back to the start: no apps, messages or keys, the start-up faults, the wall clock."""
        with self.lock:
            self.store = Store(self.settings.seed)
            self.faults = FaultState(parse_faults(self.settings.faults), self.settings.seed)
            # Requests still in flight finish into the table they started in, not this new one.
            self.idempotency = IdempotencyTable()
            self.changed.notify_all()

    def clock_json(self) -> dict[str, Any]:
        """The caller holds the lock."""
        clock = self.store.clock
        return {"now": format_timestamp(clock.now()), "offset_seconds": clock.offset_seconds}


def handle_clock(state: State, request: Request) -> Reply:
    """`GET /_emulator/clock` reads the emulator's clock; `POST` with `{"advance_seconds": N}`
    moves it N seconds forward (never back: `POST /_emulator/reset` returns to the wall clock)."""
    if request.method == "GET":
        with state.lock:
            return json_reply(200, state.clock_json())
    if request.method != "POST":
        return method_not_allowed(("GET", "POST"))
    body, bad = parse_json(request.body)
    if bad is not None:
        return bad
    seconds = body.get("advance_seconds") if isinstance(body, dict) else None
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not math.isfinite(seconds)
        or not 0 <= seconds <= MAX_ADVANCE_SECONDS
    ):
        return bad_request(
            f"`advance_seconds` must be a number of seconds from 0 to {MAX_ADVANCE_SECONDS}"
        )
    with state.lock:
        state.store.clock.advance(seconds)
        return json_reply(200, state.clock_json())
