"""Checks requests and answers against Svix's OpenAPI spec, for tests (needs `jsonschema`).

The spec is OpenAPI 3.1, whose schemas are JSON Schema 2020-12, but it still marks optional
values with OpenAPI 3.0's `nullable: true`, which 2020-12 ignores. The checker reads it as its
authors meant: such a schema also allows null.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path(__file__).resolve().parent.parent.parent / "shared" / "svix" / "openapi.json"
_BASE = "urn:svix-openapi"

# The operations the emulator implements: (method, path template) -> operationId.
IMPLEMENTED = {
    ("GET", "/api/v1/health"): "v1.health.get",
    ("POST", "/api/v1/app"): "v1.application.create",
    ("GET", "/api/v1/app/{app_id}"): "v1.application.get",
    ("POST", "/api/v1/app/{app_id}/msg"): "v1.message.create",
    ("GET", "/api/v1/app/{app_id}/msg"): "v1.message.list",
    ("GET", "/api/v1/app/{app_id}/msg/{msg_id}"): "v1.message.get",
    ("GET", "/api/v1/event-type"): "v1.event-type.list",
    ("POST", "/api/v1/event-type"): "v1.event-type.create",
    ("GET", "/api/v1/event-type/{event_type_name}"): "v1.event-type.get",
    ("PUT", "/api/v1/event-type/{event_type_name}"): "v1.event-type.upsert",
    ("PATCH", "/api/v1/event-type/{event_type_name}"): "v1.event-type.patch",
    ("DELETE", "/api/v1/event-type/{event_type_name}"): "v1.event-type.delete",
}

_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)
_FORMATS = jsonschema.FormatChecker(formats=())


@_FORMATS.checks("date-time")  # type: ignore[untyped-decorator]
def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if _RFC3339.fullmatch(value) is None:
        return False
    try:
        datetime.fromisoformat(value.replace("z", "Z").replace("t", "T"))
    except ValueError:
        return False
    return True


def _convert(node: Any) -> Any:
    """`nullable: true` -> also null; `#/...` refs -> absolute, so any fragment can be checked;
    a pattern's final `$` -> `\\Z`: in ECMA 262 regexes, which JSON Schema patterns are, `$` is the
    end of the text, while Python's also matches before a final newline."""
    if isinstance(node, list):
        return [_convert(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _convert(value) for key, value in node.items() if key != "nullable"}
    if isinstance(out.get("$ref"), str) and out["$ref"].startswith("#/"):
        out["$ref"] = _BASE + out["$ref"]
    pattern = out.get("pattern")
    if isinstance(pattern, str) and pattern.endswith("$") and not pattern.endswith("\\$"):
        out["pattern"] = pattern[:-1] + "\\Z"
    if node.get("nullable") is True:
        return {"anyOf": [out, {"type": "null"}]}
    return out


class SpecChecker:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        components = _convert(spec["components"])
        resource: Resource[Any] = DRAFT202012.create_resource({"components": components})
        self._registry: Registry[Any] = Registry().with_resource(_BASE, resource)
        self._operations: dict[tuple[str, str], dict[str, Any]] = {
            key: _convert(spec["paths"][key[1]][key[0].lower()]) for key in IMPLEMENTED
        }

    @classmethod
    def load(cls, path: Path = SPEC_PATH) -> SpecChecker:
        return cls(json.loads(path.read_text(encoding="utf-8")))

    def _problems(self, schema: dict[str, Any], instance: object, where: str) -> list[str]:
        validator = jsonschema.Draft202012Validator(
            schema, registry=self._registry, format_checker=_FORMATS
        )
        return [
            f"{where}{'/' + '/'.join(map(str, e.absolute_path)) if e.absolute_path else ''}: "
            f"{e.message[:300]}"
            for e in validator.iter_errors(instance)
        ]

    def operation(self, method: str, path: str) -> tuple[str, dict[str, str]] | None:
        """The implemented operation's template and path parameters, or None."""
        parts = path.rstrip("/").split("/") if path != "/" else [""]
        for verb, template in IMPLEMENTED:
            names = template.split("/")
            if verb != method or len(names) != len(parts):
                continue
            params: dict[str, str] = {}
            for name, part in zip(names, parts, strict=True):
                if name.startswith("{"):
                    if not part:
                        break
                    params[name[1:-1]] = part
                elif name != part:
                    break
            else:
                return template, params
        return None

    def request_problems(
        self,
        method: str,
        template: str,
        path_params: dict[str, str],
        query: dict[str, list[str]],
        body: object,
        has_body: bool,
    ) -> list[str]:
        """Where a request breaks the operation's parameter and request body schemas."""
        operation = self._operations[(method, template)]
        problems: list[str] = []
        for param in operation.get("parameters", []):
            name, where, schema = param["name"], param["in"], param["schema"]
            if where == "path":
                problems += self._problems(schema, path_params.get(name), f"path {name}")
            elif where == "query" and name in query:
                raw = query[name]
                if name == "iterator":
                    # The spec's iterator pattern has no room for the `-` that Svix puts before
                    # every `prevIterator` it answers; such an iterator is read without it.
                    raw = [value.removeprefix("-") for value in raw]
                for value in _query_values(schema, raw):
                    problems += self._problems(schema, value, f"query {name}")
        request_body = operation.get("requestBody")
        if request_body is not None:
            if not has_body:
                if request_body.get("required"):
                    problems.append("body: required but absent")
            else:
                schema = request_body["content"]["application/json"]["schema"]
                problems += self._problems(schema, body, "body")
        return problems

    def response_problems(
        self, method: str, template: str, status: int, content_type: str, body: bytes
    ) -> list[str]:
        """Where an answer breaks the operation's documented responses."""
        responses = self._operations[(method, template)]["responses"]
        documented = responses.get(str(status))
        if documented is None:
            return [f"status {status} is not documented (documented: {sorted(responses)})"]
        content = documented.get("content")
        if not content:
            return [] if not body else [f"status {status} documents no body, got {body[:100]!r}"]
        if not content_type.startswith("application/json"):
            return [f"content type {content_type!r}, documented application/json"]
        try:
            data = json.loads(body)
        except ValueError as exc:
            return [f"body is not JSON: {exc}"]
        return self._problems(content["application/json"]["schema"], data, f"{status} body")


def _query_values(schema: dict[str, Any], raw: list[str]) -> list[object]:
    """Query strings as the typed values their schema describes (invalid text stays text)."""
    kind = schema.get("type")
    if kind is None and "anyOf" in schema:
        kind = schema["anyOf"][0].get("type")
        schema = schema["anyOf"][0]
    if kind == "array":
        # The SDK joins arrays with commas; repeated keys are the form style. Both are read.
        items = [part for value in raw for part in value.split(",")]
        return [_query_values(schema.get("items", {}), items)]
    values: list[object] = []
    for value in raw:
        if kind == "boolean" and value in ("true", "false"):
            values.append(value == "true")
        elif kind == "integer" and re.fullmatch(r"-?\d+", value, re.ASCII):
            values.append(int(value))
        else:
            values.append(value)
    return values
