"""Exactly once past Svix's windows, through the function: a push whose publishTime is older
than the idempotency key's 12 hours is looked up by its eventId before it is created."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from tests.support import own_events, push_envelope

HOURS = 3600
USER = own_events()["user-created"]


def post(relay: Any, envelope: dict) -> Any:
    return relay.post("/", data=json.dumps(envelope), content_type="application/json")


def ago(hours: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(hours=hours)


def test_a_redelivery_after_both_windows_is_found_not_created_again(relay: Any, svix: Any):
    event = {**USER, "id": "evt_past_windows_1"}
    assert post(relay, push_envelope(event, message_id="71", published=ago(0))).status_code == 200
    svix.advance_clock(25 * HOURS)  # Svix has forgotten both the key and the eventId
    again = post(relay, push_envelope(event, message_id="71", published=ago(25)))
    assert again.status_code == 200
    assert [e["outcome"] for e in again.get_json()["events"]] == ["duplicate"]
    assert [m["eventId"] for m in svix.messages()] == ["evt_past_windows_1"]


def test_an_array_past_the_windows_whose_first_event_was_delivered(relay: Any, svix: Any):
    first = {**USER, "id": "evt_past_windows_a"}
    second = {**USER, "id": "evt_past_windows_b"}
    assert post(relay, push_envelope(first, published=ago(0))).status_code == 200
    svix.advance_clock(25 * HOURS)
    both = post(relay, push_envelope([first, second], message_id="72", published=ago(25)))
    assert both.status_code == 200
    assert [e["outcome"] for e in both.get_json()["events"]] == ["duplicate", "delivered"]
    assert sorted(m["eventId"] for m in svix.messages()) == [
        "evt_past_windows_a",
        "evt_past_windows_b",
    ]


def test_a_fresh_push_makes_one_request(relay: Any, svix: Any):
    before = svix.stats()["requests"]
    event = {**USER, "id": "evt_fresh_1"}
    assert post(relay, push_envelope(event, published=ago(0))).status_code == 200
    assert svix.stats()["requests"] - before == 1
