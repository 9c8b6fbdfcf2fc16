"""Gigs platform events: the model, what a customer may see of one, and ids for those without."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

# Gigs sometimes names types the CloudEvents way ("com.gigs.user.created"); customers subscribe to
# the short name, so both spellings are one event type.
TYPE_PREFIX = "com.gigs."

# Top-level fields that describe how an event travelled inside the platform, not the event itself.
# Everything else, including fields this code has never seen, reaches the customer.
INTERNAL_FIELDS = frozenset({"internal", "attributes", "messageId", "publishTime", "subscription"})


class InvalidEvent(Exception):
    """An event that no retry can make deliverable; the message says why."""


class GigsEvent(BaseModel):
    """One event as Gigs publishes it. Unknown fields are kept: new ones appear over time."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    object: str | None = None
    id: str | None = None
    type: str = Field(min_length=1)
    data: dict[str, Any] | None = None
    project: str | None = None
    source: str | None = None
    specversion: str | None = None
    time: str | None = None
    version: str | None = None
    datacontenttype: str | None = None
    previous_data: dict[str, Any] | None = Field(default=None, alias="previousData")
    actor: dict[str, Any] | None = None

    @field_validator("type")
    @classmethod
    def _known_spelling(cls, value: str) -> str:
        return event_type_name(value)

    @field_validator("id")
    @classmethod
    def _blank_id_is_none(cls, value: str | None) -> str | None:
        return value or None


def event_type_name(raw_type: str) -> str:
    """The type customers see: without the `com.gigs.` prefix."""
    return raw_type.removeprefix(TYPE_PREFIX) if raw_type.startswith(TYPE_PREFIX) else raw_type


def parse_event(raw: object) -> GigsEvent:
    """Validate one decoded JSON value as an event, or say what is wrong with it."""
    if not isinstance(raw, dict):
        raise InvalidEvent(f"an event must be a JSON object, got {json_kind(raw)}")
    try:
        return GigsEvent.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "event"
        if first["type"] == "missing":
            raise InvalidEvent(f"event has no `{field}`") from None
        raise InvalidEvent(f"event field `{field}` is invalid: {first['msg']}") from None


def public_payload(raw: dict[str, Any]) -> dict[str, Any]:
    """The event as a customer sees it: the original object, minus internal fields, with the
    customer-facing type name. This is the one place that decides what leaves the platform."""
    payload = {
        key: value
        for key, value in raw.items()
        if key not in INTERNAL_FIELDS and not key.startswith("_")
    }
    if isinstance(payload.get("type"), str):
        payload["type"] = event_type_name(payload["type"])
    return payload


def derived_event_id(raw: dict[str, Any], *, position: int) -> str:
    """A stable id for an event that came without one, from its content and its position.

    A redelivered, retried or replayed copy (even from the dead-letter topic, where the Pub/Sub
    message id is new) gets the same id and dedups; two identical events at different positions of
    one array stay two events.
    """
    canonical = json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    material = f"{position}\n{canonical}"
    # surrogatepass: JSON can carry lone surrogates ("\ud800"), which still need a stable id.
    return (
        "evt_derived_" + hashlib.sha256(material.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    )


def json_kind(value: object) -> str:
    """How an error message names the kind of a decoded JSON value."""
    return {
        type(None): "null",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
    }.get(type(value), type(value).__name__)
