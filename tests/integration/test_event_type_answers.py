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
