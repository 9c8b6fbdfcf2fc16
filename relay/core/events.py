"""Gigs platform events: the fields the relay reads, what a customer may see of one, and ids for
those without."""

from __future__ import annotations

import hashlib
import json
import math
from json.encoder import encode_basestring
from operator import itemgetter
from typing import Any, NamedTuple

from relay.core.errors import InvalidEvent
from relay.core.jsontext import utf8

# Gigs sometimes names types the CloudEvents way ("com.gigs.user.created"); customers subscribe to
# the short name, so both spellings are one event type.
TYPE_PREFIX = "com.gigs."

# Top-level fields that describe how an event travelled inside the platform, not the event itself.
# Everything else, including fields this code has never seen, reaches the customer.
INTERNAL_FIELDS = frozenset({"internal", "attributes", "messageId", "publishTime", "subscription"})


class GigsEvent(NamedTuple):
    """The fields of one event the relay reads, checked. The event itself (unknown fields
    included: new ones appear over time) travels on as the decoded object. A tuple: immutable,
    and made in a third of a frozen dataclass's time, once per event."""

    object: str | None
    id: str | None  # None when absent or blank
    type: str  # as customers see it: without the `com.gigs.` prefix
    data: dict[str, Any] | None
    project: str | None
    source: str | None
    specversion: str | None
    time: str | None
    version: str | None
    datacontenttype: str | None
    previous_data: dict[str, Any] | None  # `previousData`, or `previous_data`
    actor: dict[str, Any] | None


def event_type_name(raw_type: str) -> str:
    """The type customers see: without the `com.gigs.` prefix."""
    return raw_type.removeprefix(TYPE_PREFIX) if raw_type.startswith(TYPE_PREFIX) else raw_type


# GigsEvent's fields as keys of the event, with the JSON type each must have when present and not
# null. Their order is the order in which the first problem is named.
_FIELDS: tuple[tuple[str, type], ...] = (
    ("object", str),
    ("id", str),
    ("type", str),
    ("data", dict),
    ("project", str),
    ("source", str),
    ("specversion", str),
    ("time", str),
    ("version", str),
    ("datacontenttype", str),
    ("previousData", dict),
    ("actor", dict),
)
_KEYS = tuple(key for key, _ in _FIELDS)
# Each field's type, or null: what `isinstance` takes for a field that may be absent. Checked
# with `map`, so that a valid event's dozen checks run without a Python loop.
_KINDS_OR_NULL = tuple((kind, type(None)) for _, kind in _FIELDS)
_ID, _TYPE, _PREVIOUS_DATA = 1, 2, 10
_SHOULD_BE: dict[type, str] = {
    str: "Input should be a valid string",
    dict: "Input should be a valid dictionary",
}
_NOT_UNICODE = "Input should be a valid string, unable to parse raw data as a unicode string"


def parse_event(raw: object) -> GigsEvent:
    """Check one decoded JSON value as an event, or say what is wrong with it (its first problem,
    in GigsEvent's field order).

    It refuses exactly what the pydantic model it replaced refused, in the same words
    (tests/unit/test_event_check.py holds the two together on arbitrary JSON objects). It costs
    about the CPU of the model's validation (4 µs an event); what it saves is the model at
    start (about 15 ms for the class, and pydantic itself once nothing else needs it)."""
    if not isinstance(raw, dict):
        raise InvalidEvent(f"an event must be a JSON object, got {json_kind(raw)}")
    if not "".join(raw).isascii():  # one look at every key: they are almost always ASCII
        _check_keys(raw)
    values: list[Any] = list(map(raw.get, _KEYS))
    if "previous_data" in raw and "previousData" not in raw:
        values[_PREVIOUS_DATA] = raw["previous_data"]  # the field's own name, which the model took
    if not all(map(isinstance, values, _KINDS_OR_NULL)):
        raise InvalidEvent(_first_problem(raw))
    # After the others: they are all fine, so a problem with the type is the first.
    values[_TYPE] = event_type_name(_checked_type(raw, values[_TYPE]))
    values[_ID] = values[_ID] or None  # a blank id is no id
    return GigsEvent(*values)


def _first_problem(raw: dict[str, Any]) -> str:
    """What is wrong with an event that has a field of the wrong type, naming the first problem
    in field order (a problem with `type` before it counts too)."""
    for key, kind in _FIELDS:
        if key == "previousData" and key not in raw and "previous_data" in raw:
            key = "previous_data"
        value = raw.get(key)
        if key == "type":
            try:
                _checked_type(raw, value)
            except InvalidEvent as problem:
                return str(problem)
        elif value is not None and not isinstance(value, kind):
            return f"event field `{key}` is invalid: {_SHOULD_BE[kind]}"
    raise AssertionError("unreachable: called for an event with a field of the wrong type")


def _check_keys(raw: dict[str, Any]) -> None:
    for key in raw:
        if not _is_unicode(key):
            # The model's words for it, field name included, kept so that answers stay the same.
            raise InvalidEvent(f"event field `event` is invalid: {_NOT_UNICODE}")


def _checked_type(raw: dict[str, Any], value: object) -> str:
    if value is None and "type" not in raw:
        raise InvalidEvent("event has no `type`")
    if not isinstance(value, str):
        raise InvalidEvent(f"event field `type` is invalid: {_SHOULD_BE[str]}")
    if not value:
        raise InvalidEvent("event field `type` is invalid: String should have at least 1 character")
    if not _is_unicode(value):
        raise InvalidEvent(f"event field `type` is invalid: {_NOT_UNICODE}")
    return value


def _is_unicode(text: str) -> bool:
    """False for text with a lone surrogate ("\ud800"), which JSON can carry."""
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def public_payload(raw: dict[str, Any]) -> dict[str, Any]:
    """The event as a customer sees it: the original object, minus internal fields, with the
    customer-facing type name. This is the one place that decides what leaves the platform."""
    # Strategy: almost every event has no internal field, so the common case is one copy and two
    # looks at the keys in C; only an event with one is filtered key by key.
    if INTERNAL_FIELDS.isdisjoint(raw) and "\x00_" not in "\x00" + "\x00".join(raw):
        payload = dict(raw)
    else:
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
