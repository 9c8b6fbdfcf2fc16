"""A reference point for CPU per event: a function that reads the request and makes one plain
HTTP call to Svix (the emulator) on a keep-alive connection per thread, and answers "ok".

No parsing, no models, no logging: what any relay on this platform pays for its one Svix call.
"""

import http.client
import os
import threading
import urllib.parse

import flask
import functions_framework

_URL = urllib.parse.urlsplit(os.environ["SVIX_SERVER_URL"])
_HEADERS = {
    "Authorization": f"Bearer {os.environ['SVIX_AUTH_TOKEN']}",
    "Content-Type": "application/json",
}
_BODY = (
    b'{"eventType":"user.created","payload":{"hello":"world"},'
    b'"application":{"name":"hello","uid":"hello"}}'
)
_local = threading.local()


def _connection() -> http.client.HTTPConnection:
    connection = getattr(_local, "connection", None)
    if connection is None:
        connection = http.client.HTTPConnection(_URL.hostname or "", _URL.port, timeout=10)
        _local.connection = connection
    return connection


@functions_framework.http
def hello_forward(request: flask.Request) -> str:
    request.get_data()
    connection = _connection()
    connection.request("POST", "/api/v1/app/hello/msg", body=_BODY, headers=_HEADERS)
    connection.getresponse().read()
    return "ok"
