"""`event-types sync` against a Svix that does not answer as the emulator does: schemas given back
in another form than sent, fields it does not keep, types changed by someone else between the
listing and the sync's calls, 429s with every form of Retry-After, 5xx. A proxy of ours in front
of the emulator plays that Svix; the sync runs as the on-call runs it."""

from __future__ import annotations

import email.utils
import json
import time
from pathlib import Path
from typing import Any

import pytest
from svix import Svix
from svix.api import EventTypeDeleteOptions, EventTypeIn

from tests.support.event_types_sync import (
    CATALOGUE_NAMES,
    copy_catalogue,
    created_lines,
    held,
    summary,
    sync,
)
from tests.support.svix_proxy import Answer, Call, SvixProxy, rate_limited


def listed_types(call: Call, body: Any) -> list[dict[str, Any]]:
    return body["data"] if call.method == "GET" and "data" in body else []


def reversed_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: reversed_keys(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [reversed_keys(item) for item in value]
    return value


def with_draft_declared(schema: dict[str, Any]) -> dict[str, Any]:
    return {"$schema": "http://json-schema.org/draft-07/schema#", **schema}


def with_example_moved(schema: dict[str, Any]) -> dict[str, Any]:
    # OpenAPI's singular `example`, as a portal might keep it.
    moved = dict(schema)
    moved["example"] = moved.pop("examples")[0]
    return moved


@pytest.mark.parametrize(
    "reshape",
    [
        pytest.param(reversed_keys, id="keys-in-another-order"),
        pytest.param(with_draft_declared, id="draft-declared"),
        pytest.param(with_example_moved, id="example-moved"),
    ],
)
def test_schemas_given_back_in_another_form_are_in_sync(
    svix: Any, env: dict[str, str], reshape: Any
) -> None:
    assert sync(env)[0] == 0

    def rewrite(call: Call, body: Any) -> Any:
        for event_type in listed_types(call, body):
            event_type["schemas"]["1"] = reshape(event_type["schemas"]["1"])
        return body

    with SvixProxy(svix.url, rewrite=rewrite) as proxy:
        status, out, err = sync({**env, "SVIX_SERVER_URL": proxy.url})
    assert status == 0, err
    assert out == [summary(unchanged=len(CATALOGUE_NAMES)), "Svix is in sync with the catalogue"]
    assert [call.method for call in proxy.calls] == ["GET"]


def test_a_field_svix_does_not_keep_is_said_once_written(svix: Any, env: dict[str, str]) -> None:
    # A Svix without groups (as the open-source server): every sync would set them again.
    def without_groups(call: Call, body: Any) -> Any:
        for event_type in [*listed_types(call, body), body]:
            event_type.pop("groupName", None)
        return body

    with SvixProxy(svix.url, rewrite=without_groups) as proxy:
        status, out, err = sync({**env, "SVIX_SERVER_URL": proxy.url})
        assert status == 0, err
        assert out[: len(CATALOGUE_NAMES)] == created_lines(CATALOGUE_NAMES)
        warned = [line for line in err.splitlines() if line.startswith("warning: ")]
        assert warned == [
            f"warning: Svix did not keep the group of {name} as sent: every sync will set it again"
            for name in CATALOGUE_NAMES
        ]
        status, out, err = sync({**env, "SVIX_SERVER_URL": proxy.url})
    assert status == 0, err
    assert out[0] == f"~ {CATALOGUE_NAMES[0]}  group"
    assert "warning: Svix did not keep the group of" in err


def test_a_type_expunged_before_its_update_is_created_again(
    svix: Any, env: dict[str, str], sdk: Svix, tmp_path: Path
) -> None:
    catalogue = copy_catalogue(tmp_path)
    assert sync(env, "--catalogue", str(catalogue))[0] == 0
    text = catalogue.read_text()
    for old in ("A user was deleted from your project.", "A user's details changed"):
        assert old in text
        text = text.replace(old, "Changed: " + old)
    catalogue.write_text(text)

    def expunge_user_deleted(call: Call) -> None:
        if call.method == "PATCH" and call.route.endswith("/user.deleted"):
            sdk.event_type.delete("user.deleted", EventTypeDeleteOptions(expunge=True))

    with SvixProxy(svix.url, before=expunge_user_deleted) as proxy:
        status, out, err = sync(
            {**env, "SVIX_SERVER_URL": proxy.url}, "--catalogue", str(catalogue)
        )
    assert status == 0, err
    assert out[:2] == ["+ user.deleted  created", "~ user.updated  description, schemas"]
    types = held(svix)
    assert types["user.deleted"]["description"] == "Changed: A user was deleted from your project."
    assert types["user.deleted"]["groupName"] == "user"
    assert types["user.deleted"]["schemas"]["1"]["title"] == "user.deleted"
    assert types["user.updated"]["description"].startswith("Changed: ")
    status, out, _ = sync(env, "--catalogue", str(catalogue))
    assert status == 0 and out[-1] == "Svix is in sync with the catalogue"


def test_a_type_created_by_someone_else_meanwhile_is_made_the_catalogues(
    svix: Any, env: dict[str, str], sdk: Svix
) -> None:
    # A relay instance creates the types it meets bare; one may do so between listing and POST.
    def create_it_bare(call: Call) -> None:
        if call.method == "POST" and json.loads(call.body or b"{}").get("name") == "user.created":
            sdk.event_type.create(EventTypeIn(name="user.created", description="Bare."))

    with SvixProxy(svix.url, before=create_it_bare) as proxy:
        status, out, err = sync({**env, "SVIX_SERVER_URL": proxy.url})
    assert status == 0, err
    assert out[: len(CATALOGUE_NAMES)] == created_lines(CATALOGUE_NAMES)
    user_created = held(svix)["user.created"]
    assert user_created["description"] == "A user was created in your project."
    assert user_created["groupName"] == "user"
    assert user_created["schemas"]["1"]["properties"]["type"]["const"] == "user.created"
    assert sync(env)[1][-1] == "Svix is in sync with the catalogue"


def http_date(seconds_from_now: float) -> str:
    return email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)


