"""Mapping an event to the Svix message that carries it, and the key that makes it unique."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from relay.events import InvalidEvent, public_payload
from relay.intake import IncomingEvent
from relay.settings import SVIX_ID_PATTERN

# Svix refuses payloads over 1 MiB with 413; checking first names the event in our answer.
MAX_PAYLOAD_BYTES = 1024 * 1024
MAX_ID_LENGTH = 256


class PayloadTooLarge(InvalidEvent):
    """The public payload is over Svix's size limit."""


@dataclass(frozen=True)
class OutgoingMessage:
    """Everything needed to create one Svix message for one event."""

    app_id: str
    event_id: str
    event_type: str
    payload: dict[str, Any]
    # Svix's `eventId`: the event id, or a digest of it when the id breaks Svix's id rules.
    svix_event_id: str
    idempotency_key: str
    # When routing by project, Svix creates the application on first use.
    create_app_named: str | None = None


def idempotency_key(app_id: str, event_id: str) -> str:
    """The same (application, event) always gets the same key: across redeliveries, retries,
    instances and restarts. A digest keeps it short and away from the SDK's `auto_` prefix."""
    digest = hashlib.sha256(f"{app_id}\n{event_id}".encode()).hexdigest()
    return f"gigs-relay-v1-{digest[:48]}"


def svix_event_id(event_id: str) -> str:
    if len(event_id) <= MAX_ID_LENGTH and SVIX_ID_PATTERN.match(event_id):
        return event_id
    return "evt_sha256_" + hashlib.sha256(event_id.encode()).hexdigest()[:40]


def to_message(
    incoming: IncomingEvent, *, fixed_app_id: str | None, check_size: bool
) -> OutgoingMessage:
    """The Svix message for a valid event; InvalidEvent when no retry could deliver it.

    `check_size` is off when the whole request is too small for any payload to reach the limit,
    which spares serialising every event twice on the hot path.
    """
    event = incoming.event
    if event is None:
        raise InvalidEvent(incoming.problem or "event is invalid")
    if fixed_app_id is not None:
        app_id, create_app_named = fixed_app_id, None
    else:
        app_id = _project_app(event.project)
        create_app_named = app_id
    payload = public_payload(incoming.raw)
    if check_size:
        size = len(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode())
        if size > MAX_PAYLOAD_BYTES:
            raise PayloadTooLarge(
                f"payload is {size} bytes, over Svix's limit of {MAX_PAYLOAD_BYTES} bytes"
            )
    if not SVIX_ID_PATTERN.match(event.type):
        raise InvalidEvent(
            f"event type {event.type!r} is not a valid Svix event type "
            "(letters, digits, '-', '_' and '.' only)"
        )
    return OutgoingMessage(
        app_id=app_id,
        event_id=incoming.event_id,
        event_type=event.type,
        payload=payload,
        svix_event_id=svix_event_id(incoming.event_id),
        idempotency_key=idempotency_key(app_id, incoming.event_id),
        create_app_named=create_app_named,
    )


def _project_app(project: str | None) -> str:
    if not project:
        raise InvalidEvent("event has no `project` to route it to a Svix application")
    if len(project) > MAX_ID_LENGTH or not SVIX_ID_PATTERN.match(project):
        raise InvalidEvent(f"event project {project!r} is not a valid Svix application uid")
    return project
