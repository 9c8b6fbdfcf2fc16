"""What `event-types sync` checks before Svix sees anything: that each schema is a JSON Schema
draft 7 (Svix refuses others), that each example fits its type's schema, and that the examples
customers see hold nothing of what the relay keeps from them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema

from tests.support.event_types_sync import (
    CATALOGUE_NAMES,
    SMALL_SPEC,
    copy_catalogue,
    held,
    sync,
    write_spec,
)


def test_a_spec_that_is_no_json_schema_exits_2_and_changes_nothing(
    svix: Any, relay_env: dict[str, str], tmp_path: Path
) -> None:
    spec = json.loads(json.dumps(SMALL_SPEC))
    spec["properties"]["id"]["type"] = "text"  # no JSON Schema type
    path = write_spec(tmp_path, spec)
    status, out, err = sync(relay_env, "--spec", str(path))
    assert status == 2 and out == []
    assert f"error: {path}: the schema built for addon.created is not a JSON Schema draft 7" in err
    assert "properties.id.type: 'text' is not valid" in err
    assert held(svix) == {}


def test_an_example_that_does_not_fit_its_schema_exits_2_naming_it(
    svix: Any, env: dict[str, str], tmp_path: Path
) -> None:
    catalogue = copy_catalogue(tmp_path)
    example_file = catalogue.parent / "examples" / "user.created.json"
    example = json.loads(example_file.read_text())
    del example["id"]
    example_file.write_text(json.dumps(example))
    status, out, err = sync(env, "--catalogue", str(catalogue))
    assert status == 2 and out == []
    assert f"error: {example_file}: the example of user.created does not fit its schema" in err
    assert "'id' is a required property" in err
    assert held(svix) == {}


def test_every_schema_svix_gets_is_draft_7_with_examples_that_fit(
    svix: Any, env: dict[str, str]
) -> None:
    status, _, err = sync(env)
    assert status == 0, err
    types = held(svix)
    assert sorted(types) == CATALOGUE_NAMES
    for name, event_type in types.items():
        schema = event_type["schemas"]["1"]
        jsonschema.Draft7Validator.check_schema(schema)
        assert schema["examples"], name
        for example in schema["examples"]:
            jsonschema.Draft7Validator(schema).validate(example)


def test_what_the_relay_keeps_from_customers_stays_out_of_the_examples(
    svix: Any, env: dict[str, str], tmp_path: Path
) -> None:
    catalogue = copy_catalogue(tmp_path)
    example_file = catalogue.parent / "examples" / "payment.failed.json"
    example = json.loads(example_file.read_text())
    internal = {
        "internal": {"ledger": "secret"},
        "attributes": {"origin": "billing"},
        "_routing": {"shard": 3},
        "messageId": "123",
        "publishTime": "2026-02-05T10:00:06Z",
        "subscription": "projects/p/subscriptions/s",
    }
    example_file.write_text(json.dumps({**example, **internal}))
    status, _, err = sync(env, "--catalogue", str(catalogue))
    assert status == 0, err
    shown = held(svix)["payment.failed"]["schemas"]["1"]["examples"]
    assert shown == [example]
