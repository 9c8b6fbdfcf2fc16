"""The Eventarc variant: `relay_event` takes the Pub/Sub message as a CloudEvent and shares all
the delivery logic with `relay`. Returning acknowledges; raising makes Eventarc redeliver."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support import own_events, push_envelope

EVENTS = own_events()
USER = EVENTS["user-created"]
CE_HEADERS = {
    "ce-id": "1",
    "ce-source": "//pubsub.googleapis.com/projects/p/topics/gigs-events",
    "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
    "ce-specversion": "1.0",
    "Content-Type": "application/json",
}


@pytest.fixture
def eventarc(make_relay: Any) -> Any:
    return make_relay(target="relay_event", RELAY_TIME_BUDGET_SECONDS="0.5")


def send(client: Any, data: object) -> int:
    status: int = client.post("/", data=json.dumps(data), headers=CE_HEADERS).status_code
    return status


def test_an_event_is_delivered_once_even_when_redelivered(eventarc: Any, svix: Any):
    assert send(eventarc, push_envelope(USER)) == 200
    assert send(eventarc, push_envelope(USER)) == 200
    assert len(svix.messages()) == 1


def test_an_array_goes_to_each_projects_application(eventarc: Any, svix: Any):
    assert send(eventarc, push_envelope(list(EVENTS.values()))) == 200
    assert svix.stats()["messages_per_app"] == {"acme-mobile": 3, "beta-telco": 1}


def test_a_transient_failure_raises_so_eventarc_redelivers(eventarc: Any, svix: Any, capsys: Any):
    svix.set_faults(errors=[{"status": 503, "probability": 1.0}])
    assert send(eventarc, push_envelope(USER)) == 500  # functions-framework's answer to a raise
    assert "raising for a CloudEvent so that Eventarc delivers it again" in capsys.readouterr().out
    svix.set_faults()
    assert send(eventarc, push_envelope(USER)) == 200
    assert len(svix.messages()) == 1


def test_a_permanent_failure_without_parking_raises_too(eventarc: Any, svix: Any):
    assert send(eventarc, push_envelope({"object": "event", "id": "evt_no_type"})) == 500
    assert svix.messages() == []


def test_data_with_no_pubsub_message_is_not_acked(eventarc: Any, capsys: Any):
    assert send(eventarc, {"unexpected": True}) == 500
    assert "not a Pub/Sub message envelope" in capsys.readouterr().out


def test_a_batch_over_the_event_limit_is_not_acked(make_relay: Any, svix: Any):
    client = make_relay(target="relay_event", RELAY_MAX_EVENTS_PER_REQUEST="3")
    assert send(client, push_envelope([USER] * 4)) == 500
    assert svix.messages() == []
