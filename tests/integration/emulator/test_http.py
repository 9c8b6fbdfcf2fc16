"""The HTTP surface below the SDK: routes, methods, bodies, validation shapes, keep-alive."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from svix_emulator.testing import RunningEmulator

VALID = {"eventType": "order.created", "payload": {"id": "src-1"}}


def test_health_needs_no_token(emulator: RunningEmulator) -> None:
    response = httpx.get(f"{emulator.url}/api/v1/health", trust_env=False)
    assert response.status_code == 204
    assert response.content == b""


def test_create_defaults_to_with_content(http: httpx.Client, app_uid: str) -> None:
    response = http.post(f"/api/v1/app/{app_uid}/msg", json=VALID)
    assert response.status_code == 202
    assert response.json()["payload"] == {"id": "src-1"}
    assert "eventId" not in response.json()


def test_trailing_slash_is_accepted(http: httpx.Client, app_uid: str) -> None:
    assert http.post(f"/api/v1/app/{app_uid}/msg/", json=VALID).status_code == 202
    assert http.get(f"/api/v1/app/{app_uid}/msg/").status_code == 200


@pytest.mark.parametrize(
    "path", ["/", "/api/v2/app", "/api/v1/app/x/endpoint", "/api/v1/app/x/msg/y/attempt"]
)
def test_unknown_route_is_404_json(http: httpx.Client, path: str) -> None:
    response = http.get(path)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/api/v1/app/x/msg", "GET, POST"),
        ("PUT", "/api/v1/app/x", "GET"),
        ("GET", "/api/v1/app", "POST"),
        ("POST", "/api/v1/health", "GET"),
        ("PATCH", "/api/v1/app/x/msg/y", "GET"),
    ],
)
def test_wrong_method_is_405_json(http: httpx.Client, method: str, path: str, allowed: str) -> None:
    response = http.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allowed
    assert response.json()["code"] == "method_not_allowed"


def test_unheard_of_method_is_405(emulator: RunningEmulator) -> None:
    response = httpx.request("BREW", f"{emulator.url}/api/v1/app/x/msg", trust_env=False)
    assert response.status_code == 405


def test_missing_token_is_401(emulator: RunningEmulator, app_uid: str) -> None:
    response = httpx.post(f"{emulator.url}/api/v1/app/{app_uid}/msg", json=VALID, trust_env=False)
    assert response.status_code == 401
    assert response.json() == {
        "code": "authentication_failed",
        "detail": "Incorrect authentication credentials.",
    }


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{",
        b"not json",
        b'{"eventType": "a", "payload": NaN}',
        b"\xff\xfe\x00",
        b"[" * 100_000,
    ],
)
def test_malformed_json_is_400(http: httpx.Client, app_uid: str, content: bytes) -> None:
    response = http.post(
        f"/api/v1/app/{app_uid}/msg", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ([], ["body"]),
        ({"payload": {}}, ["body", "eventType"]),
        ({"eventType": "a"}, ["body", "payload"]),
        ({"eventType": "a", "payload": []}, ["body", "payload"]),
        ({"eventType": "a b", "payload": {}}, ["body", "eventType"]),
        ({"eventType": "a\n", "payload": {}}, ["body", "eventType"]),
        ({"eventType": "a", "payload": {}, "eventId": 5}, ["body", "eventId"]),
        ({"eventType": "a", "payload": {}, "channels": [str(n) for n in range(11)]}, None),
        ({"eventType": "a", "payload": {}, "channels": []}, ["body", "channels"]),
        ({"eventType": "a", "payload": {}, "channels": ["a", "a"]}, ["body", "channels"]),
        ({"eventType": "a", "payload": {}, "channels": ["a b"]}, ["body", "channels", "[0]"]),
        ({"eventType": "a", "payload": {}, "tags": ["1", "2", "3", "4", "5", "6"]}, None),
        ({"eventType": "a", "payload": {}, "payloadRetentionPeriod": 91}, None),
        ({"eventType": "a", "payload": {}, "payloadRetentionPeriod": True}, None),
        ({"eventType": "a", "payload": {}, "deliverAt": "tomorrow"}, ["body", "deliverAt"]),
        ({"eventType": "a", "payload": {}, "application": {"uid": "x"}}, None),
    ],
)
def test_validation_errors_have_svix_shape(
    http: httpx.Client, app_uid: str, emulator: RunningEmulator, body: object, loc: list[str] | None
) -> None:
    response = http.post(f"/api/v1/app/{app_uid}/msg", json=body)

    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail
    assert all(set(item) == {"loc", "msg", "type"} for item in detail)
    if loc is not None:
        assert detail[0]["loc"] == loc
    assert emulator.messages() == []


def test_valid_optional_fields_are_echoed(http: httpx.Client, app_uid: str) -> None:
    body = {
        **VALID,
        "eventId": "e.1-_",
        "channels": ["project_1", "a:b+c"],
        "tags": ["t/1", "t#2"],
        "payloadRetentionPeriod": 30,
        "deliverAt": "2030-01-01T00:00:00Z",
        "transformationsParams": {"x": 1},
        "application": None,
    }
    out = http.post(f"/api/v1/app/{app_uid}/msg", json=body).json()
    assert out["channels"] == ["project_1", "a:b+c"]
    assert out["tags"] == ["t/1", "t#2"]
    assert out["deliverAt"] == "2030-01-01T00:00:00Z"


@pytest.mark.parametrize("app_id", ["a%2Fb", "a%3Ab", "%C3%A9", "x" * 257])
def test_bad_app_id_in_path_is_422(http: httpx.Client, app_id: str) -> None:
    response = http.post(f"/api/v1/app/{app_id}/msg", json=VALID)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "app_id"]


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=251",
        "limit=ten",
        "iterator=msg_x",
        "before=2026-01-01",
        "after=2026-01-01T00:00:00",
        "with_content=yes",
        "event_types=a%20b",
        "channel=a%20b",
    ],
)
def test_bad_list_query_is_422(http: httpx.Client, app_uid: str, query: str) -> None:
    assert http.get(f"/api/v1/app/{app_uid}/msg?{query}").status_code == 422


def test_repeated_event_types_filter(http: httpx.Client, app_uid: str) -> None:
    for kind in ("a", "b", "c"):
        http.post(f"/api/v1/app/{app_uid}/msg", json={"eventType": kind, "payload": {}})
    listed = http.get(f"/api/v1/app/{app_uid}/msg?event_types=a&event_types=c").json()
    assert [m["eventType"] for m in listed["data"]] == ["c", "a"]


def test_chunked_body_is_read(http: httpx.Client, app_uid: str) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"eventType": "a", '
        yield b'"payload": {"id": "chunked"}}'

    response = http.post(f"/api/v1/app/{app_uid}/msg", content=chunks())
    assert response.status_code == 202
    assert response.json()["payload"] == {"id": "chunked"}


def test_oversized_body_is_refused_unread(emulator: RunningEmulator) -> None:
    parts = urlsplit(emulator.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/v1/app/x/msg HTTP/1.1\r\nHost: e\r\n"
            b"Authorization: Bearer " + emulator.token.encode() + b"\r\n"
            b"Content-Length: 100000000\r\n\r\n"
        )
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"Connection: close" in answer


def test_large_body_is_413_and_the_connection_stays_usable(
    http: httpx.Client, app_uid: str
) -> None:
    huge = b'{"eventType": "a", "payload": {"b": "' + b"x" * (10 * 1024 * 1024) + b'"}}'
    response = http.post(f"/api/v1/app/{app_uid}/msg", content=huge)
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert http.get(f"/api/v1/app/{app_uid}").status_code == 200


def test_malformed_request_line_gets_json(emulator: RunningEmulator) -> None:
    parts = urlsplit(emulator.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(b"GARBAGE\r\n\r\n")
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert b'"code":"bad_request"' in answer


def test_keep_alive_serves_many_requests_on_one_connection(
    http: httpx.Client, app_uid: str
) -> None:
    ports = set()
    for n in range(50):
        response = http.post(f"/api/v1/app/{app_uid}/msg", json={**VALID, "eventId": f"e{n}"})
        assert response.status_code == 202
        stream = response.extensions["network_stream"]
        ports.add(stream.get_extra_info("client_addr"))
    assert len(ports) == 1


def test_head_gets_no_body(emulator: RunningEmulator) -> None:
    with httpx.Client(base_url=emulator.url, trust_env=False) as client:
        response = client.head("/api/v1/health")
        assert response.status_code == 405
        assert response.content == b""
        assert client.get("/api/v1/health").status_code == 204
