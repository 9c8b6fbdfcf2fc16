"""Requests and replies as the handlers see them, free of the HTTP server."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote

from svix_emulator.validation import ErrorItem

JSON = "application/json"


@dataclass(slots=True)
class Request:
    method: str
    target: str  # path and query as sent
    headers: dict[str, str]  # lower-case names
    body: bytes = b""
    path: str = field(init=False)
    segments: list[str] = field(init=False)
    query: dict[str, list[str]] = field(init=False)

    def __post_init__(self) -> None:
        path, _, query = self.target.partition("?")
        self.path = path
        # Split before decoding so an encoded `/` stays inside its segment (and fails the id check).
        parts = path.split("/")[1:]
        if len(parts) > 1 and parts[-1] == "":
            parts.pop()
        self.segments = [unquote(part, errors="replace") for part in parts]
        self.query = parse_qs(query, keep_blank_values=True, errors="replace")

    def last(self, name: str) -> str | None:
        """A query parameter's last value: a repeated one counts once, as the last."""
        values = self.query.get(name)
        return values[-1] if values else None


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes = b""
    content_type: str = JSON
    headers: tuple[tuple[str, str], ...] = ()


class Drop:
    """Close the connection without answering."""


DROP = Drop()

Outcome = Reply | Drop


def json_reply(status: int, data: object, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    # ASCII escapes keep any string Python accepted (even a lone surrogate) encodable.
    return Reply(status, json.dumps(data, separators=(",", ":")).encode(), JSON, headers)


def http_error(
    status: int, code: str, detail: str, headers: tuple[tuple[str, str], ...] = ()
) -> Reply:
    """Svix's `HttpErrorOut`."""
    return json_reply(status, {"code": code, "detail": detail}, headers)


def validation_error(items: list[ErrorItem]) -> Reply:
    """Svix's `HTTPValidationError`."""
    return json_reply(422, {"detail": items})


def not_found(detail: str = "Entity not found") -> Reply:
    return http_error(404, "not_found", detail)


def bad_request(detail: str) -> Reply:
    return http_error(400, "bad_request", detail)


def method_not_allowed(allowed: tuple[str, ...]) -> Reply:
    return http_error(
        405,
        "method_not_allowed",
        f"Method not allowed; use {', '.join(allowed)}",
        headers=(("Allow", ", ".join(allowed)),),
    )


def parse_json(body: bytes) -> tuple[object, Reply | None]:
    """The body as JSON, or a 400 saying why it is not."""
    if not body:
        return None, bad_request("Request body is empty; expected a JSON object")
    try:
        return json.loads(body, parse_constant=_reject_constant), None
    except (ValueError, RecursionError) as exc:
        return None, bad_request(f"Request body is not valid JSON: {exc}")


def _reject_constant(name: str) -> object:
    # Python reads NaN and Infinity; JSON (and Svix) does not.
    raise ValueError(f"{name} is not JSON")
