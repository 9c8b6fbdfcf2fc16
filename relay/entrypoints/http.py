"""The HTTP entry point: Pub/Sub pushes and direct posts in, the HTTP answer out."""

from __future__ import annotations

import json
import logging

import flask

from relay.bootstrap import Application
from relay.core.errors import MalformedRequest, PushAuthError, PushAuthUnavailable, RequestTooLarge
from relay.entrypoints.answers import Answer, answer_for
from relay.logs import fields, log, trace_of
from relay.pubsub.push import read_request

EVENT_PATHS = frozenset({"/", "/notifications"})


def handle_http(app: Application, request: flask.Request) -> flask.Response:
    try:
        answer = _answer(app, request)
    except Exception:  # noqa: BLE001 - a bug must still answer JSON, and say so in the logs
        log.exception("unexpected error while handling a request")
        answer = Answer(500, {"error": "internal error in the relay; see its logs"})
    return _json_response(answer)


def _answer(app: Application, request: flask.Request) -> Answer:
    path = request.path.rstrip("/") or "/"
    if path not in EVENT_PATHS:
        return Answer(
            404, {"error": f"no such path: {request.path}; post events to / or /notifications"}
        )
    if request.method == "GET" and path == "/":
        return Answer(200, {"status": "ok", "service": "gigs-svix-relay"})
    if request.method != "POST":
        return Answer(
            405, {"error": f"method {request.method} not allowed; use POST"}, {"Allow": "POST"}
        )
    if app.authenticator is not None:
        try:
            app.authenticator.verify(request.headers.get("Authorization"))
        except PushAuthUnavailable as exc:
            log.error("cannot check push tokens: %s", exc)
            return Answer(503, {"error": "cannot check the push token right now"})
        except PushAuthError as exc:
            log.warning("push request refused: %s", exc, extra=fields(remote=request.remote_addr))
            return Answer(401, {"error": f"unauthorized: {exc}"})

    limit = app.settings.max_request_bytes
    if request.content_length is not None and request.content_length > limit:
        return _too_large(request.content_length, limit)
    # Strategy: `request.stream`, not the server's stream straight from the environ: that
    # measured 5 us cheaper alone, but functions-framework reads the rest of every request
    # through `request.stream` after the answer (its after-request hook), so the saving went.
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        return _too_large(len(body), limit)
    try:
        batch = read_request(body, request.headers, max_events=app.settings.max_events_per_request)
    except MalformedRequest as exc:
        log.warning("malformed request refused: %s", exc)
        return Answer(400, {"error": str(exc)})
    except RequestTooLarge as exc:
        return Answer(413, {"error": str(exc)})
    trace = trace_of(request.headers.get("X-Cloud-Trace-Context"), app.settings.gcp_project)
    return answer_for(app.relay.handle(batch, trace=trace))


def _too_large(size: int, limit: int) -> Answer:
    return Answer(413, {"error": f"request body is {size} bytes, over the limit of {limit} bytes"})


def _json_response(answer: Answer) -> flask.Response:
    response = flask.Response(
        json.dumps(answer.body),  # ASCII: ids may hold lone surrogates, which UTF-8 refuses
        status=answer.status,
        content_type="application/json",  # as `mimetype=` writes it, without working it out
    )
    for name, value in answer.headers.items():
        response.headers[name] = value
    return response


logging.getLogger("werkzeug").setLevel(logging.WARNING)
