"""Clients of the Svix emulator that record every exchange, for checking against Svix's spec."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote

import httpx
from svix import Svix, SvixOptions

from svix_emulator.spec import SPEC_PATH, SpecChecker
from svix_emulator.testing import RunningEmulator

SPEC_ABSENT_REASON = f"../shared is absent: no Svix OpenAPI spec at {SPEC_PATH}"


@dataclass(frozen=True)
class Exchange:
    method: str
    raw_path: str
    query: dict[str, list[str]]
    request_body: bytes | None  # None when streamed, so not seen
    status: int
    content_type: str
    body: bytes


def record_into(exchanges: list[Exchange]) -> Callable[[httpx.Response], None]:
    def hook(response: httpx.Response) -> None:
        response.read()
        request = response.request
        try:
            request_body: bytes | None = request.content
        except httpx.RequestNotRead:
            request_body = None
        exchanges.append(
            Exchange(
                method=request.method,
                raw_path=request.url.raw_path.decode().partition("?")[0],
                query=parse_qs(request.url.query.decode(), keep_blank_values=True),
                request_body=request_body,
                status=response.status_code,
                content_type=response.headers.get("content-type", ""),
                body=response.content,
            )
        )

    return hook


def spec_problems(checker: SpecChecker, exchanges: list[Exchange]) -> list[str]:
    """Every answer must be documented; a request valid per the spec must not be refused as
    invalid, and an invalid one must be refused."""
    problems: list[str] = []
    for ex in exchanges:
        found = checker.operation(ex.method, ex.raw_path)
        # 5xx come only from injected faults, which the spec cannot document.
        if found is None or ex.status >= 500:
            continue
        template, raw_params = found
        params = {name: unquote(value) for name, value in raw_params.items()}
        has_body = bool(ex.request_body)
        try:
            body = json.loads(ex.request_body) if ex.request_body else None
            request_problems = checker.request_problems(
                ex.method, template, params, ex.query, body, has_body
            )
        except (ValueError, RecursionError):
            request_problems = ["body is not JSON"]
        if ex.request_body is None:
            request_problems = []
        where = f"{ex.method} {ex.raw_path} -> {ex.status}"
        problems += [
            f"{where}: {p}"
            for p in checker.response_problems(
                ex.method, template, ex.status, ex.content_type, ex.body
            )
        ]
        semantic = _refused_by_state(ex.status, ex.body)
        if not request_problems and ex.status in (400, 422) and not semantic:
            problems.append(f"{where}: a request valid per the spec was refused: {ex.body[:300]!r}")
        if request_problems and ex.status not in (400, 401, 413, 422, 429):
            problems.append(f"{where}: an invalid request was accepted: {request_problems}")
    return problems


def _refused_by_state(status: int, body: bytes) -> bool:
    """Refusals the spec cannot express, which a request valid per the spec can meet: an
    `application` whose uid is not the path's, a message whose event type is archived."""
    if status == 422 and b"application_uid" in body:
        return True
    try:
        data = json.loads(body)
    except ValueError:
        return False
    if not isinstance(data, dict):
        return False
    if status == 400:
        return data.get("code") == "event_type_archived"
    detail = data.get("detail")
    return (
        status == 422
        and isinstance(detail, list)
        and any(
            isinstance(item, dict)
            and item.get("loc") == ["body", "eventType"]
            and str(item.get("msg", "")).endswith("is archived")
            for item in detail
        )
    )


def make_svix(emulator: RunningEmulator, exchanges: list[Exchange], **options: object) -> Svix:
    client = Svix(
        str(options.pop("token", emulator.token)),
        SvixOptions(server_url=emulator.url, retry_schedule=[], **options),  # type: ignore[arg-type]
    )
    client._httpx_client.event_hooks = {"request": [], "response": [record_into(exchanges)]}
    return client


def make_http(
    emulator: RunningEmulator, exchanges: list[Exchange], **kwargs: object
) -> httpx.Client:
    return httpx.Client(
        base_url=emulator.url,
        headers={"authorization": f"Bearer {emulator.token}"},
        event_hooks={"response": [record_into(exchanges)]},
        trust_env=False,
        **kwargs,  # type: ignore[arg-type]
    )
