"""Reading requests: the three shapes, the metadata, and what is refused with which reason."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from relay.core.errors import MalformedRequest, RequestTooLarge
from relay.core.jsontext import _encoding
from relay.pubsub.push import read_request
from tests.support import own_events, push_envelope

EVENT = own_events()["user-created"]


def read(body: bytes | str | object, headers: dict[str, str] | None = None, max_events: int = 100):
    raw = (
        body
        if isinstance(body, bytes)
        else (body.encode() if isinstance(body, str) else json.dumps(body).encode())
    )
    return read_request(raw, headers or {}, max_events=max_events)


def test_wrapped_push_with_one_event_keeps_the_metadata():
    batch = read(push_envelope(EVENT, message_id="42", attributes={"k": "v"}, delivery_attempt=3))
    assert batch.unreadable is None
    assert [e.event_id for e in batch.events] == [EVENT["id"]]
    assert batch.events[0].event is not None
    assert batch.source is not None
    assert batch.source.message_id == "42"
    assert batch.source.delivery_attempt == 3
    assert batch.source.attributes == {"k": "v"}
    assert batch.source.subscription.endswith("/gigs-events-svix-relay")
    assert json.loads(batch.data) == EVENT


def test_wrapped_push_with_an_array_of_events():
    events = list(own_events().values())
    batch = read(push_envelope(events))
    assert [e.position for e in batch.events] == list(range(len(events)))


def test_unwrapped_push_reads_metadata_headers_and_ignores_content_type():
    batch = read(
        EVENT,
        {
            "x-goog-pubsub-message-id": "77",
            "x-goog-pubsub-subscription-name": "projects/p/subscriptions/s",
            "content-type": "application/x-www-form-urlencoded",
        },
    )
    assert batch.source is not None and batch.source.message_id == "77"
    assert batch.events[0].event_id == EVENT["id"]


def test_bare_event_and_bare_array():
    assert len(read(EVENT).events) == 1
    assert len(read([EVENT, EVENT]).events) == 2
    assert read([]).events == []


def test_event_without_id_gets_a_stable_derived_id_that_tells_identical_copies_apart():
    event = own_events()["porting-updated-no-id"]
    first = read(push_envelope([event, event], message_id="1")).events
    again = read(push_envelope([event, event], message_id="2")).events
    assert first[0].event_id.startswith("evt_derived_")
    assert first[0].event_id == again[0].event_id
    assert first[0].event_id != first[1].event_id


def test_an_invalid_event_is_a_problem_of_that_event_only():
    batch = read([EVENT, {"object": "event", "id": "evt_no_type"}, 5])
    assert batch.events[0].problem is None
    assert batch.events[1].problem == "event has no `type`"
    assert batch.events[1].event_id == "evt_no_type"
    assert batch.events[2].problem == "an event must be a JSON object, got a number"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "request body is empty"),
        (b"   \n", "request body is empty"),
        (b"{not json", "request body is not JSON"),
        (b"\xff\xfe", "request body is not JSON"),
        (b"42", "got a number"),
        (b'"text"', "got a string"),
        (b"null", "got null"),
        (json.dumps({"subscription": "projects/p/subscriptions/s"}).encode(), "has no `message`"),
        (json.dumps({"message": "x"}).encode(), "`message` must be an object"),
    ],
)
def test_malformed_requests_say_what_is_wrong(body: bytes, reason: str):
    with pytest.raises(MalformedRequest, match=reason):
        read(body)


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ({"messageId": "1"}, "has no data"),
        ({"data": "%%%notbase64", "messageId": "1"}, "not valid base64"),
        ({"data": base64.b64encode(b"not json").decode(), "messageId": "1"}, "not JSON"),
        ({"data": base64.b64encode(b"7").decode(), "messageId": "1"}, "got a number"),
        ({"data": 12, "messageId": "1"}, "not a base64 string"),
    ],
)
def test_a_push_whose_message_cannot_be_read_is_marked_unreadable(message: dict, reason: str):
    batch = read({"message": message, "subscription": "projects/p/subscriptions/s"})
    assert batch.unreadable is not None and reason in batch.unreadable
    assert batch.source is not None and batch.source.message_id == "1"


def test_unwrapped_push_with_garbage_is_unreadable_not_malformed():
    batch = read(b"\x00garbage", {"x-goog-pubsub-message-id": "9"})
    assert batch.unreadable is not None and "not JSON" in batch.unreadable
    assert batch.data == b"\x00garbage"


def test_too_many_events_in_one_request():
    with pytest.raises(RequestTooLarge, match="more than 2 events, the limit"):
        read([EVENT, EVENT, EVENT], max_events=2)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"type": "user.created", "data": {"a": NaN}}', "NaN is not JSON"),
        (b'{"type": "user.created", "data": {"a": -Infinity}}', "-Infinity is not JSON"),
        (b'{"type": "user.created", "data": {"a": 1e400}}', "too large"),
        (b"[" * 100_000, "nested too deeply"),
    ],
)
def test_json_that_would_reach_customers_changed_or_not_at_all_is_refused(body: bytes, reason: str):
    with pytest.raises(MalformedRequest, match=reason):
        read(body)


@pytest.mark.parametrize("attempt", ["\u00b2", "9" * 5000, "-1", True, 2.5])
def test_odd_delivery_attempts_are_ignored(attempt: object):
    envelope = {**push_envelope(EVENT), "deliveryAttempt": attempt}
    assert read(envelope).source.delivery_attempt is None


def test_lone_surrogates_still_get_a_stable_derived_id():
    raw = '{"type": "user.created", "project": "p", "data": {"a": "\\ud800"}}'
    first = read(raw.encode()).events[0].event_id
    assert first == read(raw.encode()).events[0].event_id
    assert first.startswith("evt_derived_")


@given(
    st.binary(max_size=6)
    | st.lists(st.sampled_from(list(b"{[ \x00\xff\xfe\xef\xbb\xbf")), max_size=6).map(bytes)
)
@example(b"{\x00")
@example(b"[\x00\x00\x00")
@example(b"{\x00a")
def test_bodies_are_decoded_in_the_encoding_json_detects(data: bytes):
    # A shortcut takes `{` and `[` for UTF-8 at once: it must agree with json's own detection.
    assert _encoding(data) == json.detect_encoding(data)
