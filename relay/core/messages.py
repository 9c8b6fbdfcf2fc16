"""Mapping an event to the Svix message that carries it, and the names that make it unique."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from pydantic_core import SchemaSerializer, core_schema

from relay.core.batch import IncomingEvent
from relay.core.channels import ChannelTemplate, channels_for
from relay.core.errors import InvalidEvent, PayloadTooLarge
from relay.core.events import public_payload
from relay.core.ids import MAX_ID_LENGTH, SVIX_ID_PATTERN, is_svix_id
from relay.core.jsontext import utf8

# Svix refuses payloads over 1 MiB with 413; checking first names the event in our answer.
MAX_PAYLOAD_BYTES = 1024 * 1024
# Our eventIds for events whose own id Svix would refuse. An event id that already starts with it
# is digested too, so that no event can take the eventId another event's id was digested into.
DIGEST_PREFIX = "evt_sha256_"
# Svix finds an application by id or uid, and a message by id or eventId: a name of the shape of
# a Svix id (its prefix, "_", a 27-character KSUID) could be another object's id.
_APPLICATION_ID_SHAPE = re.compile(r"app_[0-9A-Za-z]{27}")
_MESSAGE_ID_SHAPE = re.compile(r"msg_[0-9A-Za-z]{27}")
# Joins the parts of a digest input. UTF-8 (even with surrogatepass) never holds a 0xFF byte, so
# the parts can be told apart again, and such an input never equals a one-part input.
_PART = b"\xff"


@dataclass(frozen=True)
class OutgoingMessage:
    """Everything needed to create one Svix message for one event."""

    app_id: str
    event_id: str
    event_type: str
    payload: dict[str, Any]
    # Svix's `eventId`: see `svix_event_id`.
    svix_event_id: str
    idempotency_key: str
    # When routing by project, Svix creates the application on first use.
    create_app_named: str | None = None
    # Svix channels from RELAY_CHANNELS (relay/core/channels.py); none when it is unset.
    channels: tuple[str, ...] = ()
    # The JSON the svix SDK would post for this message (its MessageIn, dumped with
    # exclude_unset and by_alias), byte for byte: what the direct sender posts, what the SDK
    # sender reads back into MessageIn, and what the size limit applies to.
    body: bytes = b""


def svix_event_id(event_id: str, *, project: str | None = None) -> str:
    """The eventId under which Svix holds the event: the one name the service and reconcile use.

    `project` is passed only when every event goes to one fixed application (None when the
    application is the project): there two projects' events may share an id, so the project is
    part of the name, as `<project>.<event id>` when that is readable and unambiguous (a project
    without dots: the name splits at its first dot), else as a digest of both. Without a project,
    the event's own id when Svix takes it as it is (and it is no path segment like "..", nor
    spelled like a message id or one of our digests), else a digest of it.
    """
    if project:
        if "." not in project and is_svix_id(project) and _kept_as_is(event_id):
            readable = f"{project}.{event_id}"
            if len(readable) <= MAX_ID_LENGTH:
                return readable
        return _digest_id(utf8(project) + _PART + utf8(event_id))
    if _kept_as_is(event_id):
        return event_id
    return _digest_id(utf8(event_id))


def idempotency_key(app_id: str, event_id: str, *, project: str | None = None) -> str:
    """The same (application, project, event) always gets the same key: across redeliveries,
    retries, instances and restarts. `project` as for `svix_event_id`: only with a fixed
    application. A digest keeps it short and away from the SDK's `auto_` prefix."""
    if project:
        material = utf8(app_id) + _PART + utf8(project) + _PART + utf8(event_id)
    else:
        material = utf8(f"{app_id}\n{event_id}")  # the key of every event before projects counted
    return f"gigs-relay-v1-{hashlib.sha256(material).hexdigest()[:48]}"


def _kept_as_is(event_id: str) -> bool:
    return (
        is_svix_id(event_id)
        and not event_id.startswith(DIGEST_PREFIX)
        and not _MESSAGE_ID_SHAPE.fullmatch(event_id)
    )


def _digest_id(material: bytes) -> str:
    return DIGEST_PREFIX + hashlib.sha256(material).hexdigest()[:40]


