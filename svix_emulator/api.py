"""The Svix API operations the relay uses: health, application create/get, message
create/list/get, event types, with authentication, idempotency keys and the configured faults."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from svix_emulator.event_types import (
    allowed_methods,
    create_event_type,
    handle_event_type,
    refuse_if_archived,
)
from svix_emulator.lookups import get_app, get_message, list_messages
from svix_emulator.state import State
from svix_emulator.validation import (
    ErrorItem,
    check_application_in,
    check_id,
    check_message_in,
    error,
    parse_bool,
)
from svix_emulator.wire import (
    DROP,
    Outcome,
    Reply,
    Request,
    http_error,
    json_reply,
    method_not_allowed,
    not_found,
    parse_json,
    validation_error,
)

MAX_PAYLOAD_BYTES = 1024 * 1024
# The open-source Svix server makes a request wait while another with its key is in flight.
IDEMPOTENCY_WAIT_SECONDS = 5.0

# What happens after a message is stored: nothing, drop the connection, or sleep this long.
AfterStore = None | str | float
DROP_AFTER = "drop"

_BAD_GATEWAY = b"<html><body>502 Bad Gateway</body></html>"
_COUNTED_STATUSES = {
    400: "validation_errors",
    413: "validation_errors",
    422: "validation_errors",
    401: "unauthorized",
    404: "not_found",
    409: "conflicts",
}


def handle_api(state: State, request: Request) -> Outcome:
    with state.lock:
        state.store.stats.requests += 1
        latency_ms = state.faults.config.latency_ms
    if latency_ms:
        time.sleep(latency_ms / 1000)
    outcome = _route(state, request)
    if isinstance(outcome, Reply) and outcome.status in _COUNTED_STATUSES:
        counter = _COUNTED_STATUSES[outcome.status]
        with state.lock:
            stats = state.store.stats
            setattr(stats, counter, getattr(stats, counter) + 1)
    return outcome


def _route(state: State, request: Request) -> Outcome:
    segments = request.segments
    if segments[:2] != ["api", "v1"]:
        return not_found("No such API route")
    rest = segments[2:]
    method = request.method
    if rest == ["health"]:
        return Reply(204, b"", "") if method == "GET" else method_not_allowed(("GET",))
    if rest and rest[0] == "event-type":
        return _event_type_call(state, request, rest[1:])
    if not rest or rest[0] != "app" or len(rest) > 4 or (len(rest) >= 3 and rest[2] != "msg"):
        return not_found("No such API route")
    allowed = {1: ("POST",), 2: ("GET",), 3: ("GET", "POST"), 4: ("GET",)}[len(rest)]
    if method not in allowed:
        return method_not_allowed(allowed)
    token = _authenticate(state, request)
    if token is None:
        return _unauthorized()
    if len(rest) == 1:
        return _idempotent(state, request, token, lambda: (_create_app(state, request), None))
    if len(rest) == 2:
        return get_app(state, rest[1])
    if len(rest) == 4:
        return get_message(state, request, rest[1], rest[3])
    if method == "GET":
        return list_messages(state, request, rest[1])
    return _create_message(state, request, token, rest[1])


def _event_type_call(state: State, request: Request, names: list[str]) -> Outcome:
    allowed = allowed_methods(names)
    if allowed is None:
        return not_found("No such API route")
    if request.method not in allowed:
        return method_not_allowed(allowed)
    token = _authenticate(state, request)
    if token is None:
        return _unauthorized()
    if request.method == "POST":
        return _idempotent(state, request, token, lambda: (create_event_type(state, request), None))
    return handle_event_type(state, request, names)


def _unauthorized() -> Reply:
    return http_error(401, "authentication_failed", "Incorrect authentication credentials.")


def _authenticate(state: State, request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or token != state.settings.token:
        return None
    return token


def _idempotent(
    state: State,
    request: Request,
    token: str,
    compute: Callable[[], tuple[Reply, AfterStore]],
) -> Outcome:
    """Runs a POST under its `idempotency-key`: the first 2xx answer for (token, key) is kept and
    given again byte for byte; a request whose key is in flight waits for that one to end."""
    key = request.headers.get("idempotency-key")
    if key is None:
        reply, after = compute()
        return _after_store(reply, after)
    slot = (token, key)
    deadline = time.monotonic() + IDEMPOTENCY_WAIT_SECONDS
    with state.changed:
        table = state.idempotency
        # Svix keeps an answer 12 hours: past that the key is new again.
        table.forget_if_expired(slot, state.store.clock.now_micros())
        while slot in table:
            stored = table[slot]
            if stored is not None:
                state.store.stats.idempotent_replays += 1
                return stored
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                # What the open-source server does when the first request never finishes.
                return http_error(
                    500, "server_error", "A request with this idempotency key is still in flight"
                )
            state.changed.wait(remaining)
            table = state.idempotency
        table[slot] = None
    kept: Reply | None = None
    kept_at = 0
    try:
        reply, after = compute()
        if 200 <= reply.status < 300:
            kept = reply
            with state.lock:
                kept_at = state.store.clock.now_micros()
        return _after_store(reply, after)
    finally:
        with state.changed:
            if kept is None:
                table.discard(slot)
            else:
                table.keep(slot, kept, kept_at)
            state.changed.notify_all()


def _after_store(reply: Reply, after: AfterStore) -> Outcome:
    if isinstance(after, float):
        time.sleep(after)
    return DROP if after == DROP_AFTER else reply


def _create_app(state: State, request: Request) -> Reply:
    errors: list[ErrorItem] = []
    get_if_exists = parse_bool("get_if_exists", request.last("get_if_exists"), False, errors)
    body, bad = parse_json(request.body)
    if bad is not None:
        return bad
    spec = check_application_in(["body"], body, errors)
    if errors or spec is None:
        return validation_error(errors)
    with state.lock:
        store = state.store
        existing = None if spec.uid is None else store.apps_by_uid.get(spec.uid)
        if existing is not None:
            if get_if_exists:
                return json_reply(200, existing.to_json())
            return http_error(409, "conflict", f"An application with uid {spec.uid} exists")
        out = store.create_app(spec).to_json()
    return json_reply(201, out)


def _create_message(state: State, request: Request, token: str, app_id: str) -> Outcome:
    # Rate limits, gateway errors and lost requests happen in front of the API, so they come
    # before idempotency: a replay can meet them too.
    with state.lock:
        faults = state.faults
        counters = state.store.stats.faults
        wait = faults.rate_limited(token, time.monotonic())
        if wait is not None:
            counters["rate_limited"] += 1
            header = faults.retry_after_header(wait)
            return http_error(
                429,
                "rate_limit",
                "Rate limit exceeded; slow down",
                () if header is None else (("Retry-After", header),),
            )
        status = faults.injected_error()
        if status is not None:
            counters[f"error_{status}"] += 1
            return _injected_error(status)
        if faults.drop_before_store():
            counters["dropped_before_store"] += 1
            return DROP
    return _idempotent(state, request, token, lambda: _store_message(state, request, app_id))


def _injected_error(status: int) -> Reply:
    if status == 409:
        return http_error(409, "conflict", "An application with that id or uid already exists")
    if status == 502:
        return Reply(502, _BAD_GATEWAY, "text/html")
    if status == 503:
        return http_error(503, "service_unavailable", "Service temporarily unavailable (injected)")
    return http_error(500, "server_error", "Internal Server Error (injected)")


def _store_message(state: State, request: Request, app_id: str) -> tuple[Reply, AfterStore]:
    errors: list[ErrorItem] = []
    check_id(["path", "app_id"], app_id, errors)
    with_content = parse_bool("with_content", request.last("with_content"), True, errors)
    if errors:
        return validation_error(errors), None
    body, bad = parse_json(request.body)
    if bad is not None:
        return bad, None
    spec = check_message_in(body, errors)
    if errors or spec is None:
        return validation_error(errors), None
    size = len(
        json.dumps(spec.payload, separators=(",", ":"), ensure_ascii=False).encode(
            "utf-8", "surrogatepass"
        )
    )
    if size > MAX_PAYLOAD_BYTES:
        detail = f"Payload is {size} bytes; the limit is {MAX_PAYLOAD_BYTES}"
        return http_error(413, "payload_too_large", detail), None
    with state.lock:
        store = state.store
        app = store.find_app(app_id)
        if app is None:
            if spec.application is None:
                return not_found("Application not found"), None
            # Svix's rule, which the spec does not state: only an app named by the path is made.
            if spec.application.uid != app_id:
                loc = ["body", "application", "uid"]
                if spec.application.uid is None:
                    item = error(loc, "Application UID not set in body", "application_uid_missing")
                else:
                    msg = "Application UID in the path and body must match"
                    item = error(loc, msg, "application_uid_mismatch")
                return validation_error([item]), None
        # Before anything is stored, the application made for the message included.
        refusal = refuse_if_archived(state, spec.event_type)
        if refusal is not None:
            return refusal, None
        if app is None:
            assert spec.application is not None  # else answered 404 above
            app = store.create_app(spec.application)
        if spec.event_id is not None and store.event_id_taken(app, spec.event_id):
            detail = f"A message with eventId {spec.event_id} already exists in this application"
            return http_error(409, "conflict", detail), None
        key = request.headers.get("idempotency-key")
        out = store.create_message(app, spec, key).to_json(with_content)
        after = _decide_after_store(state)
    return json_reply(202, out), after


def _decide_after_store(state: State) -> AfterStore:
    counters = state.store.stats.faults
    if state.faults.drop_after_store():
        counters["dropped_after_store"] += 1
        return DROP_AFTER
    seconds = state.faults.slow_after_store()
    if seconds is not None:
        counters["slow_after_store"] += 1
        return float(seconds)
    return None
