"""Channel templates: what RELAY_CHANNELS accepts, and the channels an event gets."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
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


def test_characters_svix_refuses_are_replaced_and_the_same_channel_is_given_once():
    got = channels("{data.id},{data.other}", {"data": {"id": "a b/ç", "other": "a_b__"}})
    assert got == ["a_b__"]


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
