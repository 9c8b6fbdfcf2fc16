"""`python -m relay event-types sync` as the on-call runs it: a process of its own against the
Svix emulator, reading the repository's catalogue (or a copy of it, edited)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from svix import Svix
from svix.api import EventTypeDeleteOptions, EventTypeIn

from tests.support import SHARED, run_python
from tests.support.event_types_sync import (
    CATALOGUE_NAMES,
    copy_catalogue,
    created_lines,
    held,
    summary,
    sync,
)
from tests.support.svix_proxy import SvixProxy, rate_limited


@pytest.fixture
def catalogue_copy(tmp_path: Path) -> Path:
    return copy_catalogue(tmp_path)


def test_a_first_sync_creates_every_type_of_the_catalogue(svix: Any, env: dict[str, str]) -> None:
    status, out, err = sync(env)
    assert status == 0, err
    count = len(CATALOGUE_NAMES)
    assert out == [
        *created_lines(CATALOGUE_NAMES),
        f"event types: {count} created, 0 updated, 0 unchanged, 0 kept archived, 0 only in Svix",
    ]
    types = held(svix)
    assert sorted(types) == CATALOGUE_NAMES
    created = types["subscription.activated"]
    assert (
        created["description"] == "A subscription was activated: its SIM can now use the network."
    )
    assert created["groupName"] == "subscription"
    assert created["archived"] is False and created["deprecated"] is False
    schema = created["schemas"]["1"]
    assert schema["title"] == "subscription.activated"
    assert schema["properties"]["type"]["const"] == "subscription.activated"
    assert schema["examples"][0]["type"] == "subscription.activated"


def test_the_schemas_built_from_the_gigs_spec_hold_examples_that_fit(
    svix: Any, relay_env: dict[str, str]
) -> None:
    spec = SHARED / "fixtures" / "event-spec.json"
    if not spec.exists():
        pytest.skip("needs ../shared/fixtures/event-spec.json (the Gigs event spec), absent here")
    status, _, err = sync({**relay_env, "RELAY_EVENT_SPEC": ""}, "--spec", str(spec))
    assert status == 0, err
    for name, event_type in held(svix).items():
        schema = event_type["schemas"]["1"]
        jsonschema.Draft7Validator.check_schema(schema)
        assert schema["examples"], name
        for example in schema["examples"]:
            jsonschema.Draft7Validator(schema).validate(example)


def test_a_second_sync_changes_nothing(svix: Any, env: dict[str, str]) -> None:
    assert sync(env)[0] == 0
    before, requests = held(svix), svix.stats()["requests"]
    status, out, err = sync(env)
    assert status == 0, err
    assert out == [
        f"event types: 0 created, 0 updated, {len(CATALOGUE_NAMES)} unchanged, 0 kept archived, "
        "0 only in Svix",
        "Svix is in sync with the catalogue",
    ]
    assert svix.stats()["requests"] == requests + 1  # one page of the listing, nothing else
    assert held(svix) == before
    status, verbose, _ = sync(env, "--verbose")
    assert status == 0 and verbose[: len(CATALOGUE_NAMES)] == [f"= {n}" for n in CATALOGUE_NAMES]


def test_an_edited_description_is_one_update(
    svix: Any, env: dict[str, str], catalogue_copy: Path
) -> None:
    assert sync(env, "--catalogue", str(catalogue_copy))[0] == 0
    before, requests = held(svix), svix.stats()["requests"]
    text = catalogue_copy.read_text()
    old = 'description = "A user was deleted from your project."'
    assert old in text
    catalogue_copy.write_text(text.replace(old, 'description = "A user was removed."'))
    status, out, err = sync(env, "--catalogue", str(catalogue_copy))
    assert status == 0, err
    # The description is also the schema's: both differ, in one update.
    assert out[0] == "~ user.deleted  description, schemas"
    assert out[1].startswith("event types: 0 created, 1 updated, ")
    assert svix.stats()["requests"] == requests + 2  # the listing and one update
    after = held(svix)
    assert after["user.deleted"]["description"] == "A user was removed."
    assert after["user.deleted"]["schemas"]["1"]["description"] == "A user was removed."
    assert {n: t for n, t in after.items() if n != "user.deleted"} == {
        n: t for n, t in before.items() if n != "user.deleted"
    }


def test_a_type_archived_in_svix_stays_archived_until_the_catalogue_says_otherwise(
    svix: Any, env: dict[str, str], sdk: Svix, catalogue_copy: Path
) -> None:
    assert sync(env, "--catalogue", str(catalogue_copy))[0] == 0
    sdk.event_type.delete("user.deleted")  # archived by hand
    status, out, err = sync(env, "--catalogue", str(catalogue_copy))
    assert status == 0, err
    assert out[0] == "! user.deleted  archived in Svix, kept archived"
    assert out[1].endswith(" 1 kept archived, 0 only in Svix")
    assert held(svix)["user.deleted"]["archived"] is True

    header = '["user.deleted"]\n'
    text = catalogue_copy.read_text()
    catalogue_copy.write_text(text.replace(header, header + "archived = false\n"))
    status, out, err = sync(env, "--catalogue", str(catalogue_copy))
    assert status == 0, err
    assert out[0] == "~ user.deleted  archived"
    assert held(svix)["user.deleted"]["archived"] is False

    catalogue_copy.write_text(text.replace(header, header + "archived = true\n"))
    assert sync(env, "--catalogue", str(catalogue_copy))[1][0] == "~ user.deleted  archived"
    assert held(svix)["user.deleted"]["archived"] is True


def test_a_type_only_in_svix_is_left_alone(svix: Any, env: dict[str, str], sdk: Svix) -> None:
    sdk.event_type.create(EventTypeIn(name="sim.swapped", description="Created by the relay."))
    before = held(svix)["sim.swapped"]
    status, out, err = sync(env)
    assert status == 0, err
    assert "? sim.swapped  only in Svix: left alone" in out
    assert out[-1].endswith(" 0 kept archived, 1 only in Svix")
    assert held(svix)["sim.swapped"] == before


def test_a_dry_run_changes_nothing_and_prints_the_same_diff(svix: Any, env: dict[str, str]) -> None:
    status, dry, err = sync(env, "--dry-run")
    assert status == 0, err
    assert dry[-1] == "dry run: nothing was changed in Svix"
    assert held(svix) == {}
    status, real, err = sync(env)
    assert status == 0, err
    assert real == dry[:-1]
    assert len(held(svix)) == len(CATALOGUE_NAMES)


def test_a_dry_run_prints_the_lines_the_real_run_then_prints(
    svix: Any, env: dict[str, str], sdk: Svix, catalogue_copy: Path
) -> None:
    catalogue = ("--catalogue", str(catalogue_copy))
    assert sync(env, *catalogue)[0] == 0
    sdk.event_type.delete("addon.created", EventTypeDeleteOptions(expunge=True))
    sdk.event_type.delete("user.deleted")  # archived by hand
    sdk.event_type.create(EventTypeIn(name="sim.swapped", description="Created by the relay."))
    text = catalogue_copy.read_text()
    catalogue_copy.write_text(text.replace("A user's details changed", "A user changed"))
    status, dry, err = sync(env, "--dry-run", *catalogue)
    assert status == 0 and err == ""
    assert dry == [
        "+ addon.created  created",
        "? sim.swapped  only in Svix: left alone",
        "! user.deleted  archived in Svix, kept archived",
        "~ user.updated  description, schemas",
        "event types: 1 created, 1 updated, 14 unchanged, 1 kept archived, 1 only in Svix",
        "dry run: nothing was changed in Svix",
    ]
    status, real, err = sync(env, *catalogue)
    assert status == 0 and err == ""  # stdout is the diff alone
    assert real == dry[:-1]
    assert sync(env, *catalogue)[1][-1] == "Svix is in sync with the catalogue"


def test_the_token_is_never_printed(svix: Any, env: dict[str, str]) -> None:
    for token, status in ((svix.token, 0), ("testsk_not_the_emulators_token", 2)):
        for dry_run in ([], ["--dry-run"]):
            done = run_python(
                ["-m", "relay", "--verbose", "event-types", "sync", *dry_run],
                {**env, "SVIX_AUTH_TOKEN": token},
            )
            assert done.returncode == status, done.stderr
            assert token not in done.stdout + done.stderr
    assert "(401)" in done.stderr


def test_a_bad_catalogue_exits_2_naming_the_line_and_type_and_changes_nothing(
    svix: Any, env: dict[str, str], catalogue_copy: Path
) -> None:
    text = catalogue_copy.read_text()
    catalogue_copy.write_text(text + '\n["sim.swapped"]\ngroup = "sim"\n')
    line = len(text.splitlines()) + 2
    status, out, err = sync(env, "--catalogue", str(catalogue_copy))
    assert status == 2
    assert out == []
    assert f'event-types.toml, line {line}, ["sim.swapped"]: description is missing' in err
    assert held(svix) == {}
    assert "Traceback" not in err


def test_a_name_listed_twice_exits_2_naming_the_line(
    svix: Any, env: dict[str, str], catalogue_copy: Path
) -> None:
    text = catalogue_copy.read_text()
    catalogue_copy.write_text(text + '\n["user.created"]\ndescription = "Again."\n')
    status, _, err = sync(env, "--catalogue", str(catalogue_copy))
    assert status == 2
    assert "event-types.toml: not valid TOML: " in err
    assert f"line {len(text.splitlines()) + 2}" in err


def test_without_a_spec_the_sync_exits_2_saying_what_it_needs(
    svix: Any, env: dict[str, str]
) -> None:
    status, out, err = sync({**env, "RELAY_EVENT_SPEC": ""})
    assert status == 2 and out == []
    assert "give --spec FILE or set RELAY_EVENT_SPEC" in err
    assert held(svix) == {}


def test_svix_down_exits_2(env: dict[str, str]) -> None:
    # A port that is bound but never listens refuses every connection, and stays ours meanwhile.
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{unused.getsockname()[1]}"
        status, out, err = sync({**env, "SVIX_SERVER_URL": down})
    assert status == 2 and out == []
    assert "error: could not list the event types in Svix: ConnectError" in err
    assert "Traceback" not in err


def test_rate_limits_are_waited_out(svix: Any, env: dict[str, str]) -> None:
    with SvixProxy(svix.url, refuse=rate_limited(3, "0")) as proxy:
        status, out, err = sync({**env, "SVIX_SERVER_URL": proxy.url})
    assert status == 0, err
    assert out == [
        *created_lines(CATALOGUE_NAMES),
        summary(created=len(CATALOGUE_NAMES)),
    ]
    assert proxy.refused == 3
    assert sorted(held(svix)) == CATALOGUE_NAMES


def test_rate_limits_without_retry_after_back_off(svix: Any, env: dict[str, str]) -> None:
    with SvixProxy(svix.url, refuse=rate_limited(1, None)) as proxy:
        status, _, err = sync({**env, "SVIX_SERVER_URL": proxy.url})
    assert status == 0, err
    assert proxy.refused == 1


def test_a_rate_limit_that_lasts_exits_2(svix: Any, env: dict[str, str]) -> None:
    with SvixProxy(svix.url, refuse=rate_limited(100, "0")) as proxy:
        status, out, err = sync({**env, "SVIX_SERVER_URL": proxy.url})
    assert status == 2 and out == []
    assert "error: Svix refused to list the event types (429)" in err
    assert proxy.refused == 5  # the first try and four more
    assert held(svix) == {}
