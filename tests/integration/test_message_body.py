"""The body the relay posts to Svix is the svix SDK's MessageIn, byte for byte, built without
importing svix (which costs most of a cold start).

The SDK's model stays the contract: every body here is compared with
`MessageIn(...).model_dump_json(exclude_unset=True, by_alias=True)`, and where pydantic refuses a
payload (lone surrogates, nesting past its limit) the relay refuses it too.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from relay.core.batch import IncomingEvent
from relay.core.channels import parse_channel_templates
from relay.core.errors import InvalidEvent
from relay.core.events import parse_event, public_payload
from relay.core.messages import OutgoingMessage, to_message
from tests.support import ROOT, own_events, shared_path

USER = own_events()["user-created"]
ROUTINGS = [None, "gigs-fixed-app"]
# Off, and the README's example plus one every event has.
CHANNELS = ["", "{data.object}:{data.id},user:{data.user.id},type:{type}"]


def sdk_body(message: OutgoingMessage) -> bytes:
    """What the svix SDK would post for this message."""
    from svix.api import ApplicationIn, MessageIn

    fields: dict[str, Any] = {
        "event_type": message.event_type,
        "event_id": message.svix_event_id,
        "payload": message.payload,
    }
    if message.channels:
        fields["channels"] = list(message.channels)
    if message.create_app_named:
        fields["application"] = ApplicationIn(
            name=message.create_app_named, uid=message.create_app_named
        )
    return MessageIn(**fields).model_dump_json(exclude_unset=True, by_alias=True).encode()


def sdk_refuses(payload: dict[str, Any]) -> bool:
    from svix.api import MessageIn

    try:
        MessageIn(event_type="t", payload=payload).model_dump_json(
            exclude_unset=True, by_alias=True
        )
    except ValueError:
        return True
    return False


def message_for(
    raw: dict[str, Any], fixed_app_id: str | None, channels: str = ""
) -> OutgoingMessage:
    incoming = IncomingEvent(0, raw, raw.get("id") or "evt_x", event=parse_event(raw))
    templates = parse_channel_templates(channels)
    return to_message(incoming, fixed_app_id=fixed_app_id, channel_templates=templates)


@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("fixed_app_id", ROUTINGS)
@pytest.mark.parametrize("name", sorted(own_events()))
def test_own_sample_events(name: str, fixed_app_id: str | None, channels: str):
    message = message_for(own_events()[name], fixed_app_id, channels)
    assert bool(message.channels) == bool(channels)
    assert message.body == sdk_body(message)


@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("fixed_app_id", ROUTINGS)
def test_the_fifty_gigs_fixture_events(fixed_app_id: str | None, channels: str):
    files = sorted(Path(shared_path("fixtures", "gigs-events")).glob("*.json"))
    assert len(files) == 50
    for path in files:
        message = message_for(json.loads(path.read_text()), fixed_app_id, channels)
        assert message.body == sdk_body(message), path.name


def test_channels_come_from_what_the_customer_sees():
    raw = {**USER, "internal": {"secret": "s1"}, "type": "com.gigs.user.created"}
    message = message_for(raw, None, "t:{type},{data.object}:{data.id},leak:{internal.secret}")
    assert message.channels == ("t:user.created", "user:usr_test0000000000000000000001")


FLOATS = [
    1e20, 1e-7, -0.0, 0.0, 5e-324, -5e-324, 1e-5, -1.5e-5, 1.2345e-6, 9.99e-10, 1e-10, 1e-4,
    1e15, 1e16, 1e17, 1.7976931348623157e308, 2.2250738585072014e-308, 0.1, 1 / 3, 100.0,
]  # fmt: skip


@pytest.mark.parametrize("value", FLOATS, ids=repr)
def test_floats_are_written_as_pydantic_writes_them(value: float):
    message = message_for({**USER, "data": {"v": value, "list": [value, -value]}}, None)
    assert message.body == sdk_body(message)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_floats_are_written_as_null_like_pydantic(value: float):
    # The request parser refuses them, but replayed or programmatic events may carry them.
    message = message_for({**USER, "data": {"v": value}}, None)
    assert message.body == sdk_body(message)
    assert b'"v":null' in message.body


def test_text_that_looks_like_a_float_exponent_is_left_alone():
    message = message_for({**USER, "data": {"note": "1e-05 and 2e-07", "e-0": [1e-05]}}, None)
    assert message.body == sdk_body(message)
    assert b'"note":"1e-05 and 2e-07"' in message.body


@pytest.mark.parametrize(
    "value",
    [2**63, 2**64, -(2**63) - 1, 10**300, -(10**4000), 10**5000, True, None],
    ids=[
        "2^63",
        "2^64",
        "-2^63-1",
        "10^300",
        "-10^4000",
        "10^5000 (past Python's 4300 digits)",
        "true",
        "null",
    ],
)
def test_big_integers_and_constants(value: object):
    message = message_for({**USER, "data": {"v": value}}, None)
    assert message.body == sdk_body(message)


def nested(depth: int, kind: str, leaf: object = 1) -> Any:
    value: Any = leaf
    for level in range(depth):
        value = {"n": value} if kind == "object" or (kind == "mixed" and level % 2) else [value]
    return value


@pytest.mark.parametrize("kind", ["object", "array", "mixed"])
@pytest.mark.parametrize("depth", [250, 252, 253, 254, 255, 300, 900])
@pytest.mark.parametrize("leaf", [1, {}, [], "x"], ids=["number", "object", "array", "text"])
def test_nesting_is_refused_exactly_where_pydantic_refuses_it(depth: int, kind: str, leaf: object):
    raw = {**USER, "data": {"x": nested(depth, kind, leaf)}}
    refused = sdk_refuses(raw)
    if refused:
        with pytest.raises(InvalidEvent, match="cannot be written as JSON"):
            message_for(raw, None)
    else:
        message = message_for(raw, None)
        assert message.body == sdk_body(message)
    assert refused == (
        depth >= 254
    )  # payload, data and 254 more: 256 levels  # the boundary itself is pinned, not only agreement


def test_many_shallow_containers_are_not_mistaken_for_deep_ones():
    raw = {**USER, "data": {"rows": [{"a": [1, {"b": []}]} for _ in range(2000)]}}
    message = message_for(raw, None)
    assert message.body == sdk_body(message)


@pytest.mark.parametrize(
    "data",
    [{"name": "\ud800"}, {"\udfff": 1}, {"pair": "\ud83d\ude00"}, {"list": ["ok", "\udc00"]}],
)
def test_lone_surrogates_are_refused_like_pydantic_refuses_them(data: dict[str, Any]):
    raw = {**USER, "data": data}
    assert sdk_refuses(raw)
    with pytest.raises(InvalidEvent, match="cannot be written as JSON"):
        message_for(raw, None)


# ---- any payload ---------------------------------------------------------------------------------

odd_text = st.lists(
    st.sampled_from(
        [
            "a",
            "é",
            '"',
            "\\",
            "/",
            "\x00",
            "\x1f",
            "\x7f",
            "\n",
            "\t",
            "\u2028",
            "\ufeff",
            "😀",
            "\ud800",
            "\udfff",
            "e-0",
            "1e-05",
            "{",
            "[",
        ]
    ),
    max_size=8,
).map("".join)
any_text = st.text(max_size=12) | odd_text
numbers = (
    st.integers()
    | st.integers(min_value=-(10**60), max_value=10**60)
    | st.floats()
    | st.sampled_from(FLOATS)
)
json_values = st.recursive(
    st.none() | st.booleans() | numbers | any_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
    max_leaves=25,
)
deep_values = st.builds(
    nested,
    st.integers(min_value=248, max_value=258),
    st.sampled_from(["object", "array", "mixed"]),
    json_values,
)
event_ids = st.sampled_from(["evt_1", "..", "a:b", "x" * 257, "evt_sha256_" + "0" * 40]) | any_text
projects = st.sampled_from(["acme-mobile", "beta.telco", "p" * 256]) | any_text


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    data=json_values | deep_values,
    extra=st.dictionaries(any_text, json_values, max_size=3),
    event_id=event_ids,
    project=projects,
    fixed_app_id=st.sampled_from(ROUTINGS),
)
@example(data={"": {"\\": [1e-7, -0.0, 5e-324, 1e20]}}, extra={}, event_id="..", project="a",
         fixed_app_id=None)  # fmt: skip
def test_any_payload_is_the_sdks_body_or_refused_like_the_sdk_refuses_it(
    data: Any, extra: dict[str, Any], event_id: str, project: str, fixed_app_id: str | None
):
    raw = {**extra, **USER, "id": event_id, "project": project, "data": {"x": data}}
    try:
        parse_event(raw)
    except InvalidEvent:
        assume(False)  # not an event (an extra field of the wrong shape): nothing to map
    try:
        message = message_for(raw, fixed_app_id)
    except InvalidEvent as refusal:
        if "cannot be written as JSON" in str(refusal):
            assert sdk_refuses(public_payload(raw))
        else:  # refused for its routing: nothing about the body to compare
            assert fixed_app_id is None
        return
    assert message.body == sdk_body(message)


# ---- off the request path ----------------------------------------------------------------------


def test_mapping_an_event_does_not_import_svix():
    program = f"""
import json, sys
from relay.core.events import parse_event
from relay.core.batch import IncomingEvent
from relay.core.messages import to_message
raw = json.loads({json.dumps(json.dumps(USER))})
message = to_message(IncomingEvent(0, raw, raw["id"], event=parse_event(raw)), fixed_app_id=None)
assert message.body.startswith(b'{{"eventId":'), message.body[:40]
loaded = sorted(m for m in sys.modules if m == "svix" or m.startswith("svix."))
print(json.dumps(loaded))
"""
    done = subprocess.run(
        [sys.executable, "-c", program],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(done.stdout) == []
