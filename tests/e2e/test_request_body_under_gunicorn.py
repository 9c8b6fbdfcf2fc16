"""The request body as the platform's server hands it over: gunicorn bounds the body itself
(`wsgi.input_terminated`), chunked or not, and the relay reads that stream directly. The
integration tests' Flask client never takes this path, so it is held here, under gunicorn."""

from __future__ import annotations

import base64
import http.client
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from svix_emulator.testing import RunningEmulator
from tests.support import own_events
from tests.support.e2e import RelayProcess, relay_environment
from tests.support.pubsub_emulator import free_port

LIMIT = 4096  # RELAY_MAX_REQUEST_BYTES for these tests: small, so that bodies pass it cheaply


@pytest.fixture(scope="module")
def relay(
    svix_server: RunningEmulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RelayProcess]:
    process = RelayProcess(
        port=free_port(),
        env=relay_environment(
            {
                "SVIX_AUTH_TOKEN": svix_server.token,
                "SVIX_SERVER_URL": svix_server.url,
                "RELAY_MAX_REQUEST_BYTES": str(LIMIT),
                "RELAY_LOG_FORMAT": "json",
            }
        ),
        log_dir=Path(tmp_path_factory.mktemp("relay-logs")),
    )
    try:
        process.start()
        yield process
    finally:
        process.stop()


def push(event_id: str, padding: int = 0) -> bytes:
    event = {**own_events()["user-created"], "id": event_id, "padding": "x" * padding}
    data = base64.b64encode(json.dumps(event).encode()).decode()
    return json.dumps(
        {"message": {"data": data, "messageId": event_id}, "subscription": "s"}
    ).encode()


def post(relay: RelayProcess, body: bytes, *, chunked: bool) -> tuple[int, dict[str, object]]:
    connection = http.client.HTTPConnection("127.0.0.1", relay.port, timeout=30)
    try:
        headers = {"Content-Type": "application/json"}
        if chunked:  # no Content-Length: the server decodes the chunks and ends the stream
            pieces = iter([body[i : i + 1000] for i in range(0, len(body), 1000)])
            connection.request("POST", "/", body=pieces, headers=headers, encode_chunked=True)
        else:
            connection.request("POST", "/", body=body, headers=headers)
        response = connection.getresponse()
        assert response.getheader("Content-Type") == "application/json"
        return response.status, json.loads(response.read())
    finally:
        connection.close()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_under_the_limit_is_read_whole_and_delivered(relay, svix, chunked):
    body = push(f"evt_gunicorn_body_{chunked}", padding=1500)
    assert len(body) < LIMIT
    status, answer = post(relay, body, chunked=chunked)
    assert status == 200, answer
    assert answer["counts"] == {"delivered": 1}
    (message,) = svix.messages()
    assert message["payload"]["padding"] == "x" * 1500  # every byte of the body was read


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_over_the_limit_is_refused_413_and_nothing_is_sent(relay, svix, chunked):
    body = push(f"evt_gunicorn_large_{chunked}", padding=LIMIT)
    assert len(body) > LIMIT
    status, answer = post(relay, body, chunked=chunked)
    assert status == 413, answer
    assert f"over the limit of {LIMIT} bytes" in str(answer["error"])
    assert svix.messages() == []
