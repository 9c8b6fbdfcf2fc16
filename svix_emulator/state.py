"""Everything the server shares between threads, behind one lock."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from svix_emulator import DEFAULT_TOKEN
from svix_emulator.faults import FaultConfig, FaultState, parse_faults
from svix_emulator.store import Store
from svix_emulator.wire import Reply

# (bearer token, idempotency key) -> the stored 2xx answer, or None while the first is in flight.
IdempotencyTable = dict[tuple[str, str], Reply | None]


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
        self.idempotency: IdempotencyTable = {}

    def set_faults(self, config: FaultConfig) -> None:
        """Replaces the faults; the caller holds the lock."""
        self.faults = FaultState(config, self.settings.seed)

    def reset(self) -> None:
        with self.lock:
            self.store = Store(self.settings.seed)
            self.faults = FaultState(parse_faults(self.settings.faults), self.settings.seed)
            # Requests still in flight finish into the table they started in, not this new one.
            self.idempotency = {}
            self.changed.notify_all()
