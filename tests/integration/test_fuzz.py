"""Whatever arrives, the relay answers with JSON and a deliberate status: never a 500."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import own_events

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
EVENT_WITH_DATA_X = '{"object": "event", "id": "e", "type": "t", "project": "p", "data": {"x": X}}'
ALLOWED = {200, 400, 404, 405, 413, 422, 429, 503}

# Text as JSON can carry it: lone surrogates ("\ud800") and control characters included.
odd_text = st.lists(
    st.sampled_from(["a", "é", "\ud800", "\udfff", "\x00", "\n", "😀"]), max_size=6
).map("".join)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | odd_text,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
event_like = st.fixed_dictionaries(
    {},
    optional={
        "object": st.just("event") | json_values,
        "id": st.text(max_size=30) | odd_text | json_values,
        "type": st.sampled_from(["user.created", "com.gigs.user.created", "", "bad type"])
        | json_values,
        "project": st.sampled_from(["acme-mobile", "", "a/b"]) | json_values,
        "data": json_values,
        "time": json_values,
    },
)


def check(response: Any) -> None:
    assert response.status_code in ALLOWED, (response.status_code, response.get_data()[:300])
    body = response.get_json()
    assert isinstance(body, dict)
    if response.status_code != 200:
        assert "error" in body


@FUZZ
@given(body=st.binary(max_size=300))
def test_arbitrary_bytes(relay: Any, body: bytes) -> None:
    check(relay.post("/", data=body))


@FUZZ
@given(document=json_values)
def test_arbitrary_json(relay: Any, document: object) -> None:
    check(relay.post("/", data=json.dumps(document)))


@FUZZ
@given(events=st.lists(event_like, max_size=3), wrap=st.booleans(), extra=json_values)
def test_event_shaped_json_wrapped_or_not(
    relay: Any, events: list, wrap: bool, extra: object
) -> None:
    body: object = events
    if wrap:
        body = {
            "message": {
                "data": base64.b64encode(json.dumps(events).encode()).decode(),
                "attributes": extra,
            },
            "subscription": extra,
            "deliveryAttempt": extra,
        }
    check(relay.post("/notifications", data=json.dumps(body)))


@FUZZ
@given(data=st.binary(max_size=200), message_id=json_values)
def test_arbitrary_pubsub_data(relay: Any, data: bytes, message_id: object) -> None:
    envelope = {"message": {"data": base64.b64encode(data).decode(), "messageId": message_id}}
    check(relay.post("/", data=json.dumps(envelope)))


def test_a_known_event_still_goes_through_after_fuzzing(relay: Any, svix: Any) -> None:
    event = own_events()["user-created"]
    assert relay.post("/", data=json.dumps(event)).status_code == 200
    assert len(svix.messages()) == 1


@FUZZ
@given(depth=st.integers(min_value=1, max_value=3000), wrap=st.booleans())
def test_deep_nesting(relay: Any, depth: int, wrap: bool) -> None:
    nested = "[" * depth + "]" * depth
    body = EVENT_WITH_DATA_X.replace("X", nested).encode()
    if wrap:
        body = json.dumps(
            {"message": {"data": base64.b64encode(body).decode(), "messageId": "1"}}
        ).encode()
    check(relay.post("/", data=body))


def test_non_standard_numbers_are_refused_not_passed_on_as_null(relay: Any, svix: Any) -> None:
    for number in ("NaN", "Infinity", "-Infinity", "1e400"):
        response = relay.post("/", data=EVENT_WITH_DATA_X.replace("X", number))
        assert response.status_code == 400, number
    assert svix.messages() == []


@pytest.fixture
def limited_relay(make_relay: Any) -> Any:
    return make_relay(RELAY_MAX_EVENTS_PER_REQUEST="3")


@FUZZ
@given(
    count=st.integers(min_value=0, max_value=6),
    shape=st.sampled_from(["direct", "wrapped", "unwrapped"]),
    spacing=st.sampled_from(["", " ", "\n"]),
)
def test_batches_around_the_event_limit(
    limited_relay: Any, count: int, shape: str, spacing: str
) -> None:
    event = own_events()["user-created"]
    data = ("[" + spacing + f",{spacing}".join([json.dumps(event)] * count) + "]").encode()
    headers = {"x-goog-pubsub-message-id": "5"} if shape == "unwrapped" else {}
    if shape == "wrapped":
        message = {"data": base64.b64encode(data).decode(), "messageId": "5"}
        data = json.dumps({"message": message}).encode()
    response = limited_relay.post("/", data=data, headers=headers)
    check(response)
    if count <= 3:
        assert response.status_code == 200
    else:
        # Too many for one request: a direct caller can split it; a Pub/Sub message is poison.
        assert response.status_code == (413 if shape == "direct" else 400)
        assert "more than 3 events, the limit" in response.get_json()["error"]
