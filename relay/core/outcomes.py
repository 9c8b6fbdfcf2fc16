"""What happened to each event of a batch, and to the batch as a whole.

The delivery service returns these; each entry point decides from them what to answer (an HTTP
status, a raised CloudEvent, a replay's count). DONE is the one rule they share: an event is
done when it is in Svix or parked, and only a batch whose every event is done may be acked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    DELIVERED = "delivered"  # Svix took a new message
    DUPLICATE = "duplicate"  # Svix already had it (409 for our eventId)
    PARKED = "parked"  # permanently failed, published to the parking topic
    REJECTED = "rejected"  # permanently failed, no retry can fix it
    RATE_LIMITED = "rate_limited"  # Svix kept answering 429 until the time budget ran out
    FAILED = "failed"  # transient failure or credential problem, until the budget ran out


DONE = frozenset({Outcome.DELIVERED, Outcome.DUPLICATE, Outcome.PARKED})


@dataclass(frozen=True, slots=True)
class EventResult:
    position: int
    event_id: str
    outcome: Outcome
    event_type: str | None = None
    app_id: str | None = None
    svix_message_id: str | None = None
    reason: str | None = None
    attempts: int = 0  # calls to Svix for this event, look-ups included
    status: int | None = None  # the Svix status behind a failure, when there was one
    # Svix was asked first whether it held the event (it may have been older than the windows).
    looked_up: bool = False

    def as_json(self) -> dict[str, Any]:
        item: dict[str, Any] = {"id": self.event_id, "outcome": self.outcome.value}
        for key in ("event_type", "app_id", "svix_message_id", "reason"):
            value = getattr(self, key)
            if value is not None:
                item[key] = value
        return item


@dataclass(frozen=True)
class BatchResult:
    """What became of a batch: each event's result, and what the batch as a whole needs."""

    events: list[EventResult] = field(default_factory=list)
    # Set when no event could be read out of the message: it is poison as a whole.
    unreadable: str | None = None
    parked: bool = False  # the unreadable message was parked
    parking_failed: str | None = None  # ...or parking it failed, so it must be kept
    # When the pacer expects Svix to take calls again (seconds from now), for a refused push.
    retry_after: float = 0.0

    @property
    def done(self) -> bool:
        """Every event is in Svix or parked (or the unreadable message is): nothing is left to
        do, and the message may be acknowledged."""
        if self.unreadable is not None:
            return self.parked
        return all(result.outcome in DONE for result in self.events)
