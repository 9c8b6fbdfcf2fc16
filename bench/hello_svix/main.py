"""The cold-start baseline: hello-world plus the one heavy dependency the relay cannot avoid.

It builds a svix client at import time, as the relay does, so the comparison is import for import.
"""

import flask
import functions_framework
from svix.api import Svix, SvixOptions

CLIENT = Svix("testsk_hello", SvixOptions(server_url="http://127.0.0.1:1"))


@functions_framework.http
def hello(request: flask.Request) -> str:
    return "ok"
