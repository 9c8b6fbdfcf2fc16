"""The relay's HTTP/1.1 client against a scripted server that answers with exact bytes: framing
(Content-Length, chunked, to-close), interim answers, keep-alive, stale connections, timeouts,
TLS, and answers that are not HTTP."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from relay.svix.http11 import Http11Connection
from relay.svix.wire import ConnectionLost, ProtocolError, ResponseTimeout
from tests.support.fakes import private_key_pem, self_signed_certificate
from tests.support.servers import OK, Handler, ScriptedServer, answer, client


def in_pieces(raw: bytes, size: int = 3) -> Handler:
    def handle(conn: socket.socket, _request: bytes) -> None:
        for start in range(0, len(raw), size):
            conn.sendall(raw[start : start + size])

    return handle


def close_without_answer(conn: socket.socket, _request: bytes) -> None:
    conn.close()


@pytest.fixture
def serve() -> Iterator[Callable[..., ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(*handlers: Handler, tls: ssl.SSLContext | None = None) -> ScriptedServer:
        server = ScriptedServer(list(handlers), tls)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def test_content_length_and_the_request_it_sent(serve):
    server = serve(answer(OK))
    response = client(server).post("/api/v1/app/a/msg", {"idempotency-key": "k"}, b'{"x":1}')
    assert (response.status, response.body) == (202, b'{"id":"m1"}')
    assert response.headers["content-type"] == "application/json"
    request = server.requests[0]
    assert request.startswith(b"POST /api/v1/app/a/msg HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{server.port}\r\n".encode() in request
    assert b"Content-Length: 7\r\n" in request and b"idempotency-key: k\r\n" in request
    assert request.endswith(b'\r\n\r\n{"x":1}')


def test_keep_alive_reuses_one_connection(serve):
    server = serve(answer(OK))
    connection = client(server)
    for _ in range(3):
        assert connection.post("/", {}, b"{}").status == 202
    assert server.connections == 1


def test_chunked_with_extensions_and_trailers_in_small_pieces(serve):
    raw = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'4;ext=1\r\n{"id\r\n7\r\n":"m2"}\r\n0\r\nX-Trailer: yes\r\n\r\n'
    )
    server = serve(in_pieces(raw))
    connection = client(server)
    assert connection.post("/", {}, b"{}").body == b'{"id":"m2"}'
    assert connection.is_open


def test_interim_answers_are_skipped(serve):
    server = serve(answer(b"HTTP/1.1 100 Continue\r\n\r\n" + OK))
    assert client(server).post("/", {}, b"{}").status == 202


def test_a_body_up_to_the_close_ends_the_connection(serve):
    server = serve(answer(b"HTTP/1.1 502 Bad Gateway\r\n\r\n<html>502</html>", then_close=True))
    connection = client(server)
    response = connection.post("/", {}, b"{}")
    assert (response.status, response.body) == (502, b"<html>502</html>")
    assert not connection.is_open


def test_connection_close_and_http_1_0_are_not_reused(serve):
    server = serve(
        answer(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"),
        answer(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"),
    )
    connection = client(server)
    connection.post("/", {}, b"{}")
    assert not connection.is_open
    connection.post("/", {}, b"{}")
    assert not connection.is_open
    assert server.connections == 2


def test_headers_are_read_case_insensitively_and_retry_after_survives(serve):
    server = serve(
        answer(b"HTTP/1.1 429 Too Many\r\nRETRY-AFTER: 7\r\nContent-Length: 2\r\n\r\n{}")
    )
    response = client(server).post("/", {}, b"{}")
    assert (response.status, response.headers["retry-after"]) == (429, "7")


def test_a_close_before_any_answer_is_flagged_as_such(serve):
    server = serve(close_without_answer)
    with pytest.raises(ConnectionLost) as lost:
        client(server).post("/", {}, b"{}")
    assert lost.value.before_response


def test_a_close_in_the_middle_of_the_body_is_not_before_response(serve):
    server = serve(
        answer(b'HTTP/1.1 202 Accepted\r\nContent-Length: 50\r\n\r\n{"id"', then_close=True)
    )
    connection = client(server)
    with pytest.raises(ConnectionLost) as lost:
        connection.post("/", {}, b"{}")
    assert not lost.value.before_response
    assert not connection.is_open


def test_a_slow_answer_times_out_and_closes(serve):
    release = threading.Event()

    def slow(conn: socket.socket, _request: bytes) -> None:
        release.wait(5)

    server = serve(slow)
    connection = client(server, timeout=0.2)
    with pytest.raises(ResponseTimeout):
        connection.post("/", {}, b"{}")
    release.set()
    assert not connection.is_open


@pytest.mark.parametrize(
    "raw",
    [
        b"SMTP ready\r\n\r\n",
        b"HTTP/1.1 abc OK\r\n\r\n",
        "HTTP/1.1 \u00b202 OK\r\n\r\n".encode(),
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: lots\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXX0\r\n\r\n",
    ],
)
def test_what_is_not_http_is_a_protocol_error(serve, raw: bytes):
    server = serve(answer(raw, then_close=True))
    connection = client(server)
    with pytest.raises((ProtocolError, ConnectionLost)):
        connection.post("/", {}, b"{}")
    assert not connection.is_open


def test_an_endless_head_is_refused(serve):
    server = serve(answer(b"HTTP/1.1 200 OK\r\n" + b"X-Filler: " + b"a" * 70_000 + b"\r\n\r\n"))
    with pytest.raises(ProtocolError, match="too large"):
        client(server).post("/", {}, b"{}")


def test_nobody_listening_is_a_lost_connection():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ConnectionLost):
        Http11Connection("127.0.0.1", port, timeout=1).post("/", {}, b"{}")


def test_tls(serve, tmp_path: Path):
    cert, key = _self_signed(tmp_path)
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    server = serve(answer(OK), tls=server_tls)
    client_tls = ssl.create_default_context(cafile=str(cert))
    connection = Http11Connection("localhost", server.port, timeout=2, tls=client_tls)
    assert connection.post("/", {}, b"{}").status == 202
    untrusted = Http11Connection(
        "localhost", server.port, timeout=2, tls=ssl.create_default_context()
    )
    with pytest.raises(ConnectionLost):
        untrusted.post("/", {}, b"{}")


def _self_signed(folder: Path) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_text(
        self_signed_certificate(key, common_name="localhost", dns_names=("localhost",))
    )
    key_path.write_text(private_key_pem(key))
    return cert_path, key_path


def test_a_header_with_a_line_break_is_never_sent(serve):
    server = serve(answer(OK))
    with pytest.raises(ValueError, match="line break"):
        client(server).post("/", {"Authorization": "Bearer tok\nX-Evil: 1"}, b"{}")
    assert server.requests == []