def to_message(
    incoming: IncomingEvent,
    *,
    fixed_app_id: str | None,
    channel_templates: tuple[ChannelTemplate, ...] = (),
) -> OutgoingMessage:
    """The Svix message for a valid event, serialised; InvalidEvent when no retry could deliver
    it (including a payload that cannot be written as JSON, or one over Svix's size limit).
    Channels come from the payload the customer sees, so they never reveal an internal field."""
    event = incoming.event
    if event is None:
        raise InvalidEvent(incoming.problem or "event is invalid")
    project: str | None = None
    if fixed_app_id is not None:
        app_id, create_app_named, project = fixed_app_id, None, event.project or None
    else:
        app_id = _project_app(event.project)
        create_app_named = app_id
    # A type too long is left to Svix's 422; one of dots only could not be named in a URL.
    if not SVIX_ID_PATTERN.fullmatch(event.type) or not event.type.strip("."):
        raise InvalidEvent(
            f"event type {event.type!r} is not a valid Svix event type "
            "(letters, digits, '-', '_' and '.' only, not only dots)"
        )
    payload = public_payload(incoming.raw)
    event_id = svix_event_id(incoming.event_id, project=project)
    channels = tuple(channels_for(channel_templates, payload)) if channel_templates else ()
    body = message_body(
        event_type=event.type,
        svix_event_id=event_id,
        payload=payload,
        create_app_named=create_app_named,
        channels=channels,
    )
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
        idempotency_key=idempotency_key(app_id, incoming.event_id, project=project),
        create_app_named=create_app_named,
        channels=channels,
        body=body,
    )


def _project_app(project: str | None) -> str:
    if not project:
        raise InvalidEvent("event has no `project` to route it to a Svix application")
    if not is_svix_id(project):
        raise InvalidEvent(f"event project {project!r} is not a valid Svix application uid")
    if _APPLICATION_ID_SHAPE.fullmatch(project):
        raise InvalidEvent(
            f"event project {project!r} has the shape of a Svix application id: it could name "
            "another application"
        )
    return project


# ---- the body, as the svix SDK writes it, without importing svix -------------------------------

# MessageIn's fields, in its order, with the core schema of each: pydantic-core (loaded already
# for the settings and the event model) writes them as the SDK's model_dump_json does, floats, big
# integers, escapes and the nesting limit included, for a third of the CPU (no model to build).
_BODY_SERIALIZER = SchemaSerializer(
    core_schema.typed_dict_schema(
        {
            "eventId": core_schema.typed_dict_field(core_schema.str_schema()),
            "eventType": core_schema.typed_dict_field(core_schema.str_schema()),
            "payload": core_schema.typed_dict_field(
                core_schema.dict_schema(core_schema.str_schema(), core_schema.any_schema())
            ),
            "channels": core_schema.typed_dict_field(
                core_schema.list_schema(core_schema.str_schema()), required=False
            ),
            "application": core_schema.typed_dict_field(
                core_schema.typed_dict_schema(
                    {
                        "name": core_schema.typed_dict_field(core_schema.str_schema()),
                        "uid": core_schema.typed_dict_field(core_schema.str_schema()),
                    }
                ),
                required=False,
            ),
        }
    )
)


def message_body(
    *,
    event_type: str,
    svix_event_id: str,
    payload: dict[str, Any],
    create_app_named: str | None,
    channels: tuple[str, ...] = (),
) -> bytes:
    """`MessageIn(...).model_dump_json(exclude_unset=True, by_alias=True)` of the svix SDK, byte
    for byte (tests/test_message_body.py holds it to that), without importing svix: that import
    costs most of a cold start. `application` only when routing by project, `channels` only when
    there are some (an unset field is left out; Svix refuses an empty list)."""
    fields: dict[str, Any] = {
        "eventId": svix_event_id,
        "eventType": event_type,
        "payload": payload,
    }
    if channels:
        fields["channels"] = list(channels)
    if create_app_named:
        fields["application"] = {"name": create_app_named, "uid": create_app_named}
    try:
        return _BODY_SERIALIZER.to_json(fields)
    except ValueError as exc:  # lone surrogates, nesting deeper than pydantic writes
        raise InvalidEvent(f"payload cannot be written as JSON: {exc}") from None
