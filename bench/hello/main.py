"""The benchmark's baseline: a functions-framework function that does nothing but answer "ok"."""

import flask
import functions_framework


@functions_framework.http
def hello(request: flask.Request) -> str:
    return "ok"
