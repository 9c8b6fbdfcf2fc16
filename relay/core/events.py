"""Gigs platform events: the model, what a customer may see of one, and ids for those without."""

from __future__ import annotations

import hashlib
import json
import math
from json.encoder import encode_basestring
from operator import itemgetter
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from relay.core.errors import InvalidEvent
from relay.core.jsontext import utf8

# Gigs sometimes names types the CloudEvents way ("com.gigs.user.created"); customers subscribe to
# the short name, so both spellings are one event type.
TYPE_PREFIX = "com.gigs."

# Top-level fields that describe how an event travelled inside the platform, not the event itself.
# Everything else, including fields this code has never seen, reaches the customer.
INTERNAL_FIELDS = frozenset({"internal", "attributes", "messageId", "publishTime", "subscription"})


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


def derived_event_id(canonical: str, *, occurrence: int) -> str:
    """A stable id for an event that came without one, from its canonical JSON and which copy of
    that content it is within its message (0 for the first).

    A redelivered, reordered, split or replayed copy (even from the dead-letter topic, where the
    Pub/Sub message id is new, or from a JSONL file with one event a line) gets the same id and
    dedups; identical events within one message stay separate events. Identical copies split over
    two messages cannot be told from a redelivery, so they become one event.
    """
    # "<n>\n<canonical JSON>", as when n was the event's position: a lone event (copy 0, at
    # position 0) keeps the id it had then, so redeliveries across that change still dedup.
    # Fed in two parts to save a copy of the text (a 16 MiB string with one emoji is 64 MiB).
    digest = hashlib.sha256(f"{occurrence}\n".encode())
    # surrogatepass: JSON can carry lone surrogates ("\ud800"), which still need a stable id.
    digest.update(utf8(canonical))
    return "evt_derived_" + digest.hexdigest()[:32]


class DerivedIds:
    """Ids for the events of one message that came without one: from each event's content and
    how many identical copies came before it in the message, never from where it stands, so
    that a reordered or split redelivery dedups."""

    def __init__(self) -> None:
        # Copies seen so far, by the id of the first copy.
        self._copies: dict[str, int] = {}

    def next_id(self, raw: object) -> str:
        canonical = canonical_json(raw)
        first = derived_event_id(canonical, occurrence=0)
        occurrence = self._copies.get(first, 0)
        self._copies[first] = occurrence + 1
        return first if occurrence == 0 else derived_event_id(canonical, occurrence=occurrence)


def canonical_json(value: object) -> str:
    """The value's JSON with sorted keys, no spaces and non-ASCII text as is: the same text for
    the same content however it was spelled, and however deep it is nested."""
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except RecursionError:
        # The decoder took the value at a shallower stack than this one. The same text, made
        # with a list for a stack: it needs a frame or two, whatever the depth.
        return _canonical_json_without_recursion(value)


def _canonical_json_without_recursion(value: object) -> str:
    out: list[str] = []
    # What is left to write, next on top: (True, text to write as is) or (False, a value).
    todo: list[tuple[bool, Any]] = [(False, value)]
    while todo:
        literal, item = todo.pop()
        if literal:
            out.append(item)
            continue
        if isinstance(item, dict):
            parts: list[tuple[bool, Any]] = []
            for key, inner in sorted(item.items(), key=itemgetter(0)):
                separator = "," if parts else "{"
                parts += [(True, f"{separator}{encode_basestring(key)}:"), (False, inner)]
            todo += reversed([*parts, (True, "}" if parts else "{}")])
        elif isinstance(item, list):
            parts = []
            for inner in item:
                parts += [(True, "," if parts else "["), (False, inner)]
            todo += reversed([*parts, (True, "]" if parts else "[]")])
        else:
            out.append(_scalar(item))
    return "".join(out)


def _scalar(value: object) -> str:
    """A JSON scalar as json.dumps writes it."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return encode_basestring(value)
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        if value != value:
            return "NaN"
        if value in (math.inf, -math.inf):
            return "Infinity" if value > 0 else "-Infinity"
        return float.__repr__(value)
    raise TypeError(f"{type(value).__name__} is not a JSON value")


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
