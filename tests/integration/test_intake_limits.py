"""What a request may cost: a batch over the event limit is refused after decoding one event past
it, not after decoding all of them; a Pub/Sub message over it is poison, parked rather than
nacked until it dead-letters."""

from __future__ import annotations

import base64
import json
import tracemalloc
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay.core.errors import MalformedRequest, RequestTooLarge
from relay.core.jsontext import NotJson, decode_json
from relay.pubsub.push import read_request
from tests.support import own_events, push_envelope, unique_name

USER = own_events()["user-created"]
MIB = 1024 * 1024


def empty_objects(size: int) -> bytes:
    """A JSON array of `{}` that is `size` bytes long (give or take two)."""
    return ("[" + ",".join(["{}"] * (size // 3)) + "]").encode()


def peak_while(call: Any) -> tuple[int, Any]:
    """The most memory allocated at once while `call` ran, and what it raised or returned."""
    tracemalloc.start()
    try:
        try:
            outcome: Any = call()
        except Exception as exc:  # noqa: BLE001 - the caller looks at it
            outcome = exc
        return tracemalloc.get_traced_memory()[1], outcome
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(("size", "bound"), [(2 * MIB, 3 * MIB), (16 * MIB, 20 * MIB)])
def test_a_direct_post_over_the_event_limit_is_refused_before_it_is_all_decoded(
    size: int, bound: int
):
    body = empty_objects(size)
    peak, outcome = peak_while(lambda: read_request(body, {}, max_events=1000))
    # The text the body decodes to is most of it (one byte a character here); no event list.
    assert peak < bound, f"{peak / MIB:.1f} MiB for a {size / MIB:.0f} MiB body"
    assert isinstance(outcome, RequestTooLarge)
    assert str(outcome) == "request carries more than 1000 events, the limit"


def test_a_pubsub_message_over_the_event_limit_is_unreadable_and_cheap():
    data = empty_objects(12 * MIB)
    envelope = json.dumps(push_envelope(data, message_id="31")).encode()
    del data
    peak, batch = peak_while(lambda: read_request(envelope, {}, max_events=1000))
    assert peak < 40 * MIB, f"{peak / MIB:.1f} MiB for a {len(envelope) / MIB:.0f} MiB envelope"
    assert batch.unreadable == "message carries more than 1000 events, the limit"
    assert batch.events == []
    assert batch.source.message_id == "31"
    assert batch.data.startswith(b"[{},{}")  # parked as it was published


def test_an_unwrapped_push_over_the_event_limit_is_unreadable():
    body = json.dumps([USER] * 4).encode()
    batch = read_request(body, {"x-goog-pubsub-message-id": "9"}, max_events=3)
    assert batch.unreadable == "message carries more than 3 events, the limit"
    assert batch.data == body
    assert batch.source is not None and batch.source.message_id == "9"


@pytest.mark.parametrize("spacing", ["", " ", "\n\t\r "])
def test_the_limit_counts_events_exactly(spacing: str):
    def body(n: int) -> bytes:
        events = f"{spacing},{spacing}".join([json.dumps(USER)] * n)
        return f"{spacing}[{spacing}{events}{spacing}]{spacing}".encode()

    assert len(read_request(body(3), {}, max_events=3).events) == 3
    with pytest.raises(RequestTooLarge, match="more than 3 events, the limit"):
        read_request(body(4), {}, max_events=3)


# Pieces of JSON text, valid and not: the element-by-element decoder must take and refuse exactly
# what decoding the whole document takes and refuses, arrays and near-arrays above all.
pieces = st.sampled_from(
    [
        *("[", "]", ",", " ", "\n", "\t", "{}", '{"a":1}', "1", "-0.5e3", '"x"', '"\\ud800"'),
        *("null", "NaN", "Infinity", "1e400", "01", "[]", ",]", "x", '"', "\x0b", "\ufeff", "[["),
        "]]",
    ]
)
elements = st.sampled_from(
    ["{}", '{"a":[1,{}]}', "1", "-0.5e3", '"x"', '"\\ud800"', "null", "[[]]"]
)
spaces = st.sampled_from(["", " ", "\n", "\t\r "])


@st.composite
def arrays_and_near_misses(draw: st.DrawFn) -> str:
    items = draw(st.lists(elements, max_size=5))
    text = draw(spaces) + "[" + draw(spaces)
    text += "".join(
        item + (draw(spaces) + "," + draw(spaces) if n < len(items) - 1 else "")
        for n, item in enumerate(items)
    )
    text += draw(spaces) + "]" + draw(spaces)
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(text)))
        cut = draw(st.integers(0, 2))
        text = text[:at] + draw(pieces | st.just("")) + text[at + cut :]
    return text


def whole_document(data: bytes) -> object:
    try:
        return ("ok", decode_json(data))
    except NotJson:
        return "not json"


@settings(max_examples=600, deadline=None)
@given(text=arrays_and_near_misses() | st.lists(pieces, max_size=12).map("".join))
def test_decoding_element_by_element_takes_what_decoding_the_whole_takes(text: str):
    data = text.encode("utf-8", "surrogatepass")
    try:
        counted: object = ("ok", decode_json(data, max_items=1000))
    except NotJson:
        counted = "not json"
    assert counted == whole_document(data)


@settings(max_examples=300, deadline=None)
@given(encoded=st.text(alphabet="AQIw+/=\n -_é", min_size=1, max_size=12))
def test_message_data_is_base64_exactly_when_strict_base64_decoding_takes_it(encoded: str):
    try:
        base64.b64decode(encoded, validate=True)
        readable = True
    except ValueError:  # binascii.Error is one
        readable = False
    envelope = {"message": {"data": encoded, "messageId": "1"}, "subscription": "s"}
    batch = read_request(json.dumps(envelope).encode(), {}, max_events=10)
    assert (batch.unreadable != "message data is not valid base64") == readable


def test_limits_apply_to_utf16_bodies_too():
    body = json.dumps([USER] * 4).encode("utf-16")
    with pytest.raises(RequestTooLarge):
        read_request(body, {}, max_events=3)
    assert len(read_request(body, {}, max_events=4).events) == 4


def test_garbage_after_the_limit_is_not_read_and_garbage_before_it_is_refused():
    with pytest.raises(RequestTooLarge):
        read_request(b"[1,2,3,4 this is not JSON", {}, max_events=3)
    with pytest.raises(MalformedRequest, match="not JSON"):
        read_request(b"[1,2 x,3,4]", {}, max_events=3)
    with pytest.raises(MalformedRequest, match="not JSON"):
        read_request(b"[1,2] x", {}, max_events=3)


def test_over_http_a_direct_post_gets_413_and_a_pubsub_message_400(make_relay: Any, svix: Any):
    relay = make_relay(RELAY_MAX_EVENTS_PER_REQUEST="3")
    direct = relay.post("/", data=json.dumps([USER] * 4))
    assert direct.status_code == 413
    assert direct.get_json()["error"] == "request carries more than 3 events, the limit"
    pushed = relay.post("/", data=json.dumps(push_envelope([USER] * 4)))
    # Without a parking topic an unreadable message is refused as such (relay/delivery).
    assert pushed.status_code == 400
    assert pushed.get_json()["error"] == "message carries more than 3 events, the limit"
    assert svix.messages() == []


def test_a_pubsub_message_over_the_event_limit_is_parked_and_acked(
    make_relay: Any, svix: Any, pubsub: Any, monkeypatch: pytest.MonkeyPatch
):
    for name, value in pubsub.env().items():
        monkeypatch.setenv(name, value)
    topic = pubsub.create_topic(unique_name("parking"))
    subscription = pubsub.create_pull_subscription(unique_name("parking-sub"), topic)
    relay = make_relay(RELAY_PARKING_TOPIC=topic, RELAY_MAX_EVENTS_PER_REQUEST="3")
    data = json.dumps([USER] * 4).encode()
    response = relay.post("/", data=json.dumps(push_envelope(data, message_id="808")))
    assert response.status_code == 200, response.get_json()
    (parked,) = pubsub.pull_all(subscription, quiet_seconds=0.5, timeout=20, min_messages=1)
    assert parked.data == data
    assert parked.attributes["relay_parked_reason"] == (
        "message carries more than 3 events, the limit"
    )
    assert parked.attributes["relay_event_id"] == "message:808"
    assert svix.messages() == []
