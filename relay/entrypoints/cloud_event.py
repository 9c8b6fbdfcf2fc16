"""The Eventarc entry point: a CloudEvent whose data is a Pub/Sub push envelope."""

from __future__ import annotations

import json
from typing import Any

from relay.bootstrap import Application
from relay.core.errors import MalformedRequest, RelayError, RequestTooLarge
from relay.core.outcomes import DONE, BatchResult
from relay.logs import log
from relay.pubsub.push import read_request


def handle_cloud_event(app: Application, data: Any) -> None:
    """The Eventarc variant: a CloudEvent whose data is a Pub/Sub push envelope. Returning acks;
    raising makes Eventarc deliver it again, and its subscription dead-letters it in the end.
    So everything but a batch that is done raises: nothing is acked that is neither in Svix nor
    parked."""
    if not isinstance(data, dict) or "message" not in data:
        raise _redeliver("CloudEvent data is not a Pub/Sub message envelope")
    try:
        batch = read_request(
            json.dumps(data).encode(), {}, max_events=app.settings.max_events_per_request
        )
    except (MalformedRequest, RequestTooLarge) as exc:
        raise _redeliver(str(exc)) from None
    result = app.relay.handle(batch)
    if not result.done:
        raise _redeliver(_why(result))


class RedeliveryNeeded(RelayError):
    """Raised from the CloudEvent entry point so that Eventarc delivers the event again."""


def _redeliver(reason: str) -> RedeliveryNeeded:
    log.error("raising for a CloudEvent so that Eventarc delivers it again: %s", reason)
    return RedeliveryNeeded(reason)


def _why(result: BatchResult) -> str:
    if result.unreadable is not None:
        return result.parking_failed or result.unreadable
    undone = [r for r in result.events if r.outcome not in DONE]
    return "; ".join(f"{r.event_id} {r.outcome.value}: {r.reason}" for r in undone[:3])
