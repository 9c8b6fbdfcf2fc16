"""The event catalogue: which Gigs event types customers can pick in Svix's App Portal, with a
description, a group and an example each, kept in the repository (catalogue/event-types.toml and
catalogue/examples/<event type>.json) and published by `python -m relay event-types sync`.

Everything here is checked before anything reaches Svix: a name, group or description Svix would
refuse, a key nobody reads, an example of another type or that does not fit its schema, a schema
that is no JSON Schema draft 7. Each error names the file, the event type and, where it can, the
line.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relay.core.jsontext import NotJson, decode_json, utf8

# Beside main.py: the function's upload holds it, so the relay can read the names at start.
DEFAULT_CATALOGUE = Path(__file__).resolve().parents[2] / "catalogue" / "event-types.toml"
EXAMPLES_FOLDER = "examples"
SCHEMA_VERSION = "1"

# Svix's rule for event type and group names (EventTypeIn in its OpenAPI spec).
_SVIX_NAME = re.compile(r"[a-zA-Z0-9\-_.]+")
SVIX_NAME_MAX = 256
_KNOWN_KEYS = frozenset({"group", "description", "archived", "deprecated"})
# Svix refuses these in a description (its server's validate_no_control_characters).
_SVIX_REFUSED_CHARACTERS = re.compile(r"[\x00-\x08]")
# Where each schema carries its fingerprint: a draft 7 keyword for maintainers, not readers.
FINGERPRINT_KEY = "$comment"
_FINGERPRINT_PREFIX = "event catalogue sha256:"


class CatalogueError(ValueError):
    """The catalogue, one of its examples or the event spec cannot be published as it is; the
    message names the file, the event type and the problem."""


@dataclass(frozen=True)
class CatalogueEntry:
    name: str
    description: str
    group: str | None
    # None: leave Svix's archived state as it is; True or False: make it so.
    archived: bool | None
    deprecated: bool
    # The example event as Gigs publishes it, if the catalogue has one for this type.
    example: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Catalogue:
    path: Path
    entries: tuple[CatalogueEntry, ...]  # sorted by name

    @property
    def names(self) -> frozenset[str]:
        return frozenset(entry.name for entry in self.entries)


def catalogue_names(path: Path = DEFAULT_CATALOGUE) -> frozenset[str]:
    """The event types the catalogue lists, and nothing else checked: cheap enough for the
    function's start (one small TOML file, no examples, no schemas)."""
    return frozenset(_read_tables(path))


def load_catalogue(path: Path = DEFAULT_CATALOGUE) -> Catalogue:
    """The whole catalogue, checked, with its examples (from `examples/` beside the file)."""
    tables = _read_tables(path)
    text = path.read_text(encoding="utf-8")
    examples = _read_examples(path.parent / EXAMPLES_FOLDER, known=frozenset(tables))
    entries = [
        _entry(path, text, name, table, examples.get(name)) for name, table in tables.items()
    ]
    return Catalogue(path, tuple(sorted(entries, key=lambda entry: entry.name)))


def load_spec(path: Path) -> dict[str, Any]:
    """The Gigs event spec: the JSON Schema of an event, which every type's schema starts from."""
    try:
        spec = decode_json(path.read_bytes())
    except OSError as exc:
        raise CatalogueError(f"{path}: cannot read the event spec: {exc.strerror}") from None
    except NotJson as exc:
        raise CatalogueError(f"{path}: the event spec is not valid JSON: {exc}") from None
    if not isinstance(spec, dict):
        raise CatalogueError(f"{path}: the event spec must be a JSON object (a JSON Schema)")
    properties = spec.get("properties")
    if not isinstance(properties, dict) or not isinstance(properties.get("type"), dict):
        # Each type's schema pins `properties.type` to its name: without it there is no event.
        raise CatalogueError(f"{path}: the event spec has no `properties.type` schema")
    return spec


