"""What the senders make of Svix's answers to the event-type calls (look up, create), for both
senders alike, from servers that give one answer each: the relay decides from these whether to
create a type, and a wrong reading would unarchive one or warn for nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from relay.core.errors import (
    NotSvixAnswer,
    PermanentFailure,
    RateLimited,
    ServiceRefused,
    TransientFailure,
)
from relay.delivery.ports import EventTypeState
from tests.integration.test_svix_answers import HTML, SENDERS, odd_svix, reply, url
from tests.support import servers
from tests.support.messages import message
from tests.support.servers import ScriptedServer

__all__ = ["odd_svix"]  # the fixture, used by name


def event_type_out(**changes: Any) -> bytes:
    out = {
        "name": "sim.swapped",
        "description": "d",
        "archived": False,
        "deprecated": False,
        "createdAt": "2026-12-01T00:00:00Z",
        "updatedAt": "2026-12-01T00:00:00Z",
        **changes,
    }
    return json.dumps(out).encode()


SVIX_404 = json.dumps({"code": "not_found", "detail": "Entity not found"}).encode()
SVIX_409 = json.dumps({"code": "conflict", "detail": "Event type already exists"}).encode()
SVIX_422 = json.dumps(
    {"detail": [{"loc": ["body", "name"], "msg": "bad name", "type": "value_error"}]}
).encode()
SVIX_401 = json.dumps({"code": "authentication_failed", "detail": "no"}).encode()

LOOK_UPS: dict[str, tuple[bytes, object]] = {
    "200 active": (reply("200 OK", event_type_out()), EventTypeState.ACTIVE),
    "200 archived": (reply("200 OK", event_type_out(archived=True)), EventTypeState.ARCHIVED),
    "404 in Svix's shape": (reply("404 Not Found", SVIX_404), EventTypeState.MISSING),
    "404 HTML": (reply("404 Not Found", HTML), NotSvixAnswer),
    "200 with the name alone": (reply("200 OK", b'{"name": "sim.swapped"}'), EventTypeState.ACTIVE),
    "200 with fields Svix may add": (
        reply("200 OK", event_type_out(archived=True, featureFlags=["beta"], somethingNew={})),
        EventTypeState.ARCHIVED,
    ),
    "200 HTML": (reply("200 OK", HTML), TransientFailure),
    "200 JSON of another shape": (reply("200 OK", b'{"id": "x"}'), TransientFailure),
    "503": (reply("503 Service Unavailable", HTML), TransientFailure),
    "429": (reply("429 Too Many Requests", SVIX_404, headers=("Retry-After: 2",)), RateLimited),
    "401": (reply("401 Unauthorized", SVIX_401), ServiceRefused),
}

CREATES: dict[str, tuple[bytes, object]] = {
    "201": (reply("201 Created", event_type_out()), None),
    "409 in Svix's shape": (reply("409 Conflict", SVIX_409), None),
    "422": (reply("422 Unprocessable Entity", SVIX_422), PermanentFailure),
    "429": (reply("429 Too Many Requests", SVIX_404, headers=("Retry-After: 2",)), RateLimited),
    "401": (reply("401 Unauthorized", SVIX_401), ServiceRefused),
    "503": (reply("503 Service Unavailable", HTML), TransientFailure),
    "404 HTML": (reply("404 Not Found", HTML), NotSvixAnswer),
}


def sender_for(kind: str, server: ScriptedServer) -> Any:
    return SENDERS[kind](token="testsk_x", server_url=url(server), timeout_seconds=2.0)


@pytest.mark.parametrize("kind", sorted(SENDERS))
@pytest.mark.parametrize("case", sorted(LOOK_UPS))
def test_a_look_up(odd_svix: Callable[[bytes], ScriptedServer], kind: str, case: str):
    answer, expected = LOOK_UPS[case]
    sender = sender_for(kind, odd_svix(answer))
    if isinstance(expected, EventTypeState):
        assert sender.event_type_state("sim.swapped") is expected
    else:
        assert isinstance(expected, type)
        with pytest.raises(expected):
            sender.event_type_state("sim.swapped")


@pytest.mark.parametrize("kind", sorted(SENDERS))
@pytest.mark.parametrize("case", sorted(CREATES))
def test_a_create(odd_svix: Callable[[bytes], ScriptedServer], kind: str, case: str):
    answer, expected = CREATES[case]
    sender = sender_for(kind, odd_svix(answer))
    if expected is None:
        sender.create_event_type("sim.swapped", description="d", group="sim")
    else:
        assert isinstance(expected, type)
        with pytest.raises(expected):
            sender.create_event_type("sim.swapped", description="d", group="sim")


# ---- refusals that may or may not be about an archived type ----------------------------------

ARCHIVED_REASON = "because its event type is archived"


def svix_error(code: str, detail: str) -> bytes:
    return json.dumps({"code": code, "detail": detail}).encode()


def validation_error(loc: list[str], msg: str) -> bytes:
    return json.dumps({"detail": [{"loc": loc, "msg": msg, "type": "value_error"}]}).encode()


# A create's answer, and what it means: the archived type's advice, or Svix's own words.
ARCHIVED_OR_NOT: dict[str, tuple[bytes, bool]] = {
    "the emulator's 400": (
        reply("400 Bad Request", svix_error("event_type_archived", "Event type 'x.y' is archived")),
        True,
    ),
    "the emulator's 422": (
        reply(
            "422 Unprocessable Entity",
            validation_error(["body", "eventType"], "Event type 'x.y' is archived"),
        ),
        True,
    ),
    "400 bad_request saying so": (
        reply("400 Bad Request", svix_error("bad_request", "eventType is archived")),
        True,
    ),
    "400 whose code alone says so": (
        reply("400 Bad Request", svix_error("event_type_archived", "Cannot send this message")),
        True,
    ),
    "400 about a type named archived": (
        reply(
            "400 Bad Request",
            svix_error("bad_request", "Event type porting.archived is not allowed here"),
        ),
        False,
    ),
    "400 quoting a type named archived": (
        reply("400 Bad Request", svix_error("bad_request", "Invalid event type 'archived'")),
        False,
    ),
    "422 about a payload field": (
        reply(
            "422 Unprocessable Entity",
            validation_error(["body", "payload", "archivedAt"], "Input should be a valid date"),
        ),
        False,
    ),
    "400 about an archived application": (
        reply("400 Bad Request", svix_error("bad_request", "The application is archived")),
        False,
    ),
}


@pytest.mark.parametrize("kind", sorted(SENDERS))
@pytest.mark.parametrize("case", sorted(ARCHIVED_OR_NOT))
def test_only_a_refusal_about_an_archived_event_type_gives_its_advice(
    odd_svix: Callable[[bytes], ScriptedServer], kind: str, case: str
):
    answer, archived = ARCHIVED_OR_NOT[case]
    sender = sender_for(kind, odd_svix(answer))
    with pytest.raises(PermanentFailure) as refused:
        sender.send(message(type="porting.archived"))
    assert (ARCHIVED_REASON in refused.value.reason) is archived, refused.value.reason


def conflict_then_not_found(conflict: str) -> ScriptedServer:
    """Svix answering a create with a 409, and the look-up of the eventId with a 404."""
    return ScriptedServer(
        [
            servers.answer(reply("409 Conflict", svix_error("conflict", conflict))),
            servers.answer(reply("404 Not Found", SVIX_404)),
        ]
    )


@pytest.mark.parametrize("kind", sorted(SENDERS))
@pytest.mark.parametrize(
    ("project", "conflict"),
    [
        ("archived-media", "An application with uid archived-media already exists"),
        ("archived", "An application with uid 'archived' already exists"),
        ("acme-mobile", "Application acme-mobile was archived and is being restored"),
    ],
)
def test_a_conflict_that_is_not_about_an_archived_type_is_retried_not_parked(
    kind: str, project: str, conflict: str
):
    # No message with our eventId, and nothing says the event type is archived: a retry may
    # well deliver it (the application race that 409 stands for), so it must not be parked.
    server = conflict_then_not_found(conflict)
    try:
        with pytest.raises(TransientFailure):
            sender_for(kind, server).send(message(project=project))
    finally:
        server.close()


@pytest.mark.parametrize("kind", sorted(SENDERS))
def test_a_conflict_about_an_archived_type_is_parked_with_its_advice(kind: str):
    server = conflict_then_not_found("Event type sim.swapped is archived")
    try:
        with pytest.raises(PermanentFailure) as refused:
            sender_for(kind, server).send(message(type="sim.swapped"))
    finally:
        server.close()
    assert ARCHIVED_REASON in refused.value.reason
