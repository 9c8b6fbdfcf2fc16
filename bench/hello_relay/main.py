"""A second reference point for CPU per event: the least any relay must do, and nothing more.

Per request it reads the push (JSON, base64, JSON), writes the message body and its idempotency
key, makes the one Svix call with the relay's own HTTP/1.1 client (relay/svix/http11.py), reads
the message id from the answer, writes one JSON log line, and answers JSON. No checks of any
kind, no pacing, no retries, no lags: what the relay does beyond this is what its checks and
bookkeeping cost. Shown beside hello_forward in the benchmark, never judged.
"""

import base64
import hashlib
import json
import os
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import flask
import functions_framework

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the relay's HTTP client

from relay.svix.http11 import Http11Connection

_URL = urllib.parse.urlsplit(os.environ["SVIX_SERVER_URL"])
_HEADERS = {
    "Authorization": f"Bearer {os.environ['SVIX_AUTH_TOKEN']}",
    "Content-Type": "application/json",
}
_local = threading.local()


def _connection() -> Http11Connection:
    connection = getattr(_local, "connection", None)
    if connection is None:
        connection = Http11Connection(_URL.hostname or "", _URL.port or 80, timeout=10)
        _local.connection = connection
    return connection


@functions_framework.http
def hello_relay(request: flask.Request) -> flask.Response:
    push = json.loads(request.get_data())
    event = json.loads(base64.b64decode(push["message"]["data"]))
    app = event["project"]
    payload = {key: value for key, value in event.items() if key != "project"}
    body = json.dumps(
        {
            "eventId": event["id"],
            "eventType": event["type"],
            "payload": payload,
            "application": {"name": app, "uid": app},
        },
        separators=(",", ":"),
    ).encode()
    key = hashlib.sha256(f"{app}\n{event['id']}".encode()).hexdigest()[:48]
    started = time.monotonic()
    answer = _connection().request(
        "POST",
        f"/api/v1/app/{app}/msg?with_content=false",
        {**_HEADERS, "idempotency-key": key},
        body,
    )
    message_id = json.loads(answer.body)["id"]
    line = {
        "severity": "INFO",
        "message": f"event {event['id']} delivered",
        "event_id": event["id"],
        "event_type": event["type"],
        "app_id": app,
        "outcome": "delivered",
        "svix_message_id": message_id,
        "latency_ms": round((time.monotonic() - started) * 1000, 1),
    }
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()
    result = {"counts": {"delivered": 1}, "events": [{"id": event["id"], "outcome": "delivered"}]}
    return flask.Response(json.dumps(result), status=200, mimetype="application/json")