# Each form, and the least the sync must wait before its next call.
RETRY_AFTER_FORMS = [
    pytest.param(lambda: "1", 1.0, id="seconds"),
    pytest.param(lambda: "0", 0.1, id="zero"),
    pytest.param(lambda: "-5", 0.1, id="negative"),
    pytest.param(lambda: "0.5", 0.5, id="fractional"),
    # An HTTP date counts whole seconds: two from now is more than one.
    pytest.param(lambda: http_date(2), 1.0, id="http-date"),
    pytest.param(lambda: http_date(-60), 0.1, id="http-date-past"),
    pytest.param(lambda: "soon", 0.4, id="garbage"),  # the backoff's first step, jitter off
    pytest.param(lambda: None, 0.4, id="absent"),
]


@pytest.mark.parametrize(("retry_after", "least_wait"), RETRY_AFTER_FORMS)
def test_a_rate_limit_is_waited_out_whatever_its_retry_after(
    svix: Any, env: dict[str, str], retry_after: Any, least_wait: float
) -> None:
    refused: list[Call] = []

    def refuse_the_first_create(call: Call) -> Answer | None:
        if call.method != "POST" or refused:
            return None
        refused.append(call)
        value = retry_after()
        return Answer(429, headers={} if value is None else {"retry-after": value})

    with SvixProxy(svix.url, refuse=refuse_the_first_create) as proxy:
        status, out, err = sync({**env, "SVIX_SERVER_URL": proxy.url})
    assert status == 0, err
    assert out[: len(CATALOGUE_NAMES)] == created_lines(CATALOGUE_NAMES)
    posts = proxy.calls_of("POST")
    assert len(posts) == len(CATALOGUE_NAMES) + 1
    assert posts[1].at - posts[0].at >= least_wait
    assert sorted(held(svix)) == CATALOGUE_NAMES


@pytest.mark.parametrize(
    "retry_after", [pytest.param("7200", id="seconds"), pytest.param("", id="http-date")]
)
def test_a_rate_limit_longer_than_a_sync_waits_stops_at_once_saying_so(
    svix: Any, env: dict[str, str], retry_after: str
) -> None:
    value = retry_after or http_date(3600)
    with SvixProxy(svix.url, refuse=rate_limited(100, value)) as proxy:
        started = time.monotonic()
        status, out, err = sync({**env, "SVIX_SERVER_URL": proxy.url})
        took = time.monotonic() - started
    assert status == 2 and out == []
    assert "error: Svix rate-limited the sync and asks to wait " in err
    assert "run the sync again after that" in err
    assert proxy.refused == 1  # not asked again before Svix said
    assert took < 20  # less than the longest wait the sync would take (30 s)


def test_a_5xx_blip_is_retried(svix: Any, env: dict[str, str]) -> None:
    answered: list[Call] = []

    def one_503(call: Call) -> Answer | None:
        if call.method == "POST" and not answered:
            answered.append(call)
            return Answer(503, b'{"code":"unavailable","detail":"Try again"}')
        return None

    with SvixProxy(svix.url, refuse=one_503) as proxy:
        status, _, err = sync({**env, "SVIX_SERVER_URL": proxy.url})
    assert status == 0, err
    assert proxy.refused == 1
    assert sorted(held(svix)) == CATALOGUE_NAMES


def test_a_lasting_5xx_stops_with_what_is_done_printed_and_the_next_run_finishes(
    svix: Any, env: dict[str, str]
) -> None:
    def refuse_subscription_created(call: Call) -> Answer | None:
        name = json.loads(call.body or b"{}").get("name") if call.method == "POST" else None
        if name == "subscription.created":
            return Answer(502, b'{"code":"bad_gateway","detail":"Bad gateway"}')
        return None

    stop = CATALOGUE_NAMES.index("subscription.created")
    with SvixProxy(svix.url, refuse=refuse_subscription_created) as proxy:
        status, out, err = sync({**env, "SVIX_SERVER_URL": proxy.url})
    assert status == 2
    assert out == created_lines(CATALOGUE_NAMES[:stop])
    assert "error: Svix refused to create event type subscription.created (502)" in err
    assert proxy.refused == 4  # the SDK's own three quick retries
    status, out, err = sync(env)
    assert status == 0, err
    assert out == [
        *created_lines(CATALOGUE_NAMES[stop:]),
        summary(created=len(CATALOGUE_NAMES) - stop, unchanged=stop),
    ]
