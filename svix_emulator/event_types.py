"""The event-type operations (`/api/v1/event-type`), environment-wide as in Svix, and the refusal
of a message whose event type is archived. Routing, authentication and idempotency keys are
`api.py`'s; every handler here takes the lock itself."""

from __future__ import annotations

from svix_emulator.event_type_validation import (
    check_event_type_in,
    check_event_type_patch,
    check_event_type_upsert,
    parse_event_type_query,
)
from svix_emulator.ids import format_timestamp
from svix_emulator.state import State
from svix_emulator.validation import ErrorItem, check_id, error, parse_bool
from svix_emulator.wire import (
    Reply,
    Request,
    http_error,
    json_reply,
    not_found,
    parse_json,
    validation_error,
)

COLLECTION_METHODS = ("GET", "POST")
ITEM_METHODS = ("GET", "PUT", "PATCH", "DELETE")
_NAME_LOC = ["path", "event_type_name"]


def allowed_methods(names: list[str]) -> tuple[str, ...] | None:
    """The methods of `/event-type` (no name) or `/event-type/{name}`; None: no such route."""
    if not names:
        return COLLECTION_METHODS
    return ITEM_METHODS if len(names) == 1 else None


def handle_event_type(state: State, request: Request, names: list[str]) -> Reply:
    """Every event-type call but create, which runs under its idempotency key."""
    if not names:
        return _list(state, request)
    name = names[0]
    errors: list[ErrorItem] = []
    check_id(_NAME_LOC, name, errors)
    if errors:
        return validation_error(errors)
    if request.method == "GET":
        with state.lock:
            found = state.store.event_types.get(name)
            out = None if found is None else found.to_json()
        return _missing() if out is None else json_reply(200, out)
    if request.method == "DELETE":
        return _delete(state, request, name)
    body, bad = parse_json(request.body)
    if bad is not None:
        return bad
    if request.method == "PUT":
        return _upsert(state, name, body)
    return _patch(state, name, body)


def create_event_type(state: State, request: Request) -> Reply:
    """POST: a new type, or one that was archived made live again with the body's fields (Svix:
    "This operation does not preserve the description and schemas")."""
    body, bad = parse_json(request.body)
    if bad is not None:
        return bad
    errors: list[ErrorItem] = []
    parsed = check_event_type_in(body, errors)
    if errors or parsed is None:
        return validation_error(errors)
    name, fields = parsed
    with state.lock:
        catalogue = state.store.event_types
        existing = catalogue.get(name)
        if existing is not None and not existing.fields.archived:
            # The open-source server's code and words.
            detail = "An event_type with this name already exists"
            return http_error(409, "event_type_exists", detail)
        event_type, _ = catalogue.put(name, fields, _now(state))
        out = event_type.to_json()
    return json_reply(201, out)


def refuse_if_archived(state: State, event_type: str) -> Reply | None:
    """The answer to a message whose event type exists and is archived, counted; None for any
    other type, known or not. The caller holds the lock."""
    if not state.store.event_types.is_archived(event_type):
        return None
    state.store.stats.archived_type_refusals += 1
    detail = f"Event type '{event_type}' is archived"
    if state.faults.config.archived_type_refusal_status == 422:
        return validation_error([error(["body", "eventType"], detail)])
    return http_error(400, "event_type_archived", detail)


def _now(state: State) -> str:
    return format_timestamp(state.store.clock.now())


def _missing() -> Reply:
    return not_found("Event type not found")


def _list(state: State, request: Request) -> Reply:
    errors: list[ErrorItem] = []
    query = parse_event_type_query(request.query, errors)
    if errors or query is None:
        return validation_error(errors)
    with state.lock:
        page, done = state.store.event_types.page(query)
        data = [event_type.to_json(query.with_content) for event_type in page]
    out: dict[str, object] = {"data": data, "iterator": page[-1].name if page else None}
    if page:
        out["prevIterator"] = f"-{page[0].name}"
    out["done"] = done
    return json_reply(200, out)


def _upsert(state: State, name: str, body: object) -> Reply:
    errors: list[ErrorItem] = []
    fields = check_event_type_upsert(body, errors)
    if errors or fields is None:
        return validation_error(errors)
    with state.lock:
        event_type, created = state.store.event_types.put(name, fields, _now(state))
        out = event_type.to_json()
    return json_reply(201 if created else 200, out)


def _patch(state: State, name: str, body: object) -> Reply:
    errors: list[ErrorItem] = []
    changes = check_event_type_patch(body, errors)
    if errors or changes is None:
        return validation_error(errors)
    with state.lock:
        event_type = state.store.event_types.patch(name, changes, _now(state))
        out = None if event_type is None else event_type.to_json()
    return _missing() if out is None else json_reply(200, out)


def _delete(state: State, request: Request, name: str) -> Reply:
    errors: list[ErrorItem] = []
    values = request.query.get("expunge")
    expunge = parse_bool("expunge", values[-1] if values else None, False, errors)
    if errors:
        return validation_error(errors)
    with state.lock:
        catalogue = state.store.event_types
        if expunge:
            found = catalogue.expunge(name)
        else:
            found = catalogue.patch(name, {"archived": True}, _now(state)) is not None
    return Reply(204, b"", "") if found else _missing()
