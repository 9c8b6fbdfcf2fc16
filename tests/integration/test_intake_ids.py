"""Ids for events that come without one: from their content and their occurrence among identical
copies in the same message, never from where they stand in it. A redelivery, a reordered copy,
a replay from a JSONL file with one event a line: the same events get the same ids."""

from __future__ import annotations

import base64
import json
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay.core.errors import MalformedRequest
from relay.core.events import _canonical_json_without_recursion, canonical_json, derived_event_id
from relay.pubsub.push import read_request
from tests.support import own_events, push_envelope

NO_ID = own_events()["porting-updated-no-id"]
A = NO_ID
B = {**NO_ID, "data": {**NO_ID["data"], "status": "pending"}}
C = {**NO_ID, "type": "com.gigs.porting.updated"}


def ids(document: object) -> list[str]:
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    return [e.event_id for e in read_request(body, {}, max_events=1000).events]


def test_a_reordered_batch_is_not_delivered_twice(relay: Any, svix: Any):
    assert relay.post("/", data=json.dumps([A, B])).status_code == 200
    again = relay.post("/", data=json.dumps(push_envelope([B, A], message_id="2")))
    assert again.status_code == 200, again.get_json()
    stored = svix.messages()
    assert len(stored) == 2
    assert {m["eventId"] for m in stored} == {e["id"] for e in again.get_json()["events"]}


def test_identical_copies_are_told_apart_by_occurrence_not_by_position():
    first = ids([A, A, B])
    assert len(set(first)) == 3
    assert sorted(ids([B, A, A])) == sorted(first)
    assert ids([B, A, A])[0] == first[2]  # b is b#0 wherever it stands
    assert ids([A])[0] == first[0]


def test_a_jsonl_file_of_one_arrays_events_replays_without_duplicates(relay: Any, svix: Any):
    assert relay.post("/", data=json.dumps([A, B, C])).status_code == 200
    # What `replay --file` and `reconcile --events-file` do with each line: read it as the data
    # of a Pub/Sub message of its own.
    lines = [json.dumps(event).encode() for event in (C, A, B)]
    batches = [
        read_request(line, {"x-goog-pubsub-message-id": f"line-{n}"}, max_events=10_000)
        for n, line in enumerate(lines, start=1)
    ]
    assert {e.event_id for b in batches for e in b.events} == set(ids([A, B, C]))
    for batch in batches:
        assert relay.application_state.relay.handle(batch).done
    assert len(svix.messages()) == 3


def test_a_lone_event_keeps_the_id_it_was_given_before_ids_counted_copies():
    # Redeliveries that straddle an upgrade must still dedup: a lone event is copy 0 and was
    # at position 0, and both spell the digest's input the same way.
    assert ids(NO_ID) == ["evt_derived_81b1165e726d81c8f9c827ad049d64bb"]
    assert ids([NO_ID, NO_ID])[0] == "evt_derived_81b1165e726d81c8f9c827ad049d64bb"


def test_events_that_are_not_objects_get_content_ids_too():
    first = ids([5, "x", 5])
    assert all(i.startswith("evt_derived_") for i in first)
    assert len(set(first)) == 3
    assert sorted(ids(["x", 5, 5])) == sorted(first)


id_less_event = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["porting.updated", "com.gigs.user.created"]),
        "project": st.sampled_from(["acme-mobile", "beta-telco"]),
        "data": st.dictionaries(
            st.sampled_from(["status", "n", "é", "\ud800"]),
            st.integers(0, 2) | st.sampled_from(["a", "😀", 1.5]),
            max_size=2,
        ),
    },
    optional={"id": st.sampled_from(["", None, 7])},
)


def _key(event: object) -> str:
    return json.dumps(event, sort_keys=True)


def _encode(messages: list[list[Any]], rng: random.Random) -> list[bytes]:
    """Each message as Pub/Sub or a direct caller might send it: key order, spacing and the
    envelope differ, the events do not."""
    bodies = []
    for events in messages:
        data = json.dumps(
            [dict(rng.sample(list(e.items()), len(e))) for e in events],
            indent=rng.choice([None, 2]),
            ensure_ascii=rng.random() < 0.5,
        ).encode("utf-8", "surrogatepass")
        if rng.random() < 0.5:
            message = {"data": base64.b64encode(data).decode(), "messageId": str(rng.random())}
            data = json.dumps({"message": message, "subscription": "s"}).encode()
        bodies.append(data)
    return bodies


