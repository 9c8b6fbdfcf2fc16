"""What Svix's answers mean: the message was taken, Svix is busy, the deployment is wrong, or
the message itself is refused.

Both senders judge a failed answer from its status and raw body (`failure_for`), so they agree
on it. Strategy: only Svix's own error shapes blame the message; anything else at Svix's address
(a redirect, an HTML page, foreign JSON) is a deployment problem, answered 503 and never parked.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any, NoReturn

from pydantic_core import SchemaValidator, core_schema

from relay.core.errors import (
    NotSvixAnswer,
    PermanentFailure,
    RateLimited,
    RelayError,
    ServiceRefused,
    TransientFailure,
)
from relay.delivery.event_types import archived_type_reason
from relay.delivery.ports import EventTypeState

# Statuses a later attempt may not meet, besides 5xx.
TRANSIENT_STATUSES = frozenset({408, 423, 425})


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP date; None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class Conflict(RelayError):
    """Svix answered 409. Only the sender can tell whether it was about our eventId (the message
    is there: success) or something else, such as two requests creating the application."""


def failure_for(status: int, body: bytes, headers: Mapping[str, str]) -> NoReturn:
    """What a non-2xx answer means; it always raises (Conflict for a 409). `headers` has
    lower-case names. Only an error in Svix's own shape can blame the message."""
    detail, from_svix = read_error(status, body)
    if status == 409:
        raise Conflict(detail)
    if status == 429:
        retry_after = retry_after_seconds(headers.get("retry-after"))
        raise RateLimited(f"Svix rate limit (429): {detail}", retry_after=retry_after)
    if status in TRANSIENT_STATUSES or status >= 500:
        raise TransientFailure(f"Svix answered {status}: {detail}", status=status)
    if from_svix and status in (401, 403):
        raise ServiceRefused(
            f"Svix refused the relay's credentials ({status}): check SVIX_AUTH_TOKEN",
            status=status,
        )
    if from_svix and status == 404:
        raise ServiceRefused(
            f"Svix does not know the application (404): {detail}; check SVIX_APP_ID",
            status=status,
        )
    if from_svix and status in (400, 413, 422):
        raise PermanentFailure(_refusal(status, detail), status=status)
    if 300 <= status < 400:
        location = headers.get("location", "")[:200] or "nowhere"
        raise NotSvixAnswer(
            f"Svix's address answered {status}, a redirect to {location}, which the relay does "
            "not follow: set SVIX_SERVER_URL to Svix's API address itself",
            status=status,
        )
    raise NotSvixAnswer(
        f"Svix's address answered {status} with {detail}, an answer Svix never gives: "
        "check SVIX_SERVER_URL",
        status=status,
    )


