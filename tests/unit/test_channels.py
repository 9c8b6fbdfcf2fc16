"""Channel templates: what RELAY_CHANNELS accepts, and the channels an event gets."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from relay.core.channels import (
    MAX_CHANNEL_LENGTH,
    MAX_CHANNELS,
    channels_for,
    parse_channel_templates,
)

SVIX_CHANNEL = re.compile(r"^[a-zA-Z0-9\-_.:+]+$")

SUBSCRIPTION = {
    "type": "subscription.activated",
    "project": "acme",
    "data": {"object": "subscription", "id": "sub_1", "user": {"object": "user", "id": "usr_9"}},
}
USER = {"type": "user.created", "data": {"object": "user", "id": "usr_9"}}


def channels(text: str, payload: dict[str, Any]) -> list[str]:
    return channels_for(parse_channel_templates(text), payload)


def test_the_documented_example_gives_the_resource_and_its_user():
    example = "{data.object}:{data.id},user:{data.user.id}"
    assert channels(example, SUBSCRIPTION) == ["subscription:sub_1", "user:usr_9"]
    # A user event has no data.user: it just gets fewer channels.
    assert channels(example, USER) == ["user:usr_9"]


def test_an_event_lacking_every_field_gets_no_channel():
    assert channels("{data.object}:{data.id}", {"type": "x", "data": None}) == []
    assert channels("{data.object}:{data.id}", {"type": "x"}) == []


@pytest.mark.parametrize("value", [None, "", True, 1.5, {"id": "x"}, ["a"]], ids=repr)
def test_a_field_that_names_no_resource_gives_no_channel(value: object):
    assert channels("user:{data.id}", {"data": {"id": value}}) == []


def test_an_integer_is_written_as_digits():
    assert channels("n:{data.id}", {"data": {"id": 42}}) == ["n:42"]


def test_the_same_channel_from_two_templates_is_given_once():
    got = channels("{data.id},{data.other},r:{data.id}", {"data": {"id": "a", "other": "a"}})
    assert got == ["a", "r:a"]


def test_characters_svix_refuses_are_replaced_and_a_digest_keeps_the_value_apart():
    # "a b/ç" must not share a channel with "a_b__": an endpoint on one would get the other's.
    [refused] = channels("r:{data.id}", {"data": {"id": "a b/ç"}})
    [plain] = channels("r:{data.id}", {"data": {"id": "a_b__"}})
    assert plain == "r:a_b__"
    assert refused.startswith("r:a_b__+") and SVIX_CHANNEL.match(refused)
    assert refused != plain
    [alone] = channels("{data.id}", {"data": {"id": "a b/ç"}})
    both = channels("{data.id},{data.other}", {"data": {"id": "a b/ç", "other": "a_b__"}})
    assert both == [alone, "a_b__"]


def test_long_values_that_differ_only_in_refused_characters_keep_apart():
    [a] = channels("r:{data.id}", {"data": {"id": "x" * 200 + "é"}})
    [b] = channels("r:{data.id}", {"data": {"id": "x" * 200 + "ç"}})
    assert len(a) == len(b) == MAX_CHANNEL_LENGTH
    assert a != b


@given(first=st.text(min_size=1), second=st.text(min_size=1))
@example(first="a b", second="a_b")
@example(first="ä", second="ö")
@example(first="x" * 120 + "é", second="x" * 120 + "ç")
def test_two_values_never_share_a_channel(first: str, second: str):
    assume(first != second)
    [a] = channels("user:{data.id}", {"data": {"id": first}})
    [b] = channels("user:{data.id}", {"data": {"id": second}})
    assert a != b


def test_a_huge_value_costs_no_more_than_the_channel_it_gives():
    # The payload may hold a megabyte in the field a template names (ten times over).
    huge = {"data": {"id": "é" * (1 << 20)}}
    templates = parse_channel_templates(",".join(f"c{i}:{{data.id}}" for i in range(MAX_CHANNELS)))
    started = time.process_time()
    got = channels_for(templates, huge)
    took = time.process_time() - started
    assert len(got) == MAX_CHANNELS
    assert all(SVIX_CHANNEL.match(c) and len(c) == MAX_CHANNEL_LENGTH for c in got)
    assert took < 0.3, f"{took:.2f} s of CPU for one event's channels"


def test_an_integer_too_long_to_write_gives_no_channel():
    # Past Python's 4,300 digits str() refuses; the mapping writes such payloads all the same.
    assert channels("n:{data.id},t:{type}", {"type": "x", "data": {"id": 10**5000}}) == ["t:x"]


def test_a_long_value_is_cut_to_svix_length_and_keeps_long_values_apart():
    long_a = {"data": {"id": "x" * 200 + "a"}}
    long_b = {"data": {"id": "x" * 200 + "b"}}
    [a] = channels("r:{data.id}", long_a)
    [b] = channels("r:{data.id}", long_b)
    assert len(a) == len(b) == MAX_CHANNEL_LENGTH
    assert a != b
    assert channels("r:{data.id}", long_a) == [a]  # stable


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (",".join(f"c{i}:{{data.id}}" for i in range(MAX_CHANNELS + 1)), "at most 10"),
        ("user:usr", "names no event field"),
        ("user {data.id}", "characters Svix does not take"),
        ("user:{data.id", "unmatched brace"),
        ("{data..id}", "is not a field path"),
        ("{}", "is not a field path"),
        ("{data.id},{data.id}", "listed twice"),
    ],
)
def test_a_bad_template_is_refused_saying_why(text: str, says: str):
    with pytest.raises(ValueError, match=re.escape(says)):
        parse_channel_templates(text)


def test_ten_templates_and_blank_entries_are_accepted():
    text = ", ,".join(f"c{i}:{{data.id}}" for i in range(MAX_CHANNELS))
    assert len(parse_channel_templates(text)) == MAX_CHANNELS


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)


@given(
    data=st.dictionaries(st.sampled_from(["object", "id", "user"]), json_values),
    prefix=st.from_regex(SVIX_CHANNEL, fullmatch=True).filter(lambda s: len(s) < 20),
)
def test_every_channel_given_is_one_svix_accepts(data: dict[str, Any], prefix: str):
    templates = f"{prefix}{{data.id}},{{data.object}}:{{data.id}},{{data.user.id}}"
    got = channels(templates, {"data": data})
    assert len(got) == len(set(got)) <= MAX_CHANNELS
    assert all(SVIX_CHANNEL.match(c) and len(c) <= MAX_CHANNEL_LENGTH for c in got)
