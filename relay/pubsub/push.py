"""Turning an HTTP request into a batch of events.

Three shapes arrive on the same URL: a wrapped Pub/Sub push envelope, an unwrapped push (the raw
message data as the body, metadata in `x-goog-pubsub-*` headers), and events posted directly.
The Content-Type header is not trusted: Pub/Sub sends unwrapped data with whatever it likes.
"""

from __future__ import annotations

import binascii
from typing import Any, Protocol

from relay.core.batch import Batch, IncomingEvent, Origin
from relay.core.errors import InvalidEvent, MalformedRequest, RequestTooLarge
from relay.core.events import DerivedIds, json_kind, parse_event
from relay.core.jsontext import NotJson, TooManyItems, decode_json


class Headers(Protocol):
    """Request headers, looked up case-insensitively (Flask's, or a dict with lower-case keys)."""

    def get(self, key: str, /) -> str | None: ...


def read_request(body: bytes, headers: Headers, *, max_events: int) -> Batch:
    """Parse a request body into a batch, raising MalformedRequest for what is not a request
    the relay understands. A readable request carrying an unreadable Pub/Sub message is a batch
    with `unreadable` set: the message is poison, and the caller decides whether to park it."""
    if not body or body.isspace():  # what `not body.strip()` says, without copying the body
        raise MalformedRequest("request body is empty")
    unwrapped = _unwrapped_push_metadata(headers)
    try:
        document = decode_json(body, max_items=max_events)
    except NotJson as exc:
        if unwrapped is not None:
            return Batch([], body, unwrapped, unreadable=f"message data is not JSON: {exc}")
        raise MalformedRequest(f"request body is not JSON: {exc}") from None
    except TooManyItems:
        # From Pub/Sub no retry makes the message smaller: it is poison, to be parked. A direct
        # caller can split the batch.
        if unwrapped is not None:
            return Batch([], body, unwrapped, unreadable=_too_many(max_events))
        raise RequestTooLarge(f"request carries more than {max_events} events, the limit") from None

    if _is_push_envelope(document):
        return _read_envelope(document, max_events=max_events)
    if isinstance(document, dict | list):
        return _batch(document, body, unwrapped)
    if unwrapped is not None:
        return Batch([], body, unwrapped, unreadable=_not_events(document))
    raise MalformedRequest(
        "request body must be a JSON object (an event or a Pub/Sub push envelope) or an array "
        f"of events, got {json_kind(document)}"
    )


def _is_push_envelope(document: object) -> bool:
    if not isinstance(document, dict):
        return False
    if "message" in document:
        return True
    # Anything else with `subscription` and no event fields is an envelope that lost its message.
    return "subscription" in document and "type" not in document


def _read_envelope(envelope: dict[str, Any], *, max_events: int) -> Batch:
    message = envelope.get("message")
    if message is None:
        raise MalformedRequest("Pub/Sub push envelope has no `message`")
    if not isinstance(message, dict):
        raise MalformedRequest(
            f"Pub/Sub push envelope `message` must be an object, got {json_kind(message)}"
        )
    source = Origin(
        message_id=_text(message.get("messageId") or message.get("message_id")),
        subscription=_text(envelope.get("subscription")),
        publish_time=_text(message.get("publishTime") or message.get("publish_time")),
        delivery_attempt=_attempt(envelope.get("deliveryAttempt")),
        attributes=_attributes(message.get("attributes")),
    )
    # Taken out of the envelope so that the base64 text (most of the request) is freed once
    # decoded, before the data is.
    encoded = message.pop("data", None)
    if not encoded:
        return Batch([], b"", source, unreadable="Pub/Sub message has no data")
    if not isinstance(encoded, str):
        return Batch([], b"", source, unreadable="Pub/Sub message `data` is not a base64 string")
    try:
        # What b64decode(validate=True) takes, without first copying the text into bytes.
        data = binascii.a2b_base64(encoded, strict_mode=True)
    except (binascii.Error, ValueError):
        return Batch([], encoded.encode(), source, unreadable="message data is not valid base64")
    del encoded
    try:
        document = decode_json(data, max_items=max_events)
    except NotJson as exc:
        return Batch([], data, source, unreadable=f"message data is not JSON: {exc}")
    except TooManyItems:
        return Batch([], data, source, unreadable=_too_many(max_events))
    if not isinstance(document, dict | list):
        return Batch([], data, source, unreadable=_not_events(document))
    return _batch(document, data, source)


def _batch(document: dict[str, Any] | list[Any], data: bytes, source: Origin | None) -> Batch:
    # The decoder has already refused arrays over the event limit.
    items = document if isinstance(document, list) else [document]
    derived = DerivedIds()
    return Batch([_incoming(n, raw, derived) for n, raw in enumerate(items)], data, source)


def _incoming(position: int, raw: object, derived: DerivedIds) -> IncomingEvent:
    own_id = raw.get("id") if isinstance(raw, dict) else None
    event_id = own_id if isinstance(own_id, str) and own_id else derived.next_id(raw)
    try:
        return IncomingEvent(position, raw, event_id, event=parse_event(raw))
    except InvalidEvent as exc:
        return IncomingEvent(position, raw, event_id, problem=str(exc))
    except RecursionError:
        return IncomingEvent(position, raw, event_id, problem="event is nested too deeply")


def _unwrapped_push_metadata(headers: Headers) -> Origin | None:
    message_id = headers.get("x-goog-pubsub-message-id")
    if message_id is None:
        return None
    return Origin(
        message_id=message_id,
        subscription=headers.get("x-goog-pubsub-subscription-name"),
        publish_time=headers.get("x-goog-pubsub-publish-time"),
    )


def _attributes(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items()}


def _attempt(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 10:
        return int(value)
    return None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _too_many(max_events: int) -> str:
    return f"message carries more than {max_events} events, the limit"


def _not_events(document: object) -> str:
    return f"message data must be an event object or an array of events, got {json_kind(document)}"
