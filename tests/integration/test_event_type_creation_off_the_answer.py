"""Creating the event types the catalogue lacks costs the request nothing: the answer and the
rest of the batch never wait for Svix's event-type API, however slow, and a burst of new types
asks Svix once per type, through the emulator with both senders."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from relay.bootstrap import build_relay
from relay.core.outcomes import Outcome
from relay.settings import load_settings
from relay.svix.direct import DirectSvixSender
from relay.svix.sdk import SdkSvixSender
from tests.integration.test_event_types_runtime import (
    deliver,
    event,
    make_service,
    relay_env,
    settled,
)
from tests.support.servers import ScriptedServer

__all__ = ["make_service", "relay_env"]  # the fixtures, used by name

NOT_FOUND = b'{"code":"not_found","detail":"Entity not found"}'


def _answer(status: str, body: bytes) -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
    return head.encode() + b"\r\n\r\n" + body


class HeldEventTypeApi:
    """Svix's event-type API, answering nothing until the test lets it: then 404 to every
    look-up and 201 to every create. Counts the look-ups and creates it was asked for."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.server = ScriptedServer([self._answer])
        self.url = f"http://127.0.0.1:{self.server.port}"

    def _answer(self, conn: socket.socket, request: bytes) -> None:
        self.release.wait(30)
        if request.startswith(b"GET "):
            conn.sendall(_answer("404 Not Found", NOT_FOUND))
        else:
            conn.sendall(_answer("201 Created", b'{"name":"x"}'))

    def asked(self, method: bytes) -> list[bytes]:
        return [r.split(b" ", 2)[1] for r in self.server.requests if r.startswith(method + b" ")]

    def close(self) -> None:
        self.release.set()
        self.server.close()


@pytest.fixture
def held_api() -> Iterator[HeldEventTypeApi]:
    api = HeldEventTypeApi()
    yield api
    api.close()


@pytest.mark.parametrize("new_types", [1, 24], ids=["one new type", "a batch of 24 new types"])
def test_a_slow_event_type_api_holds_up_neither_the_answer_nor_the_batch(
    relay_env: dict[str, str], svix: Any, held_api: HeldEventTypeApi, new_types: int
):
    # Each event-type call may take up to the Svix timeout (30 s here): done on the request
    # thread, a new type would hold the answer that long, twice, and each held send thread
    # would leave the rest of the batch waiting until the time budget ran out.
    settings = load_settings(relay_env)
    kind = DirectSvixSender if settings.svix_client == "direct" else SdkSvixSender
    registry = kind(token=svix.token, server_url=held_api.url, timeout_seconds=30)
    relay = build_relay(settings, event_types=registry)
    events = [event(n, f"sim.kind{n}") for n in range(new_types)]
    answered: list[list[Any]] = []
    handling = threading.Thread(
        target=lambda: answered.append(deliver(relay, *events, settle=False))
    )
    try:
        handling.start()
        handling.join(5)
        assert not handling.is_alive(), "the answer waited for Svix's event-type API"
        [results] = answered
        assert [r.outcome for r in results] == [Outcome.DELIVERED] * new_types
        assert len(svix.messages()) == new_types
        held_api.release.set()
        settled(relay)
    finally:
        held_api.release.set()
        handling.join(30)
        relay.close()
    # Still asked, once per type, after the answer.
    names = sorted(f"/api/v1/event-type/sim.kind{n}".encode() for n in range(new_types))
    assert sorted(held_api.asked(b"GET")) == names
    assert len(held_api.asked(b"POST")) == new_types


def test_a_burst_of_new_types_asks_svix_once_per_type(make_service: Any, svix: Any):
    # Twelve new types, ten events each, shuffled over the send threads of one batch.
    events = [event(n, f"sim.burst{n % 12}") for n in range(120)]
    relay = make_service()
    results = deliver(relay, *events)
    assert {r.outcome for r in results} == {Outcome.DELIVERED}
    stats = svix.stats()
    # One look-up each (404: Svix lacks them), one create each, and no create that met a type
    # another thread had just made (409).
    assert stats["not_found"] == 12
    assert stats["conflicts"] == 0
    assert stats["requests"] == 120 + 12 + 12
    assert sorted(t["name"] for t in svix.event_types()) == sorted(
        f"sim.burst{n}" for n in range(12)
    )
    requests = stats["requests"]
    deliver(relay, *(event(200 + n, f"sim.burst{n}") for n in range(12)))
    assert svix.stats()["requests"] == requests + 12  # the messages, and nothing else


@pytest.mark.parametrize("name", ["-_.x", "x..", "A-b_C.9.-", "a" * 256])
def test_any_name_svix_takes_is_created_under_that_name(make_service: Any, svix: Any, name: str):
    [result] = deliver(make_service(), event(1, name))
    assert result.outcome is Outcome.DELIVERED
    assert [t["name"] for t in svix.event_types()] == [name]