def build_schemas(entry: CatalogueEntry, spec: Mapping[str, Any]) -> dict[str, Any]:
    """Svix's `schemas` for the type: version 1 is the Gigs event spec narrowed to this type,
    with the example as the customer receives it."""
    # Here, not at the top: the function's start imports this module for catalogue_names alone.
    from relay.core.events import public_payload

    schema: dict[str, Any] = copy.deepcopy(dict(spec))
    schema["title"] = entry.name
    schema["description"] = entry.description
    properties = schema["properties"]
    type_schema = properties["type"]
    type_schema["const"] = entry.name
    if "examples" in type_schema:
        # The spec's own example names some other type; next to `const` it would contradict it.
        type_schema["examples"] = [entry.name]
    data_schema = properties.get("data")
    if isinstance(data_schema, dict) and "examples" in data_schema:
        # The spec's example `data` is one resource (a user) for every type: the portal would
        # show a user under `payment.failed`. Ours, or none.
        if entry.example is not None and "data" in entry.example:
            data_schema["examples"] = [copy.deepcopy(entry.example["data"])]
        else:
            del data_schema["examples"]
    if entry.example is not None:
        schema["examples"] = [public_payload(copy.deepcopy(dict(entry.example)))]
    else:
        # The spec's own examples are events of some other type.
        schema.pop("examples", None)
    # Last, over everything else: Svix may give the schema back in another form than sent (a
    # `$schema` added, an example moved), and the fingerprint still tells the sync it is ours.
    schema.pop(FINGERPRINT_KEY, None)
    canonical = json.dumps(schema, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(utf8(canonical)).hexdigest()[:32]
    schema[FINGERPRINT_KEY] = _FINGERPRINT_PREFIX + digest
    return {SCHEMA_VERSION: schema}


def can_check_schemas() -> bool:
    """Whether jsonschema is installed (requirements-dev.txt), which check_schema needs."""
    try:
        import jsonschema  # noqa: F401
    except ImportError:
        return False
    return True


def check_schema(
    entry: CatalogueEntry, schema: Mapping[str, Any], *, spec_path: Path, example_path: Path
) -> None:
    """Refuse a schema Svix would refuse (it builds each as a JSON Schema draft 7) and an example
    that does not fit its own type's schema, which the App Portal would show all the same."""
    from jsonschema import Draft7Validator, SchemaError
    from jsonschema.exceptions import best_match

    try:
        Draft7Validator.check_schema(schema)
    except SchemaError as exc:
        raise CatalogueError(
            f"{spec_path}: the schema built for {entry.name} is not a JSON Schema draft 7, "
            f"which Svix refuses ({_json_path(exc.path)}: {exc.message})"
        ) from None
    for example in schema.get("examples", []):
        misfit = best_match(Draft7Validator(schema).iter_errors(example))
        if misfit is not None:
            raise CatalogueError(
                f"{example_path}: the example of {entry.name} does not fit its schema "
                f"({_json_path(misfit.absolute_path)}: {misfit.message})"
            )


def _json_path(parts: Any) -> str:
    return ".".join(str(part) for part in parts) or "the top"


def _read_tables(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            document = tomllib.load(file)
    except OSError as exc:
        raise CatalogueError(f"{path}: cannot read the catalogue: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message carries the line and column, also for a type listed twice.
        raise CatalogueError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise CatalogueError(f"{path}: not UTF-8 text: {exc}") from None
    for name, table in document.items():
        if not isinstance(table, dict):
            raise CatalogueError(
                f'{path}: "{name}" must be a table (["{name}"] and its keys below), '
                f"not a {_toml_kind(table)}"
            )
    return document


def _entry(
    path: Path, text: str, name: str, table: dict[str, Any], example: dict[str, Any] | None
) -> CatalogueEntry:
    from relay.core.events import TYPE_PREFIX, event_type_name

    where = f'{path}{_line_of(text, name)}, ["{name}"]'
    if not _is_svix_name(name):
        raise CatalogueError(
            f"{where}: Svix refuses this event type name: it must be 1 to {SVIX_NAME_MAX} "
            "characters of letters, digits, '-', '_' and '.'"
        )
    if name.startswith(TYPE_PREFIX):
        # Messages would never carry it: the relay strips the prefix from every event's type.
        raise CatalogueError(
            f'{where}: the relay sends this type as "{event_type_name(name)}"; list it without '
            f"the {TYPE_PREFIX} prefix"
        )
    for key, value in table.items():
        if isinstance(value, dict):
            # [user.created] without quotes is the table "user" holding the table "created".
            raise CatalogueError(
                f'{where}: "{key}" is a table inside the type; quote dotted names, as in '
                f'["{name}.{key}"]'
            )
    unknown = sorted(set(table) - _KNOWN_KEYS)
    if unknown:
        raise CatalogueError(
            f"{where}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
            f"(known: {', '.join(sorted(_KNOWN_KEYS))})"
        )
    description = table.get("description")
    if description is None:
        raise CatalogueError(f"{where}: description is missing (what the App Portal shows)")
    if not isinstance(description, str):
        raise CatalogueError(
            f"{where}: description must be a string, not a {_toml_kind(description)}"
        )
    if not description.strip():
        raise CatalogueError(f"{where}: description is empty")
    refused = _SVIX_REFUSED_CHARACTERS.search(description)
    if refused:
        raise CatalogueError(
            f"{where}: description holds the control character U+{ord(refused.group()):04X}, "
            "which Svix refuses"
        )
    group = table.get("group")
    if group is not None:
        if not isinstance(group, str):
            raise CatalogueError(f"{where}: group must be a string, not a {_toml_kind(group)}")
        if not _is_svix_name(group):
            raise CatalogueError(
                f"{where}: Svix refuses the group {group!r}: it must be 1 to {SVIX_NAME_MAX} "
                "characters of letters, digits, '-', '_' and '.'"
            )
    for flag in ("archived", "deprecated"):
        if flag in table and not isinstance(table[flag], bool):
            raise CatalogueError(
                f"{where}: {flag} must be true or false, not a {_toml_kind(table[flag])}"
            )
    return CatalogueEntry(
        name=name,
        description=description.strip(),
        group=group,
        archived=table.get("archived"),
        deprecated=table.get("deprecated", False),
        example=example,
    )


def _read_examples(folder: Path, *, known: frozenset[str]) -> dict[str, dict[str, Any]]:
    examples: dict[str, dict[str, Any]] = {}
    if not folder.is_dir():
        return examples
    for file in sorted(folder.glob("*.json")):
        name = file.stem
        if name not in known:
            raise CatalogueError(f"{file}: an example for {name}, which the catalogue lacks")
        try:
            example = decode_json(file.read_bytes())
        except NotJson as exc:
            raise CatalogueError(
                f"{file}: the example of {name} is not valid JSON: {exc}"
            ) from None
        if not isinstance(example, dict):
            raise CatalogueError(f"{file}: the example of {name} must be a JSON object (an event)")
        if example.get("type") != name:
            raise CatalogueError(
                f"{file}: the example of {name} has type {example.get('type')!r}; an example "
                "must be an event of the type its file is named after"
            )
        examples[name] = example
    return examples


def _is_svix_name(text: str) -> bool:
    return len(text) <= SVIX_NAME_MAX and _SVIX_NAME.fullmatch(text) is not None


def _line_of(text: str, name: str) -> str:
    """Where the table header of `name` is, as ", line N"; empty when it cannot be told."""
    header = re.compile(
        r"^\s*\[\s*(?:"
        + "|".join(re.escape(form) for form in (f'"{name}"', f"'{name}'", name))
        + r")\s*\]"
    )
    for number, line in enumerate(text.splitlines(), start=1):
        if header.match(line):
            return f", line {number}"
    return ""


def _toml_kind(value: object) -> str:
    return {
        str: "string",
        bool: "boolean",
        int: "number",
        float: "number",
        list: "list",
        dict: "table",
    }.get(type(value), type(value).__name__)
