"""Small HTTP servers of our own for tests: scripted answers, and a proxy whose look-ups fail."""

from __future__ import annotations

import re
import socket
import ssl
import threading
from collections.abc import Callable

from relay.svix.http11 import Http11Connection
from tests.support.svix_proxy import Answer, Call, SvixProxy

# A handler gets the accepted socket and the request bytes it read; it writes what it likes.
Handler = Callable[[socket.socket, bytes], None]


class ScriptedServer:
    """Accepts connections on a free port; each request on any connection goes to the next
    handler of the script (the last one repeats)."""

    def __init__(self, handlers: list[Handler], tls: ssl.SSLContext | None = None) -> None:
        self.handlers = handlers
        self.requests: list[bytes] = []
        self.connections = 0
        self._tls = tls
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            if self._tls is not None:
                try:
                    conn = self._tls.wrap_socket(conn, server_side=True)
                except (ssl.SSLError, OSError):
                    conn.close()
                    continue
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()

    def _connection(self, conn: socket.socket) -> None:
        with conn:
            while True:
                request = _read_request(conn)
                if request is None:
                    return
                self.requests.append(request)
                index = min(len(self.requests) - 1, len(self.handlers) - 1)
                try:
                    self.handlers[index](conn, request)
                except OSError:
                    return
                if conn.fileno() == -1:
                    return

    def close(self) -> None:
        self._listener.close()


def answer(raw: bytes, *, then_close: bool = False) -> Handler:
    def handle(conn: socket.socket, _request: bytes) -> None:
        conn.sendall(raw)
        if then_close:
            conn.close()

    return handle


OK = (
    b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n"
    b'{"id":"m1"}'
)


def client(server: ScriptedServer, timeout: float = 2.0, **kwargs: object) -> Http11Connection:
    return Http11Connection("127.0.0.1", server.port, timeout=timeout, **kwargs)  # type: ignore[arg-type]


class LookupsFail(SvixProxy):
    """A proxy in front of the emulator that answers 500 to every look-up of a single message
    (GET /api/v1/app/{app}/msg/{id}) and passes everything else through."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream, refuse=_fail_look_up)

    @property
    def look_ups(self) -> int:
        return self.refused

    def close(self) -> None:
        self.__exit__()


def _fail_look_up(call: Call) -> Answer | None:
    if call.method == "GET" and LOOK_UP.match(call.path):
        return Answer(500, b'{"code":"server_error","detail":"Internal Server Error"}')
    return None


def _read_request(conn: socket.socket) -> bytes | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,  # a GET without a body need not say so
    )
    while len(body) < length:
        body += conn.recv(65536)
    return data


LOOK_UP = re.compile(r"^/api/v1/app/[^/]+/msg/[^/?]+")
