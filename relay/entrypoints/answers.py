"""The HTTP answer to a push or a post, decided from the service's results.

The answer is what makes Pub/Sub's retry policy work: 200 acknowledges, anything else is
redelivered. Only failures a retry can fix deserve a redelivery; a 4xx still gets one, because
without a parking topic nacking is the only way not to lose the message (it ends in the
dead-letter topic after the last attempt).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from relay.core.outcomes import BatchResult, EventResult, Outcome


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def answer_for(result: BatchResult) -> Answer:
    """Decide the HTTP answer for a batch.

    An unreadable message: 200 once parked, 503 when parking it failed, else 400. Any transient
    failure: 503, so the whole message comes back and what did succeed dedups. Only rate limits:
    429 with Retry-After, so the caller backs off. Otherwise any permanent failure: 413 when a
    payload is too large, else 422, naming the events. Else 200.
    """
    if result.unreadable is not None:
        if result.parked:
            return Answer(200, {"counts": {"parked": 1}, "events": [], "parked": result.unreadable})
        if result.parking_failed is not None:
            error = f"{result.unreadable}; and parking it failed: {result.parking_failed}"
            return Answer(503, {"error": error})
        return Answer(400, {"error": result.unreadable})
    # One pass over the events: an answer is written for every push, most of them of one event.
    counts: dict[str, int] = {}
    by_outcome: dict[Outcome, list[EventResult]] = {}
    for event in result.events:
        counts[event.outcome.value] = counts.get(event.outcome.value, 0) + 1
        by_outcome.setdefault(event.outcome, []).append(event)
    body: dict[str, Any] = {
        "counts": counts,
        "events": [event.as_json() for event in result.events],
    }
    failed = by_outcome.get(Outcome.FAILED)
    limited = by_outcome.get(Outcome.RATE_LIMITED)
    rejected = by_outcome.get(Outcome.REJECTED)
    if failed:
        body["error"] = _first_reasons("Svix is unavailable, retry later", failed)
        return Answer(503, body)
    if limited:
        body["error"] = _first_reasons("Svix is rate limiting the relay, retry later", limited)
        return Answer(429, body, {"Retry-After": str(max(1, math.ceil(result.retry_after)))})
    if rejected:
        body["error"] = _first_reasons("events that no retry can deliver", rejected)
        too_large = all(r.status == 413 for r in rejected)
        return Answer(413 if too_large else 422, body)
    return Answer(200, body)


def _first_reasons(summary: str, results: list[EventResult], shown: int = 3) -> str:
    listed = "; ".join(f"{r.event_id}: {r.reason}" for r in results[:shown])
    more = f" (and {len(results) - shown} more)" if len(results) > shown else ""
    return f"{summary}: {listed}{more}"
