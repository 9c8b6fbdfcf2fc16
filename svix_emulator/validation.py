"""Hand-written checks of request bodies and parameters, with Svix's 422 error items.

Hand-written rather than a JSON Schema validator because they run on every request of a benchmark;
they follow the constraints of the `MessageIn` and `ApplicationIn` schemas in Svix's OpenAPI spec.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from svix_emulator.ids import parse_timestamp, to_micros

ErrorItem = dict[str, Any]

# Python's `$` also matches before a final newline, so every pattern is used with fullmatch.
ID_PATTERN = re.compile(r"[a-zA-Z0-9\-_.]+")
CHANNEL_PATTERN = re.compile(r"[a-zA-Z0-9\-_.:+]+")
TAG_PATTERN = re.compile(r"[a-zA-Z0-9\-_./\\#]+")
MESSAGE_ITERATOR_PATTERN = re.compile(r"-?msg_[A-Za-z0-9]{27}")

MAX_ID_LENGTH = 256
MAX_CHANNEL_LENGTH = 128
MAX_CHANNELS = 10
MAX_TAGS = 5
MAX_LIST_LIMIT = 250
DEFAULT_LIST_LIMIT = 50


@dataclass(frozen=True, slots=True)
class ApplicationSpec:
    name: str
    uid: str | None
    throttle_rate: int | None
    metadata: dict[str, str]


@dataclass(frozen=True, slots=True)
class MessageSpec:
    event_type: str
    event_id: str | None
    payload: dict[str, Any]
    channels: list[str] | None
    tags: list[str] | None
    deliver_at: str | None
    application: ApplicationSpec | None


@dataclass(frozen=True, slots=True)
class ListQuery:
    limit: int
    iterator: str | None
    channel: str | None
    tag: str | None
    event_types: frozenset[str] | None
    before: int | None  # microseconds since the epoch
    after: int | None
    with_content: bool


def error(loc: list[str], msg: str, kind: str = "value_error") -> ErrorItem:
    return {"loc": loc, "msg": msg, "type": kind}


def is_integer(value: object) -> bool:
    """JSON Schema's integer: 5 and 5.0, never a boolean."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def check_id(loc: list[str], value: object, errors: list[ErrorItem]) -> None:
    """An app id or uid, message id or eventId, event type: Svix's id pattern, 1 to 256 chars."""
    if not isinstance(value, str):
        errors.append(error(loc, "str type expected", "type_error.str"))
    elif len(value) > MAX_ID_LENGTH:
        errors.append(error(loc, f"ensure this value has at most {MAX_ID_LENGTH} characters"))
    elif ID_PATTERN.fullmatch(value) is None:
        errors.append(error(loc, "String must match ^[a-zA-Z0-9\\-_.]+$", "value_error.regex"))


def check_string_list(
    loc: list[str],
    value: object,
    errors: list[ErrorItem],
    *,
    pattern: re.Pattern[str],
    min_items: int,
    max_items: int | None,
    max_length: int = MAX_CHANNEL_LENGTH,
) -> list[str] | None:
    """An optional list of unique strings of a pattern (channels, tags, feature flags); no
    `max_items` means no upper bound."""
    if value is None:
        return None
    if not isinstance(value, list):
        errors.append(error(loc, "list type expected", "type_error.list"))
        return None
    if max_items is None:
        if len(value) < min_items:
            errors.append(error(loc, f"must have at least {min_items} items"))
    elif not min_items <= len(value) <= max_items:
        errors.append(error(loc, f"must have between {min_items} and {max_items} items"))
    before = len(errors)
    for index, item in enumerate(value):
        item_loc = [*loc, f"[{index}]"]
        if not isinstance(item, str):
            errors.append(error(item_loc, "str type expected", "type_error.str"))
        elif len(item) > max_length or pattern.fullmatch(item) is None:
            errors.append(
                error(item_loc, f"must match {pattern.pattern}, at most {max_length} chars")
            )
    if len(errors) == before and len(set(value)) != len(value):
        errors.append(error(loc, "items must be unique"))
    return value if len(errors) == before else None


def _check_optional_int(
    loc: list[str], value: object, errors: list[ErrorItem], low: int, high: int | None
) -> None:
    if value is None:
        return
    if not is_integer(value):
        errors.append(error(loc, "integer expected", "type_error.integer"))
    elif value < low or (high is not None and value > high):  # type: ignore[operator]
        errors.append(error(loc, f"must be between {low} and {high}"))


def check_application_in(
    loc: list[str], body: object, errors: list[ErrorItem]
) -> ApplicationSpec | None:
    if not isinstance(body, dict):
        errors.append(error(loc, "object expected", "type_error.dict"))
        return None
    before = len(errors)
    name = body.get("name")
    if "name" not in body:
        errors.append(error([*loc, "name"], "field required", "value_error.missing"))
    elif not isinstance(name, str):
        errors.append(error([*loc, "name"], "str type expected", "type_error.str"))
    elif not name:
        errors.append(error([*loc, "name"], "ensure this value has at least 1 characters"))
    uid = body.get("uid")
    if uid is not None:
        check_id([*loc, "uid"], uid, errors)
    throttle_rate = body.get("throttleRate")
    # Svix keeps it in a uint16, but the spec, the authority here, sets no maximum.
    _check_optional_int([*loc, "throttleRate"], throttle_rate, errors, 1, None)
    metadata = body.get("metadata", {})
    if not isinstance(metadata, dict):
        errors.append(error([*loc, "metadata"], "object expected", "type_error.dict"))
    elif not all(isinstance(v, str) for v in metadata.values()):
        errors.append(error([*loc, "metadata"], "values must be strings", "type_error.str"))
    if len(errors) != before:
        return None
    return ApplicationSpec(
        name=str(name),
        uid=uid,
        throttle_rate=None if throttle_rate is None else int(throttle_rate),
        metadata=dict(metadata),
    )


