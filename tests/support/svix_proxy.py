"""A proxy of our own in front of the Svix emulator, for what the emulator does not do itself on
the event-type endpoints: answer a call with a 429 or a 5xx, give an answer back in another form
than Svix's, or let something happen in Svix between two calls of the relay."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Call:
    method: str
    path: str  # with the query
    body: bytes | None
    at: float = field(default_factory=time.monotonic)  # when it reached the proxy

    @property
    def route(self) -> str:
        return urlsplit(self.path).path


@dataclass(frozen=True)
class Answer:
    """What the proxy answers instead of the emulator."""

    status: int
    body: bytes = b'{"code":"rate_limit","detail":"Too many requests"}'
    headers: dict[str, str] = field(default_factory=dict)


# Each gets the call and decides: an answer of the proxy's own (None: pass it on), the emulator's
# answer rewritten (its decoded JSON in, the JSON to send out), or something done before it goes on.
Refuse = Callable[[Call], Answer | None]
Rewrite = Callable[[Call, Any], Any]
Before = Callable[[Call], None]


def rate_limited(count: int, retry_after: str | None = "1") -> Refuse:
    """The first `count` calls answered 429, with `Retry-After` when given."""
    state = {"left": count}
    lock = threading.Lock()

    def refuse(_call: Call) -> Answer | None:
        with lock:
            if state["left"] <= 0:
                return None
            state["left"] -= 1
        headers = {} if retry_after is None else {"retry-after": retry_after}
        return Answer(429, headers=headers)

    return refuse


class SvixProxy:
    """Passes every call on to `upstream` unless `refuse` answers it; `rewrite` changes the JSON
    of the emulator's 2xx answers; `before` runs just before a call goes on. Counts the calls."""

    def __init__(
        self,
        upstream: str,
        *,
        refuse: Refuse | None = None,
        rewrite: Rewrite | None = None,
        before: Before | None = None,
    ) -> None:
        target = urlsplit(upstream)
        host, port = target.hostname or "127.0.0.1", target.port or 80
        self.calls: list[Call] = []
        self.refused = 0
        proxy = self
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                call = Call(self.command, self.path, self.rfile.read(length) if length else None)
                with lock:
                    proxy.calls.append(call)
                answer = refuse(call) if refuse is not None else None
                if answer is not None:
                    with lock:
                        proxy.refused += 1
                    status, body, headers = answer.status, answer.body, answer.headers
                else:
                    if before is not None:
                        before(call)
                    status, body = _forward(host, port, call, dict(self.headers.items()))
                    if rewrite is not None and 200 <= status < 300 and body:
                        body = json.dumps(rewrite(call, json.loads(body))).encode()
                    headers = {}
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def calls_of(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    def created(self) -> list[str]:
        """The names of the event types POSTed, in order."""
        return [json.loads(call.body or b"{}").get("name") for call in self.calls_of("POST")]

    def __enter__(self) -> SvixProxy:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)


def _forward(host: str, port: int, call: Call, headers: dict[str, str]) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(host, port, timeout=10)
    try:
        forwarded = {k: v for k, v in headers.items() if k.lower() != "host"}
        connection.request(call.method, call.path, call.body, forwarded)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()
