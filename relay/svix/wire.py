"""What the HTTP/1.1 client hands back: a response, or why there is none."""

from __future__ import annotations

from dataclasses import dataclass

from relay.core.errors import RelayError


class ConnectionLost(RelayError):
    """The connection failed or closed before a whole response arrived. `before_response` says
    that no byte of the response came: on a reused connection that is a stale keep-alive, and
    sending again on a new connection is the expected cure. `head` is the response's status and
    headers (with an empty body) when they had arrived."""

    def __init__(self, reason: str, *, before_response: bool, head: Response | None = None) -> None:
        super().__init__(reason)
        self.before_response = before_response
        self.head = head


class ResponseTimeout(RelayError):
    """No (whole) answer within the timeout; `head` as for ConnectionLost."""

    def __init__(self, reason: str, *, head: Response | None = None) -> None:
        super().__init__(reason)
        self.head = head


class ProtocolError(RelayError):
    """The bytes that came back are not an HTTP/1.1 response we can read."""


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # lower-case names; a repeated header keeps its last value
    body: bytes