def check_message_in(body: object, errors: list[ErrorItem]) -> MessageSpec | None:
    loc = ["body"]
    if not isinstance(body, dict):
        errors.append(error(loc, "object expected", "type_error.dict"))
        return None
    before = len(errors)
    event_type = body.get("eventType")
    if "eventType" not in body:
        errors.append(error([*loc, "eventType"], "field required", "value_error.missing"))
    else:
        check_id([*loc, "eventType"], event_type, errors)
    if "payload" not in body:
        errors.append(error([*loc, "payload"], "field required", "value_error.missing"))
    elif not isinstance(body["payload"], dict):
        errors.append(error([*loc, "payload"], "Payload must be an object.", "type_error.dict"))
    event_id = body.get("eventId")
    if event_id is not None:
        check_id([*loc, "eventId"], event_id, errors)
    channels = check_string_list(
        [*loc, "channels"],
        body.get("channels"),
        errors,
        pattern=CHANNEL_PATTERN,
        min_items=1,
        max_items=MAX_CHANNELS,
    )
    tags = check_string_list(
        [*loc, "tags"],
        body.get("tags"),
        errors,
        pattern=TAG_PATTERN,
        min_items=0,
        max_items=MAX_TAGS,
    )
    deliver_at = body.get("deliverAt")
    if deliver_at is not None and (
        not isinstance(deliver_at, str) or parse_timestamp(deliver_at) is None
    ):
        errors.append(error([*loc, "deliverAt"], "RFC 3339 date-time expected"))
    params = body.get("transformationsParams")
    if params is not None and not isinstance(params, dict):
        errors.append(error([*loc, "transformationsParams"], "object expected", "type_error.dict"))
    _check_optional_int(
        [*loc, "payloadRetentionPeriod"], body.get("payloadRetentionPeriod"), errors, 1, 90
    )
    _check_optional_int(
        [*loc, "payloadRetentionHours"], body.get("payloadRetentionHours"), errors, 1, 2160
    )
    application = None
    if body.get("application") is not None:
        application = check_application_in([*loc, "application"], body["application"], errors)
    if len(errors) != before:
        return None
    return MessageSpec(
        event_type=str(event_type),
        event_id=event_id,
        payload=body["payload"],
        channels=channels,
        tags=tags,
        deliver_at=deliver_at,
        application=application,
    )


def parse_bool(name: str, raw: str | None, default: bool, errors: list[ErrorItem]) -> bool:
    if raw is None:
        return default
    if raw in ("true", "false"):
        return raw == "true"
    errors.append(error(["query", name], "expected `true` or `false`", "type_error.bool"))
    return default


def parse_limit(raw: str | None, errors: list[ErrorItem]) -> int:
    """A list's `limit`: 1 to 250, 50 when absent."""
    if raw is None:
        return DEFAULT_LIST_LIMIT
    if not raw.isascii() or not raw.isdigit():
        errors.append(error(["query", "limit"], "integer expected", "type_error.integer"))
        return DEFAULT_LIST_LIMIT
    limit = int(raw)
    if not 1 <= limit <= MAX_LIST_LIMIT:
        errors.append(error(["query", "limit"], "Given limit must not exceed 250"))
    return limit


def parse_list_query(query: dict[str, list[str]], errors: list[ErrorItem]) -> ListQuery | None:
    """`GET .../msg` parameters; `event_types` may repeat and may hold comma lists, as the SDK
    sends them joined by commas."""
    before_count = len(errors)

    def last(name: str) -> str | None:
        values = query.get(name)
        return values[-1] if values else None

    limit = parse_limit(last("limit"), errors)
    iterator = last("iterator")
    if iterator is not None and MESSAGE_ITERATOR_PATTERN.fullmatch(iterator) is None:
        errors.append(error(["query", "iterator"], "invalid iterator"))
    channel = last("channel")
    if channel is not None and (
        len(channel) > MAX_CHANNEL_LENGTH or CHANNEL_PATTERN.fullmatch(channel) is None
    ):
        errors.append(error(["query", "channel"], "invalid channel"))
    tag = last("tag")
    if tag is not None and (len(tag) > MAX_CHANNEL_LENGTH or TAG_PATTERN.fullmatch(tag) is None):
        errors.append(error(["query", "tag"], "invalid tag"))
    event_types: set[str] = set()
    for raw in query.get("event_types", []) + query.get("event_types[]", []):
        for name in raw.split(","):
            check_id(["query", "event_types"], name, errors)
            event_types.add(name)
    bounds: dict[str, int | None] = {}
    for name in ("before", "after"):
        raw_time = last(name)
        moment = None if raw_time is None else parse_timestamp(raw_time)
        if raw_time is not None and moment is None:
            errors.append(error(["query", name], f"Unable to parse {name}"))
        bounds[name] = None if moment is None else to_micros(moment)
    with_content = parse_bool("with_content", last("with_content"), True, errors)
    if len(errors) != before_count:
        return None
    return ListQuery(
        limit=limit,
        iterator=iterator,
        channel=channel,
        tag=tag,
        event_types=frozenset(event_types) or None,
        before=bounds["before"],
        after=bounds["after"],
        with_content=with_content,
    )
