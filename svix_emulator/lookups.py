"""The API's reads of what it stored: an application, a message list, a message."""

from __future__ import annotations

from typing import Any

from svix_emulator.state import State
from svix_emulator.validation import ErrorItem, check_id, parse_bool, parse_list_query
from svix_emulator.wire import Reply, Request, json_reply, not_found, validation_error


def get_app(state: State, app_id: str) -> Reply:
    errors: list[ErrorItem] = []
    check_id(["path", "app_id"], app_id, errors)
    if errors:
        return validation_error(errors)
    with state.lock:
        app = state.store.find_app(app_id)
        out = None if app is None else app.to_json()
    return not_found("Application not found") if out is None else json_reply(200, out)


def list_messages(state: State, request: Request, app_id: str) -> Reply:
    errors: list[ErrorItem] = []
    check_id(["path", "app_id"], app_id, errors)
    query = parse_list_query(request.query, errors)
    if errors or query is None:
        return validation_error(errors)
    with state.lock:
        app = state.store.find_app(app_id)
        if app is None:
            return not_found("Application not found")
        page, done = state.store.list_messages(app, query)
        data = [message.to_json(query.with_content) for message in page]
    out: dict[str, Any] = {"data": data, "iterator": page[-1].id if page else None}
    if page:
        out["prevIterator"] = f"-{page[0].id}"
    out["done"] = done
    return json_reply(200, out)


def get_message(state: State, request: Request, app_id: str, msg_id: str) -> Reply:
    errors: list[ErrorItem] = []
    check_id(["path", "app_id"], app_id, errors)
    check_id(["path", "msg_id"], msg_id, errors)
    with_content = parse_bool("with_content", request.last("with_content"), True, errors)
    if errors:
        return validation_error(errors)
    with state.lock:
        app = state.store.find_app(app_id)
        if app is None:
            return not_found("Application not found")
        message = state.store.find_message(app, msg_id)
        out = None if message is None else message.to_json(with_content)
    return not_found("Message not found") if out is None else json_reply(200, out)
