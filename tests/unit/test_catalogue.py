"""The event catalogue: the repository's own loads and its examples fit their schemas; every
mistake a catalogue can hold is refused with a message naming the file, the type and the problem."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from relay.core.events import public_payload
from relay.operations.catalogue import (
    DEFAULT_CATALOGUE,
    CatalogueEntry,
    CatalogueError,
    build_schemas,
    catalogue_names,
    load_catalogue,
    load_spec,
)
from tests.support import OWN_EVENTS, ROOT, SHARED

# A spec of our own, shaped like the Gigs event spec, for tests that must run without ../shared.
SMALL_SPEC: dict[str, Any] = {
    "type": "object",
    "title": "event",
    "properties": {
        "object": {"type": "string", "const": "event"},
        "id": {"type": "string"},
        "data": {"type": "object", "examples": [{"object": "user"}]},
        "type": {"type": "string", "examples": ["user.updated"]},
    },
    "required": ["object", "id", "data", "type"],
}
# The event types seen in our own sample events and in the real Gigs fixture events.
KNOWN_TYPES = {
    "addon.created",
    "payment.succeeded",
    "porting.updated",
    "subscription.activated",
    "subscription.renewed",
    "subscription.updated",
    "tax.created",
    "taxRate.updated",
    "user.address.created",
    "user.created",
}


def gigs_spec() -> dict[str, Any]:
    path = SHARED / "fixtures" / "event-spec.json"
    if not path.exists():
        pytest.skip("needs ../shared/fixtures/event-spec.json (the Gigs event spec), absent here")
    return load_spec(path)


def write_catalogue(folder: Path, text: str, examples: dict[str, str] | None = None) -> Path:
    path = folder / "event-types.toml"
    path.write_text(text)
    if examples:
        (folder / "examples").mkdir()
        for name, body in examples.items():
            (folder / "examples" / f"{name}.json").write_text(body)
    return path


USER_CREATED = '["user.created"]\ngroup = "user"\ndescription = "A user was created."\n'


def example_event(event_type: str = "user.created", **changes: Any) -> str:
    event = {
        "object": "event",
        "id": "evt_example1",
        "data": {"object": "user"},
        "type": event_type,
    }
    return json.dumps({**event, **changes})


# The repository's catalogue


def test_the_default_catalogue_is_the_repositorys() -> None:
    assert DEFAULT_CATALOGUE == ROOT / "catalogue" / "event-types.toml"


def test_the_repositorys_catalogue_loads_and_covers_every_type_we_have_seen() -> None:
    catalogue = load_catalogue()
    names = catalogue.names
    assert names >= KNOWN_TYPES
    own = {event["type"].removeprefix("com.gigs.") for event in _own_events()}
    assert own <= names
    assert [e.name for e in catalogue.entries] == sorted(names)
    for entry in catalogue.entries:
        # Grouped by resource: the name's first part, as the relay groups the types it creates.
        assert entry.group == entry.name.split(".")[0], entry.name
        assert entry.description.endswith("."), entry.name


def test_catalogue_names_are_the_catalogues_names() -> None:
    assert catalogue_names() == load_catalogue().names


def test_every_type_of_the_repository_has_an_example_of_our_own() -> None:
    for entry in load_catalogue().entries:
        assert entry.example is not None, entry.name
        text = json.dumps(entry.example)
        # Made up here: never ids or people from the shared fixtures.
        assert "_example" in str(entry.example["id"]), entry.name
        assert "@" not in text or "@example.com" in text, entry.name


def test_every_example_validates_against_its_schema_built_from_the_gigs_spec() -> None:
    spec = gigs_spec()
    for entry in load_catalogue().entries:
        schema = build_schemas(entry, spec)["1"]
        jsonschema.Draft7Validator.check_schema(schema)
        assert schema["examples"] == [public_payload(dict(entry.example or {}))]
        jsonschema.Draft7Validator(schema).validate(schema["examples"][0])
        other = {**schema["examples"][0], "type": "some.other.type"}
        assert not jsonschema.Draft7Validator(schema).is_valid(other), entry.name


def test_our_own_sample_events_validate_against_their_types_schema() -> None:
    spec = gigs_spec()
    entries = {entry.name: entry for entry in load_catalogue().entries}
    for event in _own_events():
        if "id" not in event:
            continue  # one sample is an event without id on purpose; the spec requires one
        payload = public_payload(event)
        schema = build_schemas(entries[payload["type"]], spec)["1"]
        jsonschema.Draft7Validator(schema).validate(payload)


# Schemas


def test_the_schema_is_the_spec_narrowed_to_the_type_with_the_customers_example() -> None:
    spec = copy.deepcopy(SMALL_SPEC)
    example = json.loads(example_event(_routing={"shard": 1}, attributes={"a": "b"}))
    entry = CatalogueEntry("user.created", "A user was created.", "user", None, False, example)
    schemas = build_schemas(entry, spec)
    assert list(schemas) == ["1"]
    schema = schemas["1"]
    assert schema["title"] == "user.created"
    assert schema["description"] == "A user was created."
    assert schema["properties"]["type"] == {
        "type": "string",
        "const": "user.created",
        "examples": ["user.created"],
    }
    # As the customer receives it: internal fields gone.
    assert schema["examples"] == [public_payload(example)]
    assert "_routing" not in schema["examples"][0] and "attributes" not in schema["examples"][0]
    assert schema["properties"]["data"]["examples"] == [{"object": "user"}]
    assert spec == SMALL_SPEC  # a copy: the spec is shared by every type
    jsonschema.Draft7Validator(schema).validate(schema["examples"][0])


def test_a_type_without_an_example_gets_no_example_of_another_resource() -> None:
    entry = CatalogueEntry("payment.failed", "A payment failed.", "payment", None, False)
    schema = build_schemas(entry, SMALL_SPEC)["1"]
    assert "examples" not in schema
    assert "examples" not in schema["properties"]["data"]
    assert schema["properties"]["type"]["const"] == "payment.failed"


def test_a_spec_example_of_another_type_never_reaches_a_type_without_one() -> None:
    spec = {**copy.deepcopy(SMALL_SPEC), "examples": [json.loads(example_event("user.updated"))]}
    entry = CatalogueEntry("payment.failed", "A payment failed.", "payment", None, False)
    assert "examples" not in build_schemas(entry, spec)["1"]
    with_example = replace(entry, example=json.loads(example_event("payment.failed")))
    assert build_schemas(with_example, spec)["1"]["examples"][0]["type"] == "payment.failed"


def test_the_schema_carries_a_fingerprint_of_itself() -> None:
    # Svix may give a schema back in another form; the fingerprint is how the sync knows it.
    entry = CatalogueEntry("user.created", "A user was created.", "user", None, False)
    schema = build_schemas(entry, SMALL_SPEC)["1"]
    fingerprint = schema["$comment"]
    assert re.fullmatch(r"event catalogue sha256:[0-9a-f]{32}", fingerprint)
    assert build_schemas(entry, copy.deepcopy(SMALL_SPEC))["1"]["$comment"] == fingerprint
    edited = replace(entry, description="A user was created, again.")
    assert build_schemas(edited, SMALL_SPEC)["1"]["$comment"] != fingerprint
    spec_with_comment = {**SMALL_SPEC, "$comment": "the spec's own note"}
    assert build_schemas(entry, spec_with_comment)["1"]["$comment"] == fingerprint
    jsonschema.Draft7Validator.check_schema(schema)


def test_odd_but_valid_toml_loads(tmp_path: Path) -> None:
    text = (
        '"user.created".group = "user"\n'
        '"user.created".description = "Ein Nutzer wurde angelegt ✓ (ユーザー)."\n'
        f'[\'user.deleted\']\ndescription = """\n{"x" * 10_000}\n"""\n'
    )
    created, deleted = load_catalogue(write_catalogue(tmp_path, text)).entries
    assert created.description == "Ein Nutzer wurde angelegt ✓ (ユーザー)."
    assert deleted.description == "x" * 10_000


def test_a_catalogue_of_our_own_loads_with_its_examples(tmp_path: Path) -> None:
    text = (
        USER_CREATED
        + '\n["user.deleted"]\ngroup = "user"\ndescription = " A user was deleted. "\n'
        + "archived = true\ndeprecated = true\n"
    )
    path = write_catalogue(tmp_path, text, {"user.created": example_event()})
    catalogue = load_catalogue(path)
    created, deleted = catalogue.entries
    assert (created.archived, created.deprecated, created.example) == (
        None,
        False,
        json.loads(example_event()),
    )
    assert (deleted.description, deleted.archived, deleted.deprecated, deleted.example) == (
        "A user was deleted.",
        True,
        True,
        None,
    )
    assert catalogue_names(path) == {"user.created", "user.deleted"}


def test_catalogue_names_does_not_read_the_examples(tmp_path: Path) -> None:
    # At the function's start only the names matter: a broken example must not stop it.
    path = write_catalogue(tmp_path, USER_CREATED, {"user.created": "{not json"})
    assert catalogue_names(path) == {"user.created"}


# Mistakes, each with its message

BAD_CATALOGUES = [
    pytest.param(
        '["user created"]\ndescription = "x"\n',
        r'event-types\.toml, line 1, \["user created"\]: Svix refuses this event type name',
        id="name-with-a-space",
    ),
    pytest.param(
        f'["{"a" * 257}"]\ndescription = "x"\n',
        r"line 1, .*: Svix refuses this event type name: it must be 1 to 256 characters",
        id="name-too-long",
    ),
    pytest.param(
        '["user.created"]\ngroup = "user"\n',
        r'line 1, \["user.created"\]: description is missing',
        id="no-description",
    ),
    pytest.param(
        USER_CREATED + '["user.deleted"]\ndescription = "  "\n',
        r'line 4, \["user.deleted"\]: description is empty',
        id="blank-description",
    ),
    pytest.param(
        '["user.created"]\ndescription = 3\n',
        r'\["user.created"\]: description must be a string, not a number',
        id="description-not-a-string",
    ),
    pytest.param(
        '["user.created"]\ngroup = "user accounts"\ndescription = "x"\n',
        r"""\["user.created"\]: Svix refuses the group 'user accounts'""",
        id="group-svix-refuses",
    ),
    pytest.param(
        '["user.created"]\ngroup = ["user"]\ndescription = "x"\n',
        r'\["user.created"\]: group must be a string, not a list',
        id="group-not-a-string",
    ),
    pytest.param(
        '["user.created"]\ndescription = "x"\ngroupName = "user"\nschema = 1\n',
        r'\["user.created"\]: unknown keys groupName, schema \(known: archived, deprecated, '
        r"description, group\)",
        id="unknown-keys",
    ),
    pytest.param(
        '["user.created"]\ndescription = "x"\narchived = "yes"\n',
        r'\["user.created"\]: archived must be true or false, not a string',
        id="archived-not-a-boolean",
    ),
    pytest.param(
        '["user.created"]\ndescription = "x"\ndeprecated = 1\n',
        r'\["user.created"\]: deprecated must be true or false, not a number',
        id="deprecated-not-a-boolean",
    ),
    pytest.param(
        USER_CREATED + USER_CREATED,
        r"event-types\.toml: not valid TOML: .*line 4",
        id="a-name-listed-twice",
    ),
    pytest.param(
        '[user.created]\ndescription = "x"\n',
        r'\["user"\]: "created" is a table inside the type; quote dotted names, as in '
        r'\["user.created"\]',
        id="dotted-name-without-quotes",
    ),
    pytest.param(
        'description = "x"\n',
        r'event-types\.toml: "description" must be a table',
        id="a-key-outside-any-type",
    ),
    pytest.param(
        '["user.created"\ndescription = "x"\n',
        r"event-types\.toml: not valid TOML: .*line 1",
        id="not-toml",
    ),
    pytest.param(
        '["usér.created"]\ndescription = "x"\n',
        r'line 1, \["usér.created"\]: Svix refuses this event type name',
        id="name-not-ascii",
    ),
    pytest.param(
        '["com.gigs.user.created"]\ndescription = "x"\n',
        r'\["com.gigs.user.created"\]: the relay sends this type as "user.created"; list it '
        r"without the com.gigs. prefix",
        id="name-with-the-gigs-prefix",
    ),
    pytest.param(
        '["user.created"]\ndescription = "A user\\u0007 was created."\n',
        r'\["user.created"\]: description holds the control character U\+0007, which Svix '
        r"refuses",
        id="description-with-a-control-character",
    ),
]


@pytest.mark.parametrize(("text", "message"), BAD_CATALOGUES)
def test_a_bad_catalogue_is_refused_naming_the_type_and_the_problem(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write_catalogue(tmp_path, text)
    with pytest.raises(CatalogueError, match=message) as refused:
        load_catalogue(path)
    assert str(path) in str(refused.value)


BAD_EXAMPLES = [
    pytest.param(
        example_event("user.deleted"),
        r"user\.created\.json: the example of user\.created has type 'user\.deleted'",
        id="type-differs-from-the-file-name",
    ),
    pytest.param(
        example_event("com.gigs.user.created"),
        r"has type 'com\.gigs\.user\.created'",
        id="type-with-the-prefix",
    ),
    pytest.param(
        '{"type": "user.created",}',
        r"user\.created\.json: the example of user\.created is not valid JSON: .*line 1 column 25",
        id="not-json",
    ),
    pytest.param(
        '{"type": "user.created", "amount": NaN}',
        r"the example of user\.created is not valid JSON: NaN is not JSON",
        id="nan",
    ),
    pytest.param(
        '["user.created"]',
        r"the example of user\.created must be a JSON object",
        id="not-an-object",
    ),
]


@pytest.mark.parametrize(("body", "message"), BAD_EXAMPLES)
def test_a_bad_example_is_refused_naming_its_file(tmp_path: Path, body: str, message: str) -> None:
    path = write_catalogue(tmp_path, USER_CREATED, {"user.created": body})
    with pytest.raises(CatalogueError, match=message):
        load_catalogue(path)


def test_an_example_for_a_type_the_catalogue_lacks_is_refused(tmp_path: Path) -> None:
    path = write_catalogue(tmp_path, USER_CREATED, {"user.deleted": example_event("user.deleted")})
    with pytest.raises(
        CatalogueError, match=r"user\.deleted\.json: an example for user\.deleted, "
    ):
        load_catalogue(path)


def test_a_missing_catalogue_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match=r"absent\.toml: cannot read the catalogue"):
        catalogue_names(tmp_path / "absent.toml")
    with pytest.raises(CatalogueError, match=r"absent\.toml: cannot read the catalogue"):
        load_catalogue(tmp_path / "absent.toml")


BAD_SPECS = [
    pytest.param("{", r"the event spec is not valid JSON", id="not-json"),
    pytest.param("[]", r"the event spec must be a JSON object", id="not-an-object"),
    pytest.param('{"type": "object"}', r"the event spec has no `properties.type`", id="no-type"),
    pytest.param(
        '{"properties": {"type": "string"}}',
        r"the event spec has no `properties.type`",
        id="type-not-a-schema",
    ),
]


@pytest.mark.parametrize(("text", "message"), BAD_SPECS)
def test_a_bad_spec_is_refused_naming_it(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "spec.json"
    path.write_text(text)
    with pytest.raises(CatalogueError, match=rf"spec\.json: {message}"):
        load_spec(path)
    with pytest.raises(CatalogueError, match=r"absent\.json: cannot read the event spec"):
        load_spec(tmp_path / "absent.json")


def _own_events() -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(OWN_EVENTS.glob("*.json"))]
