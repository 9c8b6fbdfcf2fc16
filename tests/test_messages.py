"""Mapping events to Svix messages: routing, the public payload, ids and idempotency keys."""

from __future__ import annotations

import copy

import pytest

from relay.events import InvalidEvent, parse_event, public_payload
from relay.intake import IncomingEvent
from relay.messages import (
    MAX_PAYLOAD_BYTES,
    PayloadTooLarge,
    idempotency_key,
    svix_event_id,
    to_message,
)
from tests.conftest import own_events

EVENTS = own_events()


def incoming(raw: dict, position: int = 0) -> IncomingEvent:
    return IncomingEvent(position, raw, raw.get("id", "evt_x"), event=parse_event(raw))


def test_routes_by_project_and_asks_svix_to_create_the_application():
    message = to_message(incoming(EVENTS["user-created"]), fixed_app_id=None)
    assert message.app_id == "acme-mobile"
    assert message.create_app_named == "acme-mobile"
    assert message.event_type == "user.created"
    assert message.svix_event_id == EVENTS["user-created"]["id"]


def test_a_fixed_application_wins_over_the_project():
    message = to_message(incoming(EVENTS["user-created"]), fixed_app_id="app_fixed")
    assert message.app_id == "app_fixed"
    assert message.create_app_named is None


def test_the_prefixed_type_is_delivered_under_its_short_name_and_internals_are_stripped():
    raw = EVENTS["subscription-activated-prefixed"]
    message = to_message(incoming(raw), fixed_app_id=None)
    assert message.event_type == "subscription.activated"
    assert message.payload["type"] == "subscription.activated"
    assert "_routing" not in message.payload
    assert message.payload["data"] == raw["data"]


def test_unknown_fields_previous_data_and_actor_reach_the_customer():
    raw = EVENTS["payment-succeeded-with-previous"]
    payload = to_message(incoming(raw), fixed_app_id=None).payload
    assert payload["newFieldNobodyKnowsYet"] == {"kept": True}
    assert payload["previousData"] == {"status": "pending"}
    assert payload["actor"] == {"type": "system", "id": "billing"}


def test_public_payload_does_not_change_the_event_it_reads():
    raw = copy.deepcopy(EVENTS["subscription-activated-prefixed"])
    public_payload(raw)
    assert raw == EVENTS["subscription-activated-prefixed"]


def test_the_idempotency_key_is_deterministic_per_application_and_event():
    assert idempotency_key("app", "evt_1") == idempotency_key("app", "evt_1")
    assert idempotency_key("app", "evt_1") != idempotency_key("app", "evt_2")
    assert idempotency_key("app", "evt_1") != idempotency_key("other", "evt_1")
    assert not idempotency_key("app", "evt_1").startswith("auto_")


def test_an_event_id_svix_would_refuse_becomes_a_stable_digest():
    assert svix_event_id("evt_ok-1.2") == "evt_ok-1.2"
    odd = svix_event_id("evt:with/slash")
    assert odd == svix_event_id("evt:with/slash")
    assert odd.startswith("evt_sha256_") and ":" not in odd


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"project": None}, "no `project`"),
        ({"project": "has space"}, "not a valid Svix application uid"),
        ({"type": "user created!"}, "not a valid Svix event type"),
    ],
)
def test_events_no_retry_can_deliver(change: dict, reason: str):
    raw = {**EVENTS["user-created"], **change}
    with pytest.raises(InvalidEvent, match=reason):
        to_message(incoming(raw), fixed_app_id=None)


def test_a_payload_over_one_mebibyte_is_refused_before_svix_sees_it():
    raw = {**EVENTS["user-created"], "data": {"blob": "x" * MAX_PAYLOAD_BYTES}}
    with pytest.raises(PayloadTooLarge, match="over Svix's limit"):
        to_message(incoming(raw), fixed_app_id=None)


def test_a_payload_that_cannot_be_written_as_json_is_refused_not_crashed_on():
    lone = {**EVENTS["user-created"], "data": {"name": "\ud800"}}
    with pytest.raises(InvalidEvent, match="cannot be written as JSON"):
        to_message(incoming(lone), fixed_app_id=None)
    deep: dict = {}
    node = deep
    for _ in range(300):
        node["n"] = {}
        node = node["n"]
    with pytest.raises(InvalidEvent, match="cannot be written as JSON"):
        to_message(incoming({**EVENTS["user-created"], "data": deep}), fixed_app_id=None)


def test_an_id_with_a_lone_surrogate_or_a_newline_gets_a_digest():
    assert svix_event_id("evt_\ud800").startswith("evt_sha256_")
    assert svix_event_id("evt_1\n").startswith("evt_sha256_")
    assert idempotency_key("app", "evt_\ud800") == idempotency_key("app", "evt_\ud800")
