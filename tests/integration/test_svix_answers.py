"""What an answer from Svix's address means, for both senders, from a server that answers as Svix
never does: redirects, HTML or foreign JSON errors, odd statuses and framings.

Only an error in Svix's own shape can blame the message (400/413 `{"code", "detail"}`, 422
`{"detail": [{"loc", "msg", "type"}]}`). Anything else means SVIX_SERVER_URL points somewhere
that is not Svix's API: the message is kept (503) and the reason names the setting."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from relay.core.errors import (
    NotSvixAnswer,
    PermanentFailure,
    RateLimited,
    SendFailure,
    ServiceRefused,
    TransientFailure,
)
from relay.svix.direct import DirectSvixSender
from relay.svix.sdk import SdkSvixSender
from tests.support import own_events, push_envelope, unique_name
from tests.support.messages import message
from tests.support.servers import ScriptedServer

USER = own_events()["user-created"]
SENDERS: dict[str, Any] = {"direct": DirectSvixSender, "sdk": SdkSvixSender}
HTML = b"<html><head><title>Moved</title></head><body>Moved</body></html>"
SVIX_400 = json.dumps({"code": "bad_request", "detail": "eventType is archived"}).encode()
SVIX_413 = json.dumps({"code": "payload_too_large", "detail": "Payload too large"}).encode()
SVIX_422 = json.dumps(
    {"detail": [{"loc": ["body", "eventType"], "msg": "too long", "type": "value_error"}]}
).encode()
# Single attempt: a retry must not be what makes these tests pass or fail.
ONE_ATTEMPT = {
    "RELAY_TIME_BUDGET_SECONDS": "0.5",
    "RELAY_BACKOFF_INITIAL_SECONDS": "1",
    "RELAY_BACKOFF_MAX_SECONDS": "1",
    "RELAY_SVIX_TIMEOUT_SECONDS": "0.5",
}


def reply(
    status: str,
    body: bytes = b"",
    *,
    headers: tuple[str, ...] = (),
    framing: str = "length",
    version: str = "HTTP/1.1",
) -> bytes:
    """An answer's bytes: `framing` is length, chunked, close (body up to the close) or open
    (no framing and the connection left open)."""
    lines = [f"{version} {status}", *headers]
    if framing == "length":
        lines.append(f"Content-Length: {len(body)}")
        payload = body
    elif framing == "chunked":
        lines.append("Transfer-Encoding: chunked")
        payload = (f"{len(body):x}\r\n".encode() + body + b"\r\n" if body else b"") + b"0\r\n\r\n"
    else:
        payload = body
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


@pytest.fixture
def odd_svix() -> Iterator[Callable[[bytes, str], ScriptedServer]]:
    """A server at Svix's address that gives the same answer to every request, then closes the
    connection (framing close) or holds it open until the test ends (framing open)."""
    servers: list[ScriptedServer] = []
    stop = threading.Event()

    def start(raw: bytes, framing: str = "length") -> ScriptedServer:
        def handle(conn: socket.socket, _request: bytes) -> None:
            conn.sendall(raw)
            if framing == "close":
                conn.close()
            elif framing == "open":
                stop.wait(10)

        servers.append(ScriptedServer([handle]))
        return servers[-1]

    yield start
    stop.set()
    for server in servers:
        server.close()


def url(server: ScriptedServer) -> str:
    return f"http://127.0.0.1:{server.port}"


REDIRECT = ("Location: https://api.eu.svix.com/api/v1/app/acme-mobile/msg",)

# (answer, how the server ends it)
DEPLOYMENT_PROBLEMS: dict[str, tuple[bytes, str]] = {
    "308 with an HTML page": (reply("308 Permanent Redirect", HTML, headers=REDIRECT), "length"),
    "301 without a body": (reply("301 Moved Permanently", headers=REDIRECT), "length"),
    "302 without a body": (reply("302 Found", headers=REDIRECT), "length"),
    "307 without a body": (reply("307 Temporary Redirect", headers=REDIRECT), "length"),
    "308 chunked": (
        reply("308 Permanent Redirect", HTML, headers=REDIRECT, framing="chunked"),
        "length",
    ),
    "308 chunked empty": (reply("308 Permanent Redirect", framing="chunked"), "length"),
    "308 over HTTP/1.0 up to the close": (
        reply(
            "308 Permanent Redirect", HTML, headers=REDIRECT, framing="close", version="HTTP/1.0"
        ),
        "close",
    ),
    "308 with Retry-After": (
        reply("308 Permanent Redirect", headers=(*REDIRECT, "Retry-After: 5")),
        "length",
    ),
    "308 with a Svix-shaped body": (reply("308 Permanent Redirect", SVIX_400), "length"),
    "400 HTML": (reply("400 Bad Request", HTML), "length"),
    "400 JSON of another shape": (reply("400 Bad Request", b'{"error": "bad"}'), "length"),
    "400 code not a string": (reply("400 Bad Request", b'{"code": 5, "detail": "x"}'), "length"),
    "400 without detail": (reply("400 Bad Request", b'{"code": "bad_request"}'), "length"),
    "400 JSON array": (reply("400 Bad Request", b'[{"code": "x", "detail": "y"}]'), "length"),
    "400 JSON null": (reply("400 Bad Request", b"null"), "length"),
    "400 empty": (reply("400 Bad Request"), "length"),
    "413 HTML from a proxy": (reply("413 Request Entity Too Large", HTML), "length"),
    "422 in the code and detail shape": (reply("422 Unprocessable Entity", SVIX_400), "length"),
    "422 with an empty list": (reply("422 Unprocessable Entity", b'{"detail": []}'), "length"),
    "422 with items of another shape": (
        reply("422 Unprocessable Entity", b'{"detail": [{"msg": "bad"}]}'),
        "length",
    ),
    "422 with a string detail": (reply("422 Unprocessable Entity", b'{"detail": "x"}'), "length"),
    "405 Svix-shaped": (
        reply("405 Method Not Allowed", b'{"code": "method_not_allowed", "detail": "x"}'),
        "length",
    ),
    "410 HTML": (reply("410 Gone", HTML), "length"),
    "418 HTML": (reply("418 I'm a teapot", HTML), "length"),
    "401 HTML from a proxy": (reply("401 Unauthorized", HTML), "length"),
    "404 HTML": (reply("404 Not Found", HTML), "length"),
}


@pytest.mark.parametrize("kind", sorted(SENDERS))
@pytest.mark.parametrize("case", sorted(DEPLOYMENT_PROBLEMS))
def test_an_answer_svix_never_gives_is_a_deployment_problem(odd_svix, kind: str, case: str):
    raw, framing = DEPLOYMENT_PROBLEMS[case]
    server = odd_svix(raw, framing)
    sender = SENDERS[kind](token="sk_test", server_url=url(server), timeout_seconds=2.0)
    with pytest.raises(NotSvixAnswer, match="SVIX_SERVER_URL") as failure:
        sender.send(message())
    assert isinstance(failure.value, ServiceRefused)  # kept and answered 503, never parked
    assert failure.value.status == int(raw.split(b" ")[1])
    assert len(server.requests) == 1  # refused at once, and no redirect followed


@pytest.mark.parametrize("kind", sorted(SENDERS))
def test_a_redirect_without_framing_on_an_open_connection_is_known_by_its_status(
    odd_svix, kind: str
):
    # No Content-Length, no chunked, connection kept open: the body never ends. The head says
    # enough; the wait is bounded by the timeout.
    server = odd_svix(reply("308 Permanent Redirect", headers=REDIRECT, framing="open"), "open")
    sender = SENDERS[kind](token="sk_test", server_url=url(server), timeout_seconds=0.5)
    with pytest.raises(NotSvixAnswer, match="SVIX_SERVER_URL"):
        sender.send(message())


EXPECTED: dict[str, tuple[bytes, type[SendFailure], int | None]] = {
    "400 from Svix": (reply("400 Bad Request", SVIX_400), PermanentFailure, 400),
    "413 from Svix": (reply("413 Payload Too Large", SVIX_413), PermanentFailure, 413),
    "422 from Svix": (reply("422 Unprocessable Entity", SVIX_422), PermanentFailure, 422),
    "401 from Svix": (
        reply("401 Unauthorized", b'{"code": "authentication_failed", "detail": "x"}'),
        ServiceRefused,
        401,
    ),
    "408 HTML": (reply("408 Request Timeout", HTML), TransientFailure, 408),
    "423 HTML": (reply("423 Locked", HTML), TransientFailure, 423),
    "425 HTML": (reply("425 Too Early", HTML), TransientFailure, 425),
    "502 HTML": (reply("502 Bad Gateway", HTML), TransientFailure, 502),
    "599 empty": (reply("599 Network Connect Timeout"), TransientFailure, 599),
    "429 HTML": (
        reply("429 Too Many Requests", HTML, headers=("Retry-After: 3",)),
        RateLimited,
        429,
    ),
    "204 to a POST": (reply("204 No Content"), TransientFailure, 204),
    "200 that is not a message": (reply("200 OK", b'{"status": "ok"}'), TransientFailure, 200),
}


@pytest.mark.parametrize("kind", sorted(SENDERS))
@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_what_other_answers_mean_is_the_same_for_both_senders(odd_svix, kind: str, case: str):
    raw, failure_class, status = EXPECTED[case]
    server = odd_svix(raw)
    sender = SENDERS[kind](token="sk_test", server_url=url(server), timeout_seconds=2.0)
    with pytest.raises(SendFailure) as failure:
        sender.send(message())
    assert type(failure.value) is failure_class
    assert failure.value.status == status
    if isinstance(failure.value, RateLimited):
        assert failure.value.retry_after == 3.0


@pytest.mark.parametrize("kind", sorted(SENDERS))
def test_the_relay_does_not_follow_a_redirect_to_svix(odd_svix, svix: Any, kind: str):
    # Even to the real thing: a redirected POST is the deployment's mistake, and following it
    # would send the token to whatever the Location names.
    location = f"Location: {svix.url}/api/v1/app/acme-mobile/msg?with_content=false"
    server = odd_svix(reply("307 Temporary Redirect", headers=(location,)))
    sender = SENDERS[kind](token=svix.token, server_url=url(server), timeout_seconds=2.0)
    with pytest.raises(NotSvixAnswer, match="redirect"):
        sender.send(message())
    assert len(server.requests) == 1
    assert svix.messages() == []


def events_of(response: Any) -> list[dict[str, Any]]:
    return list(response.get_json()["events"])


@pytest.mark.parametrize("kind", sorted(SENDERS))
@pytest.mark.parametrize(
    "raw",
    [
        reply("308 Permanent Redirect", HTML, headers=REDIRECT),
        reply("400 Bad Request", HTML),
        reply("405 Method Not Allowed", b'{"message": "no"}'),
    ],
    ids=["308 HTML", "400 HTML", "405 JSON"],
)
def test_through_the_function_the_event_is_kept_and_the_setting_named(
    make_relay: Any, odd_svix, capsys: Any, kind: str, raw: bytes
):
    server = odd_svix(raw)
    relay = make_relay(SVIX_SERVER_URL=url(server), RELAY_SVIX_CLIENT=kind, **ONE_ATTEMPT)
    capsys.readouterr()
    response = relay.post("/", data=json.dumps(push_envelope(USER)))
    assert response.status_code == 503, response.get_json()
    (event,) = events_of(response)
    assert event["outcome"] == "failed"
    assert "SVIX_SERVER_URL" in event["reason"]
    assert len(server.requests) == 1  # not retried within the request: it will not fix itself
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    (logged,) = [line for line in lines if line.get("event_id") == USER["id"]]
    assert logged["severity"] == "ERROR"
    assert "SVIX_SERVER_URL" in logged["message"]


@pytest.fixture
def parking(pubsub: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """A parking topic with a pull subscription, the relay's clients pointed at the emulator."""
    for name, value in pubsub.env().items():
        monkeypatch.setenv(name, value)
    topic = pubsub.create_topic(unique_name("parking"))
    return topic, pubsub.create_pull_subscription(unique_name("parking-sub"), topic)