# The words of a refusal about an archived event type: "archived" as a word of Svix's own text
# (not part of a name such as `porting.archived`, `archived-media` or `archivedAt`), beside a
# mention of the event type. Names Svix quotes back are the message's, not Svix's words.
_ARCHIVED_WORD = re.compile(r"(?<![\w.:+\-])archived(?![\w:+\-]|\.\w)", re.IGNORECASE)
_EVENT_TYPE_WORDS = re.compile(r"event[ _-]?type", re.IGNORECASE)
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|`[^`]*`")


def _refusal(status: int, detail: str) -> str:
    if says_event_type_archived(status, detail):
        return archived_type_reason(f"{status}: {detail}")
    if status == 422:
        return f"Svix rejected the message as invalid (422): {detail}"
    return f"Svix rejected the message ({status}): {detail}"


def says_event_type_archived(status: int, detail: str) -> bool:
    """Whether a refusal (`read_error`'s line for it) says the message's event type is archived.

    Svix's words for it are unconfirmed, so any wording will do that names the event type and
    says "archived" of it: the error code (`event_type_archived`), or the text ("Event type 'x'
    is archived", a 422 on `body.eventType`). Not a name that merely contains the word: for a
    409 the answer decides whether a healthy event is parked or retried."""
    code, text = ("", detail) if status == 422 else _code_and_text(detail)
    about_event_type = _EVENT_TYPE_WORDS.search(code) or _EVENT_TYPE_WORDS.search(text)
    if not about_event_type:
        return False
    return "archived" in code.lower() or bool(_ARCHIVED_WORD.search(_QUOTED.sub("", text)))


def _code_and_text(detail: str) -> tuple[str, str]:
    # read_error writes Svix's `{code, detail}` as "code: detail".
    code, separator, text = detail.partition(": ")
    return (code, text) if separator else ("", detail)


def read_error(status: int, body: bytes) -> tuple[str, bool]:
    """An error body in a line, and whether it is in Svix's shape for the status: 422
    `{"detail": [{"loc", "msg", "type"}, ...]}`, any other `{"code": str, "detail": ...}`."""
    try:
        document = json.loads(body)
    except ValueError:  # UnicodeDecodeError included
        return "a body that is not JSON", False
    if not isinstance(document, dict):
        return "a JSON body that is not a Svix error", False
    detail = document.get("detail")
    if status == 422:
        if not (isinstance(detail, list) and detail and all(map(_validation_item, detail))):
            return "a JSON body that is not a Svix validation error", False
        return "; ".join(f"{'.'.join(map(str, i['loc']))}: {i['msg']}" for i in detail[:3]), True
    code = document.get("code")
    if not (isinstance(code, str) and code and "detail" in document):
        return "a JSON body that is not a Svix error", False
    return f"{code}: {str(detail)[:200]}", True


def _validation_item(item: object) -> bool:
    return (
        isinstance(item, dict)
        and isinstance(item.get("loc"), list)
        and isinstance(item.get("msg"), str)
        and isinstance(item.get("type"), str)
    )


def unconfirmed_conflict(conflict: str, svix_event_id: str, lookup_status: int) -> NoReturn:
    """A 409 whose message could not be found by its eventId: not a delivery, so a retry;
    unless the 409 was about an archived event type, which no retry can fix."""
    if lookup_status == 404 and says_event_type_archived(409, conflict):
        raise PermanentFailure(_refusal(409, conflict), status=409)
    if lookup_status == 404:
        raise TransientFailure(
            f"Svix answered 409 ({conflict}) but holds no message with eventId "
            f"{svix_event_id}: retrying"
        )
    raise TransientFailure(
        f"Svix answered 409 ({conflict}); looking the message up answered {lookup_status}",
        status=lookup_status,
    )


# The SDK whose wire format the direct sender speaks, for its User-Agent (a test pins it to the
# installed SDK; asking importlib.metadata costs milliseconds of cold start).
SVIX_SDK_VERSION = "2.9.1"


def _field(schema: core_schema.CoreSchema, alias: str, *, required: bool = True) -> Any:
    if not required:
        schema = core_schema.with_default_schema(core_schema.nullable_schema(schema), default=None)
    return core_schema.model_field(schema, validation_alias=alias)


_TEXTS = core_schema.list_schema(core_schema.str_schema())
_WHEN = core_schema.datetime_schema(microseconds_precision="truncate")
# svix.api.MessageOut's fields, aliases and config, as pydantic-core checks them, so that the
# direct sender reads an answer as the SDK does without importing it, nor pydantic's models (a
# quarter of the cold start): tests/integration/test_sender_contract.py holds it to the SDK.
MESSAGE_OUT_FIELDS: dict[str, Any] = {
    "event_id": _field(core_schema.str_schema(), "eventId", required=False),
    "event_type": _field(core_schema.str_schema(), "eventType"),
    "payload": _field(
        core_schema.dict_schema(core_schema.str_schema(), core_schema.any_schema()), "payload"
    ),
    "channels": _field(_TEXTS, "channels", required=False),
    "id": _field(core_schema.str_schema(), "id"),
    "timestamp": _field(_WHEN, "timestamp"),
    "tags": _field(_TEXTS, "tags", required=False),
    "deliver_at": _field(_WHEN, "deliverAt", required=False),
}
_MESSAGE_OUT = SchemaValidator(
    core_schema.model_fields_schema(MESSAGE_OUT_FIELDS),
    core_schema.CoreConfig(validate_by_alias=True, validate_by_name=True),
)


def _message_out(body: bytes) -> dict[str, Any] | None:
    try:
        fields: dict[str, Any] = _MESSAGE_OUT.validate_json(body)[0]
    except ValueError:
        return None
    return fields


def created_message_id(body: bytes) -> str | None:
    """The message id in a 2xx answer, read as the SDK's MessageOut reads it; None when the body
    is not a message, or names none (an empty id)."""
    found = _message_out(body)
    return (found["id"] or None) if found is not None else None


def found_message_id(body: bytes, svix_event_id: str) -> str | None:
    """The id of the message a look-up by eventId found, only when it is the message with that
    eventId: Svix looks messages up by id or eventId alike."""
    found = _message_out(body)
    if found is None or not found["id"] or found["event_id"] != svix_event_id:
        return None
    return str(found["id"])


def look_up_failure(status: int, body: bytes, headers: Mapping[str, str]) -> NoReturn:
    """What a failed look-up means: as for a create (429, 5xx, a deployment problem), except
    that it never blames the message, which was not even sent: a refusal is retried."""
    try:
        failure_for(status, body, headers)
    except Conflict:
        raise TransientFailure("Svix answered 409 to a look-up", status=409) from None
    except PermanentFailure as refused:
        raise TransientFailure(f"Svix refused a look-up: {refused.reason}", status=status) from None


def not_a_message(status: int) -> NoReturn:
    # Svix took it (or something at its address said so); a retry with the same key replays it.
    raise TransientFailure(
        f"Svix answered {status} with a body that is not a message", status=status
    ) from None


def region_url(token: str) -> str:
    """Svix's API for the token's region, as the SDK picks it (tested against the SDK)."""
    region = token.rsplit(".", 1)[-1]
    if region in ("us", "eu", "in", "ca", "au"):
        return f"https://api.{region}.svix.com"
    return "https://api.svix.com"


def event_type_state(status: int, body: bytes, headers: Mapping[str, str]) -> EventTypeState:
    """What GET /api/v1/event-type/{name} says: the type is there (archived or not), or not."""
    if 200 <= status < 300:
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        if not isinstance(document, dict) or not isinstance(document.get("name"), str):
            raise TransientFailure(
                f"Svix answered {status} with a body that is not an event type", status=status
            )
        archived = document.get("archived") is True
        return EventTypeState.ARCHIVED if archived else EventTypeState.ACTIVE
    if status == 404 and read_error(404, body)[1]:
        return EventTypeState.MISSING
    look_up_failure(status, body, headers)


def event_type_created(status: int, body: bytes, headers: Mapping[str, str]) -> None:
    """What POST /api/v1/event-type says: created, or there already (a 409): both are fine."""
    if 200 <= status < 300:
        return
    try:
        failure_for(status, body, headers)
    except Conflict:
        return
