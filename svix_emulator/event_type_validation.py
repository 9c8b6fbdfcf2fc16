"""Checks of event-type bodies and list parameters, with Svix's 422 error items.

They follow `EventTypeIn`, `EventTypeUpsertIn`, `EventTypePatch` and the `v1.event-type.list`
parameters of Svix's OpenAPI spec. Svix never checks message payloads against `schemas`, so an
object is all a schema has to be.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from svix_emulator.validation import (
    ID_PATTERN,
    MAX_ID_LENGTH,
    ErrorItem,
    check_id,
    check_string_list,
    error,
    parse_bool,
    parse_limit,
)

ORDERS = ("ascending", "descending")
# The JSON name of each field a body may set, and where it lives in `EventTypeFields`.
FIELD_NAMES = {
    "description": "description",
    "archived": "archived",
    "deprecated": "deprecated",
    "schemas": "schemas",
    "groupName": "group_name",
    "featureFlags": "feature_flags",
}


@dataclass(frozen=True, slots=True)
class EventTypeFields:
    """Everything about an event type but its name; the defaults are a body's defaults."""

    description: str
    archived: bool = False
    deprecated: bool = False
    schemas: dict[str, Any] | None = None
    group_name: str | None = None
    feature_flags: list[str] | None = None


@dataclass(frozen=True, slots=True)
class EventTypeQuery:
    limit: int
    # The name of the last type already seen, and whether the caller goes back from it (the
    # `-` of a `prevIterator`).
    iterator: str | None
    backwards: bool
    descending: bool
    include_archived: bool
    with_content: bool


def _check_field(loc: list[str], key: str, value: object, errors: list[ErrorItem]) -> None:
    where = [*loc, key]
    if key == "description":
        if not isinstance(value, str):
            errors.append(error(where, "str type expected", "type_error.str"))
    elif key in ("archived", "deprecated"):
        # Not nullable in the spec: a null is as wrong as a string.
        if not isinstance(value, bool):
            errors.append(error(where, "value could not be parsed to a boolean", "type_error.bool"))
    elif value is None:
        return  # schemas, groupName and featureFlags are nullable
    elif key == "schemas":
        if not isinstance(value, dict):
            errors.append(error(where, "object expected", "type_error.dict"))
    elif key == "groupName":
        check_id(where, value, errors)
    else:
        check_string_list(
            where,
            value,
            errors,
            pattern=ID_PATTERN,
            min_items=1,
            max_items=None,
            max_length=MAX_ID_LENGTH,
        )


def _check_object(loc: list[str], body: object, errors: list[ErrorItem]) -> dict[str, Any] | None:
    if isinstance(body, dict):
        return body
    errors.append(error(loc, "object expected", "type_error.dict"))
    return None


def check_event_type_patch(body: object, errors: list[ErrorItem]) -> dict[str, Any] | None:
    """`EventTypePatch`: the fields given, by their `EventTypeFields` names; a null clears."""
    loc = ["body"]
    data = _check_object(loc, body, errors)
    if data is None:
        return None
    before = len(errors)
    changes: dict[str, Any] = {}
    for key, attribute in FIELD_NAMES.items():
        if key in data:
            _check_field(loc, key, data[key], errors)
            changes[attribute] = data[key]
    return changes if len(errors) == before else None


def check_event_type_upsert(body: object, errors: list[ErrorItem]) -> EventTypeFields | None:
    """`EventTypeUpsertIn` (PUT): a whole event type but its name; what is left out is reset."""
    data = _check_object(["body"], body, errors)
    if data is None:
        return None
    return _whole(data, errors)


def check_event_type_in(
    body: object, errors: list[ErrorItem]
) -> tuple[str, EventTypeFields] | None:
    """`EventTypeIn` (POST): the name and the whole event type."""
    data = _check_object(["body"], body, errors)
    if data is None:
        return None
    before = len(errors)
    if "name" not in data:
        errors.append(error(["body", "name"], "field required", "value_error.missing"))
    else:
        check_id(["body", "name"], data["name"], errors)
    fields = _whole(data, errors)
    if fields is None or len(errors) != before:
        return None
    return str(data["name"]), fields


def _whole(data: dict[str, Any], errors: list[ErrorItem]) -> EventTypeFields | None:
    before = len(errors)
    if "description" not in data:
        errors.append(error(["body", "description"], "field required", "value_error.missing"))
    changes = check_event_type_patch(data, errors)
    if changes is None or len(errors) != before:
        return None
    return EventTypeFields(**changes)


def parse_event_type_query(
    query: dict[str, list[str]], errors: list[ErrorItem]
) -> EventTypeQuery | None:
    """`GET /api/v1/event-type` parameters. Unknown ones are ignored, as Svix does."""
    before = len(errors)

    def last(name: str) -> str | None:
        values = query.get(name)
        return values[-1] if values else None

    limit = parse_limit(last("limit"), errors)
    raw_iterator = last("iterator")
    backwards = raw_iterator is not None and raw_iterator.startswith("-")
    iterator = raw_iterator[1:] if raw_iterator is not None and backwards else raw_iterator
    if iterator is not None:
        check_id(["query", "iterator"], iterator, errors)
    order = last("order")
    if order is not None and order not in ORDERS:
        msg = "value is not a valid enumeration member; permitted: 'ascending', 'descending'"
        errors.append(error(["query", "order"], msg, "type_error.enum"))
    include_archived = parse_bool("include_archived", last("include_archived"), False, errors)
    # Svix's default, unlike the message list's: schemas only when asked for.
    with_content = parse_bool("with_content", last("with_content"), False, errors)
    if len(errors) != before:
        return None
    return EventTypeQuery(
        limit=limit,
        iterator=iterator,
        backwards=backwards,
        descending=order == "descending",
        include_archived=include_archived,
        with_content=with_content,
    )