@settings(max_examples=200, deadline=None)
@given(
    distinct=st.lists(id_less_event, min_size=1, max_size=5, unique_by=_key),
    data=st.data(),
)
def test_any_order_and_any_split_that_keeps_copies_together_gives_the_same_ids(
    distinct: list[dict[str, Any]], data: st.DataObject
):
    copies = data.draw(st.lists(st.integers(1, 3), min_size=len(distinct), max_size=len(distinct)))
    groups = [[event] * n for event, n in zip(distinct, copies, strict=True)]
    whole = [event for group in groups for event in group]
    reference = ids(whole)
    assert len(set(reference)) == len(whole)  # identical copies stay separate events
    assert sorted(ids(data.draw(st.permutations(whole)))) == sorted(reference)

    parts = data.draw(st.integers(1, len(groups)))
    messages: list[list[Any]] = [[] for _ in range(parts)]
    for group in groups:
        messages[data.draw(st.integers(0, parts - 1))].extend(group)
    rng = random.Random(data.draw(st.integers(0, 2**32)))
    bodies = _encode([data.draw(st.permutations(m)) for m in messages if m], rng)
    assert sorted(i for body in bodies for i in ids(body)) == sorted(reference)


def _at_depth(frames: int, call: Any) -> Any:
    return call() if frames == 0 else _at_depth(frames - 1, call)


def _deep_event(depth: int) -> Any:
    """The one event of a body whose data is nested `depth` deep, or None when refused."""
    body = json.dumps({**NO_ID, "data": {"deep": []}}).replace("[]", "[" * depth + "]" * depth)
    try:
        return read_request(body.encode(), {}, max_events=10).events[0]
    except MalformedRequest as exc:
        if "nested too deeply" not in str(exc):
            raise
        return None


def _deepest_readable() -> int:
    """The deepest nesting the decoder takes from where read_request runs it (about 990 on
    CPython 3.11, whose recursion limit is 1000)."""
    readable, refused = 1, 1_000_000
    while refused - readable > 1:
        middle = (readable + refused) // 2
        readable, refused = (middle, refused) if _deep_event(middle) else (readable, middle)
    return readable


def test_a_deeply_nested_event_gets_a_content_id_whatever_the_stack_depth():
    # Events just inside the decoder's limit: deeper than a dump of them can go from the stack
    # where ids are made, or from 200 frames further down.
    deepest = _deepest_readable()
    for depth in range(deepest - 60, deepest + 1):
        event = _deep_event(depth)
        assert event is not None
        assert event.event_id.startswith("evt_derived_")
        assert event.event_id == derived_event_id(canonical_json(event.raw), occurrence=0)
        deeper = _at_depth(200, lambda raw=event.raw: canonical_json(raw))
        assert deeper == canonical_json(event.raw)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.sampled_from('a"\\é\ud800\x00\n😀/'), max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=15,
)


@settings(max_examples=300, deadline=None)
@given(value=json_values)
def test_the_canonical_form_made_without_recursion_is_what_dumping_gives(value: object):
    dumped = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert _canonical_json_without_recursion(value) == dumped
    assert canonical_json(value) == dumped


def test_a_value_too_deep_for_any_recursion_limit_still_has_a_canonical_form():
    depth = 100_000
    nested: object = {"b": 1, "a": "é"}
    for _ in range(depth):
        nested = [nested]
    assert canonical_json(nested) == "[" * depth + '{"a":"é","b":1}' + "]" * depth


@pytest.mark.parametrize("occurrence", [0, 1, 7])
def test_derived_ids_keep_their_form(occurrence: int):
    event_id = derived_event_id(canonical_json(NO_ID), occurrence=occurrence)
    assert event_id.startswith("evt_derived_")
    assert len(event_id) == len("evt_derived_") + 32
