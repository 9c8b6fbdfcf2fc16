"""One deadline for a whole exchange with Svix, and framing a server can get wrong: a server that
dribbles bytes, answers with endless interim answers or never ends an unframed body must not
hold a request past its timeout; odd chunk sizes and lengths are protocol errors, not hangs."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from relay.svix.wire import ConnectionLost, ProtocolError, ResponseTimeout
from tests.support.servers import OK, Handler, ScriptedServer, answer, client

# The old per-read timeout let each of these servers hold a 0.3 s request for 4 s or more.
TIMEOUT = 0.3
BOUND = 1.5


@pytest.fixture
def serve() -> Iterator[Callable[..., ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(*handlers: Handler) -> ScriptedServer:
        servers.append(ScriptedServer(list(handlers)))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def stopping() -> Iterator[threading.Event]:
    """Set at the end of the test: every dribbling handler stops at once."""
    stop = threading.Event()
    yield stop
    stop.set()


def dribble(raw: bytes, stop: threading.Event, *, every: float = 0.25) -> Handler:
    """Sends `raw` one byte at a time, `every` seconds apart; ends by itself after the last
    byte, when the client hangs up, or when the test ends."""

    def handle(conn: socket.socket, _request: bytes) -> None:
        for index in range(len(raw)):
            if stop.wait(every):
                return
            conn.sendall(raw[index : index + 1])

    return handle


def timed(call: Callable[[], object]) -> tuple[BaseException | None, float]:
    started = time.monotonic()
    try:
        call()
    except (ConnectionLost, ProtocolError, ResponseTimeout) as exc:  # asserted by the caller
        return exc, time.monotonic() - started
    return None, time.monotonic() - started


@pytest.mark.parametrize("part", ["body", "head"])
def test_a_dribbling_server_cannot_hold_a_request_past_its_timeout(
    serve, stopping: threading.Event, part: str
):
    head, body = b"HTTP/1.1 202 Accepted\r\nContent-Length: 16\r\n\r\n", b'{"id":"msg_001"}'
    # 16 bytes at 0.25 s: 4 s, where every single read is well inside the 0.3 s timeout.
    slow_head = dribble(head[:16], stopping)
    slow_body = dribble(body, stopping)

    def handler(conn: socket.socket, request: bytes) -> None:
        if part == "head":
            slow_head(conn, request)
        else:
            conn.sendall(head)
            slow_body(conn, request)

    server = serve(handler)
    connection = client(server, timeout=TIMEOUT)
    failure, took = timed(lambda: connection.post("/", {}, b"{}"))
    assert isinstance(failure, ResponseTimeout), failure
    assert took < BOUND
    assert not connection.is_open


def test_endless_interim_answers_cannot_hold_a_request(serve, stopping: threading.Event):
    def interim_forever(conn: socket.socket, _request: bytes) -> None:
        for _ in range(40):  # 40 times 0.1 s: the old code waited all of it, then read the 202
            if stopping.wait(0.1):
                return
            conn.sendall(b"HTTP/1.1 102 Processing\r\n\r\n")
        conn.sendall(OK)

    server = serve(interim_forever)
    failure, took = timed(lambda: client(server, timeout=TIMEOUT).post("/", {}, b"{}"))
    assert isinstance(failure, ResponseTimeout), failure
    assert took < BOUND


def test_an_unframed_answer_on_an_open_connection_ends_at_the_deadline_with_its_head(
    serve, stopping: threading.Event
):
    # A redirect with neither Content-Length nor chunked, and a server that keeps the connection
    # open: the body runs to a close that never comes. The head is still worth having.
    def redirect_and_wait(conn: socket.socket, _request: bytes) -> None:
        conn.sendall(b"HTTP/1.1 308 Permanent Redirect\r\nLocation: https://elsewhere/\r\n\r\n")
        stopping.wait(10)

    server = serve(redirect_and_wait)
    failure, took = timed(lambda: client(server, timeout=TIMEOUT).post("/", {}, b"{}"))
    assert isinstance(failure, ResponseTimeout), failure
    assert took < BOUND
    assert failure.head is not None
    assert (failure.head.status, failure.head.headers["location"]) == (308, "https://elsewhere/")


def test_a_body_cut_short_keeps_the_head_and_a_silent_server_gives_none(serve):
    server = serve(
        answer(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 40\r\n\r\n<html>", then_close=True)
    )
    with pytest.raises(ConnectionLost) as lost:
        client(server).post("/", {}, b"{}")
    assert lost.value.head is not None and lost.value.head.status == 400
    assert lost.value.head.body == b""  # what arrived of a cut body is not an answer
    silent = serve(lambda conn, request: conn.close())
    with pytest.raises(ConnectionLost) as nothing:
        client(silent).post("/", {}, b"{}")
    assert nothing.value.head is None


CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize(
    "size_line",
    [
        b"-5",  # int(..., 16) takes it
        b"-0",
        b"+5",
        b"0x5",
        b"1_0",
        b"",
        b" ",
        b"5 5",
        b"\xd9\xa5",  # a digit outside ASCII
        b"1" + b"0" * 16,  # more than 64 bits
        b";ext=1",
    ],
)
def test_odd_chunk_sizes_are_protocol_errors(serve, size_line: bytes):
    # Nothing after the size line, on a connection left open: a size taken for a number here
    # waits for bytes that never come.
    server = serve(answer(CHUNKED + size_line + b"\r\n"))
    connection = client(server, timeout=TIMEOUT)
    failure, took = timed(lambda: connection.post("/", {}, b"{}"))
    assert isinstance(failure, ProtocolError), failure
    assert took < BOUND
    assert not connection.is_open


@pytest.mark.parametrize("size_line", [b"5", b"05", b"5 ", b"5\t;ext=1", b"5;ext", b"00000005"])
def test_chunk_sizes_the_rfc_allows_are_read(serve, size_line: bytes):
    server = serve(answer(CHUNKED + size_line + b"\r\nhello\r\n0\r\n\r\n"))
    assert client(server).post("/", {}, b"{}").body == b"hello"


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1_0\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n" + OK,
        b"HTTP/1.1 099 Too Early For HTTP\r\nContent-Length: 0\r\n\r\n",
    ],
)
def test_framing_that_the_relay_never_asks_for_is_a_protocol_error(serve, raw: bytes):
    server = serve(answer(raw))
    with pytest.raises(ProtocolError):
        client(server, timeout=TIMEOUT).post("/", {}, b"{}")


def test_each_request_gets_its_own_deadline_on_a_kept_connection(serve):
    server: ScriptedServer = serve(answer(OK))
    connection = client(server, timeout=TIMEOUT)
    for _ in range(3):
        assert connection.post("/", {}, b"{}").status == 202
        time.sleep(TIMEOUT / 2)  # idle time between requests is not the next request's time
    assert server.connections == 1


@pytest.mark.parametrize("status", [b"204 No Content", b"304 Not Modified"])
def test_a_bodiless_status_that_announces_a_body_does_not_keep_the_connection(serve, status: bytes):
    # Such an answer has no body whatever its head says; bytes the server may still send would
    # be read as the head of the next answer on a kept connection.
    server = serve(answer(b"HTTP/1.1 " + status + b"\r\nContent-Length: 2\r\n\r\n"))
    connection = client(server)
    assert connection.post("/", {}, b"{}").body == b""
    assert not connection.is_open
    plain = serve(answer(b"HTTP/1.1 " + status + b"\r\n\r\n"))
    kept = client(plain)
    kept.post("/", {}, b"{}")
    assert kept.is_open
