"""What happened to each event, and the HTTP answer that tells Pub/Sub what to do next.

The answer is what makes Pub/Sub's retry policy work: 200 acknowledges, anything else is
redelivered. Only failures a retry can fix deserve a redelivery; a 4xx still gets one, because
without a parking topic nacking is the only way not to lose the message (it ends in the
dead-letter topic after the last attempt).
"""

from __future__ import annotations

import math
from collections import Counter
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
    attempts: int = 0
    status: int | None = None  # the Svix status behind a failure, when there was one

    def as_json(self) -> dict[str, Any]:
        item: dict[str, Any] = {"id": self.event_id, "outcome": self.outcome.value}
        for key in ("event_type", "app_id", "svix_message_id", "reason"):
            value = getattr(self, key)
            if value is not None:
                item[key] = value
        return item


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def answer_for(results: list[EventResult], *, retry_after: float = 0.0) -> Answer:
    """Decide the HTTP answer for a batch.

    Any transient failure: 503, so the whole message comes back and what did succeed dedups.
    Only rate limits: 429 with Retry-After, so the caller backs off. Otherwise any permanent
    failure: 413 when a payload is too large, else 422, naming the events. Else 200.
    """
    counts = Counter(result.outcome.value for result in results)
    body: dict[str, Any] = {
        "counts": dict(counts),
        "events": [result.as_json() for result in results],
    }
    failed = [r for r in results if r.outcome is Outcome.FAILED]
    limited = [r for r in results if r.outcome is Outcome.RATE_LIMITED]
    rejected = [r for r in results if r.outcome is Outcome.REJECTED]
    if failed:
        body["error"] = _first_reasons("Svix is unavailable, retry later", failed)
        return Answer(503, body)
    if limited:
        body["error"] = _first_reasons("Svix is rate limiting the relay, retry later", limited)
        return Answer(429, body, {"Retry-After": str(max(1, math.ceil(retry_after)))})
    if rejected:
        body["error"] = _first_reasons("events that no retry can deliver", rejected)
        too_large = all(r.status == 413 for r in rejected)
        return Answer(413 if too_large else 422, body)
    return Answer(200, body)


def _first_reasons(summary: str, results: list[EventResult], shown: int = 3) -> str:
    listed = "; ".join(f"{r.event_id}: {r.reason}" for r in results[:shown])
    more = f" (and {len(results) - shown} more)" if len(results) > shown else ""
    return f"{summary}: {listed}{more}"
