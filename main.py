"""Cloud Functions entry points. `relay` takes Pub/Sub pushes and direct posts over HTTP;
`relay_event` takes Pub/Sub messages through Eventarc. Both hand the work to the same service."""

from typing import Any

import flask
import functions_framework

from relay.bootstrap import application_from_environment
from relay.entrypoints.cloud_event import handle_cloud_event
from relay.entrypoints.http import handle_http

# Settings are read once, when the instance starts: a bad configuration stops it right here.
APP = application_from_environment()


@functions_framework.http
def relay(request: flask.Request) -> flask.Response:
    return handle_http(APP, request)


@functions_framework.cloud_event
def relay_event(cloud_event: Any) -> None:
    handle_cloud_event(APP, cloud_event.data)
