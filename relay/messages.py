"""Mapping an event to the Svix message that carries it, and the key that makes it unique."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from relay.events import InvalidEvent, public_payload
from relay.intake import IncomingEvent
from relay.settings import SVIX_ID_PATTERN

if TYPE_CHECKING:
    from svix.api import MessageIn

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
    # The serialised MessageIn: what the direct sender posts, and what the size limit applies to.
    body: bytes = b""


def idempotency_key(app_id: str, event_id: str) -> str:
    """The same (application, event) always gets the same key: across redeliveries, retries,
    instances and restarts. A digest keeps it short and away from the SDK's `auto_` prefix."""
    digest = hashlib.sha256(_utf8(f"{app_id}\n{event_id}")).hexdigest()
    return f"gigs-relay-v1-{digest[:48]}"


def svix_event_id(event_id: str) -> str:
    if len(event_id) <= MAX_ID_LENGTH and SVIX_ID_PATTERN.fullmatch(event_id):
        return event_id
    return "evt_sha256_" + hashlib.sha256(_utf8(event_id)).hexdigest()[:40]


def _utf8(text: str) -> bytes:
    # JSON can carry lone surrogates ("\ud800"); they still need a stable digest.
    return text.encode("utf-8", "surrogatepass")


def message_in(
    *, event_type: str, svix_event_id: str, payload: dict[str, Any], create_app_named: str | None
) -> MessageIn:
    """The SDK's model of the message: the contract both senders send."""
    from svix.api import ApplicationIn, MessageIn

    fields: dict[str, Any] = {
        "event_type": event_type,
        "event_id": svix_event_id,
        "payload": payload,
    }
    if create_app_named:
        # Only set when routing by project: an unset field is left out of the JSON entirely.
        fields["application"] = ApplicationIn(name=create_app_named, uid=create_app_named)
    return MessageIn(**fields)


def to_message(incoming: IncomingEvent, *, fixed_app_id: str | None) -> OutgoingMessage:
    """The Svix message for a valid event, serialised; InvalidEvent when no retry could deliver
    it (including a payload that cannot be written as JSON, or one over Svix's size limit)."""
    event = incoming.event
    if event is None:
        raise InvalidEvent(incoming.problem or "event is invalid")
    if fixed_app_id is not None:
        app_id, create_app_named = fixed_app_id, None
    else:
        app_id = _project_app(event.project)
        create_app_named = app_id
    if not SVIX_ID_PATTERN.fullmatch(event.type):
        raise InvalidEvent(
            f"event type {event.type!r} is not a valid Svix event type "
            "(letters, digits, '-', '_' and '.' only)"
        )
    payload = public_payload(incoming.raw)
    event_id = svix_event_id(incoming.event_id)
    try:
        model = message_in(
            event_type=event.type,
            svix_event_id=event_id,
            payload=payload,
            create_app_named=create_app_named,
        )
        body = model.model_dump_json(exclude_unset=True, by_alias=True).encode()
    except ValueError as exc:  # lone surrogates, nesting deeper than the serialiser allows
        raise InvalidEvent(f"payload cannot be written as JSON: {exc}") from None
    if len(body) > MAX_PAYLOAD_BYTES:
        raise PayloadTooLarge(
            f"message is {len(body)} bytes, over Svix's limit of {MAX_PAYLOAD_BYTES} bytes"
        )
    return OutgoingMessage(
        app_id=app_id,
        event_id=incoming.event_id,
        event_type=event.type,
        payload=payload,
        svix_event_id=event_id,
        idempotency_key=idempotency_key(app_id, incoming.event_id),
        create_app_named=create_app_named,
        body=body,
    )


def _project_app(project: str | None) -> str:
    if not project:
        raise InvalidEvent("event has no `project` to route it to a Svix application")
    if len(project) > MAX_ID_LENGTH or not SVIX_ID_PATTERN.fullmatch(project):
        raise InvalidEvent(f"event project {project!r} is not a valid Svix application uid")
    return project
