"""The HTTP/1.1 keep-alive server around the API and control handlers."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import sys
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from svix_emulator.api import handle_api
from svix_emulator.control import handle_control
from svix_emulator.state import State
from svix_emulator.wire import Drop, Reply, Request, http_error

# Bodies above this get a 413 without being parsed (the 1 MiB payload rule gets its 413 from the
# API); up to the second limit they are read and dropped so the connection stays usable, beyond it
# the connection is closed unread.
MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_DRAINED_BYTES = 64 * 1024 * 1024


class _BodyError(Exception):
    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


class EmulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    # Room for a benchmark's burst of new connections.
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], state: State) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.state = state
        super().__init__(address, Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, a DNS lookup that can stall start-up.
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "svix-emulator"
    sys_version = ""
    # Replies go out in one write, but small ones must not wait for Nagle's algorithm.
    disable_nagle_algorithm = True
    server: EmulatorServer

    def __getattr__(self, name: str) -> Any:
        # Every method, known or not, goes through the router, which answers 405 or 404 in JSON.
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.state.settings.verbose:
            super().log_message(format, *args)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Malformed requests, caught by the base class before routing, also get JSON."""
        self.close_connection = True
        self._write(http_error(code, "bad_request", message or _phrase(code)), head_only=False)

    def _serve(self) -> None:
        state = self.server.state
        try:
            body = self._read_body()
            request = Request(
                self.command,
                self.path,
                {name.lower(): value for name, value in self.headers.items()},
                body,
            )
            if request.segments and request.segments[0] == "_emulator":
                outcome: Reply | Drop = handle_control(state, request)
            else:
                outcome = handle_api(state, request)
        except _BodyError as exc:
            outcome = exc.reply
        except Exception:  # noqa: BLE001 - any bug must still answer, never hang the client
            traceback.print_exc(file=sys.stderr)
            outcome = http_error(500, "server_error", "Internal Server Error")
        if isinstance(outcome, Drop):
            self._drop()
        else:
            self._write(outcome, head_only=self.command == "HEAD")

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        raw_length = self.headers.get("Content-Length")
        if raw_length is None:
            return b""
        try:
            length = int(raw_length)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            raise _BodyError(http_error(400, "bad_request", "Invalid Content-Length"))
        if length > MAX_DRAINED_BYTES:
            self.close_connection = True
            raise _BodyError(_too_large())
        if length > MAX_BODY_BYTES:
            while length > 0:
                chunk = self.rfile.read(min(length, 1 << 20))
                if not chunk:
                    break
                length -= len(chunk)
            raise _BodyError(_too_large())
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                self.close_connection = True
                raise _BodyError(http_error(400, "bad_request", "Invalid chunked body")) from None
            if size == 0:
                while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            total += size
            if total > MAX_BODY_BYTES:
                self.close_connection = True
                raise _BodyError(_too_large())
            chunks.append(self.rfile.read(size))
            self.rfile.readline(8)

    def _write(self, reply: Reply, *, head_only: bool) -> None:
        lines = [
            f"HTTP/1.1 {reply.status} {_phrase(reply.status)}",
            f"Server: {self.server_version}",
        ]
        if reply.status != 204:
            lines.append(f"Content-Length: {len(reply.body)}")
        if reply.content_type:
            lines.append(f"Content-Type: {reply.content_type}")
        lines.extend(f"{name}: {value}" for name, value in reply.headers)
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            self.wfile.write(head if head_only or reply.status == 204 else head + reply.body)
        except OSError:
            self.close_connection = True  # the client went away; nothing left to tell it
        self.log_request(reply.status, len(reply.body))

    def _drop(self) -> None:
        """Closes the connection with no answer at all, as a crashed proxy or server would."""
        self.close_connection = True
        self.log_message('"%s" dropped', self.requestline)
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _too_large() -> Reply:
    detail = f"Request body larger than {MAX_BODY_BYTES} bytes"
    return http_error(413, "payload_too_large", detail)


def make_server(host: str, port: int, state: State) -> EmulatorServer:
    return EmulatorServer((host, port), state)
