"""The Eventarc entry point: a CloudEvent whose data is a Pub/Sub push envelope."""

from __future__ import annotations

import json
from typing import Any

from relay.bootstrap import Application
from relay.core.errors import MalformedRequest, RelayError, RequestTooLarge
from relay.core.outcomes import Answer
from relay.logs import log
from relay.pubsub.push import read_request


def handle_cloud_event(app: Application, data: Any) -> None:
    """The Eventarc variant: a CloudEvent whose data is a Pub/Sub push envelope. Returning acks;
    raising makes Eventarc deliver it again, and its subscription dead-letters it in the end.
    So everything but a 200 raises: nothing is acked that is neither in Svix nor parked."""
    if not isinstance(data, dict) or "message" not in data:
        answer = Answer(400, {"error": "CloudEvent data is not a Pub/Sub message envelope"})
    else:
        try:
            batch = read_request(
                json.dumps(data).encode(), {}, max_events=app.settings.max_events_per_request
            )
        except MalformedRequest as exc:
            answer = Answer(400, {"error": str(exc)})
        except RequestTooLarge as exc:
            answer = Answer(413, {"error": str(exc)})
        else:
            answer = app.relay.handle(batch)
    if answer.status != 200:
        log.error(
            "relay answered %d for a CloudEvent; raising so that Eventarc delivers it again: %s",
            answer.status,
            answer.body.get("error", ""),
        )
        raise RedeliveryNeeded(answer)


class RedeliveryNeeded(RelayError):
    """Raised from the CloudEvent entry point so that Eventarc delivers the event again."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(f"relay answered {answer.status}: {answer.body.get('error', '')}")
        self.answer = answer