@pytest.mark.parametrize("kind", sorted(SENDERS))
def test_with_a_parking_topic_a_redirect_parks_nothing(
    make_relay: Any, odd_svix, pubsub: Any, parking: tuple[str, str], kind: str
):
    topic, subscription = parking
    server = odd_svix(reply("308 Permanent Redirect", HTML, headers=REDIRECT))
    relay = make_relay(
        SVIX_SERVER_URL=url(server),
        RELAY_SVIX_CLIENT=kind,
        RELAY_PARKING_TOPIC=topic,
        **ONE_ATTEMPT,
    )
    response = relay.post("/", data=json.dumps(push_envelope(USER)))
    assert response.status_code == 503
    assert [e["outcome"] for e in events_of(response)] == ["failed"]
    # A poison event after it is parked, as a marker: parking is synchronous, so whatever the
    # redirected event had put on the topic would arrive with it.
    typeless = {"object": "event", "id": "evt_typeless_marker", "project": "acme-mobile"}
    marker = relay.post("/", data=json.dumps(push_envelope(typeless)))
    assert [e["outcome"] for e in events_of(marker)] == ["parked"]
    parked = pubsub.pull_all(subscription, quiet_seconds=0.5, timeout=20, min_messages=1)
    assert [m.attributes["relay_event_id"] for m in parked] == ["evt_typeless_marker"]
