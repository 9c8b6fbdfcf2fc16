"""The control API under `/_emulator/`: reset, faults, the clock, counters, stored messages and
event types.

No authentication, no latency and no faults here: tests must be able to look at the emulator
whatever state they put it in."""

from __future__ import annotations

from svix_emulator.faults import FaultConfigError, parse_faults
from svix_emulator.state import State, handle_clock
from svix_emulator.wire import (
    Reply,
    Request,
    bad_request,
    json_reply,
    method_not_allowed,
    not_found,
    parse_json,
)


def handle_control(state: State, request: Request) -> Reply:
    name = request.segments[1] if len(request.segments) == 2 else None
    method = request.method
    if name == "reset":
        if method != "POST":
            return method_not_allowed(("POST",))
        state.reset()
        return json_reply(200, {})
    if name == "clock":
        return handle_clock(state, request)
    if name == "faults":
        if method == "GET":
            with state.lock:
                return json_reply(200, state.faults.config.to_json())
        if method != "PUT":
            return method_not_allowed(("GET", "PUT"))
        body, bad = parse_json(request.body)
        if bad is not None:
            return bad
        try:
            config = parse_faults(body)
        except FaultConfigError as exc:
            return bad_request(str(exc))
        with state.lock:
            state.set_faults(config)
            return json_reply(200, config.to_json())
    if name == "stats":
        if method != "GET":
            return method_not_allowed(("GET",))
        with state.lock:
            return json_reply(200, state.store.stats_json())
    if name == "messages":
        if method != "GET":
            return method_not_allowed(("GET",))
        app = request.query.get("app", [None])[-1]
        with state.lock:
            data = [m.to_control_json() for m in state.store.messages_snapshot(app)]
        return json_reply(200, {"data": data})
    if name == "event-types":
        if method != "GET":
            return method_not_allowed(("GET",))
        # Archived ones too, with their schemas: what the API's list hides by default.
        with state.lock:
            types = [t.to_json() for t in state.store.event_types.snapshot()]
        return json_reply(200, {"data": types})
    return not_found("No such control route; see svix_emulator/README.md")
