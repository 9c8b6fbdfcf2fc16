"""The customer's side of delivery, through the emulator: the event types the catalogue lacks
are created once per instance, an archived type's events are parked saying why, and channels
reach the message when RELAY_CHANNELS asks for them."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from svix.api import EventTypeIn, MessageListOptions, Svix, SvixOptions

from relay.bootstrap import build_relay
from relay.core.errors import SettingsError
from relay.core.outcomes import Outcome
from relay.delivery.service import Relay
from relay.pubsub.push import read_request
from relay.settings import load_settings
from relay.svix.direct import DirectSvixSender
from relay.svix.sdk import SdkSvixSender
from tests.support import own_events, push_envelope, servers
from tests.support.fakes import CollectingParkingLot
from tests.support.servers import ScriptedServer

USER = own_events()["user-created"]
_SAMPLE = own_events()["subscription-activated-prefixed"]
# The user's subscription: its data names the user, as Gigs' subscription events do.
SUBSCRIPTION = {
    **_SAMPLE,
    "data": {**_SAMPLE["data"], "user": {"object": "user", "id": USER["data"]["id"]}},
}
NEW_TYPE = "sim.swapped"  # not in the catalogue


@pytest.fixture(params=["direct", "sdk"])
def relay_env(relay_env: dict[str, str], request: pytest.FixtureRequest) -> dict[str, str]:
    return {**relay_env, "RELAY_SVIX_CLIENT": request.param}


@pytest.fixture
def svix_api(svix: Any) -> Iterator[Svix]:
    client = Svix(svix.token, SvixOptions(server_url=svix.url))
    yield client
    client._httpx_client.close()


@pytest.fixture
def make_service(relay_env: dict[str, str]) -> Iterator[Any]:
    made: list[Relay] = []

    def make(parking: CollectingParkingLot | None = None, **overrides: str) -> Relay:
        relay = build_relay(load_settings({**relay_env, **overrides}), parking=parking)
        made.append(relay)
        return relay

    yield make
    for relay in made:
        relay.close()


def event(n: int, event_type: str = NEW_TYPE, **changes: Any) -> dict[str, Any]:
    return {**USER, "id": f"evt_types_{n}", "type": event_type, **changes}


def deliver(relay: Relay, *events: dict[str, Any], settle: bool = True) -> list[Any]:
    """The results; with `settle`, once the types the events handed over are settled too (the
    relay does that off the request, after answering)."""
    body = json.dumps(push_envelope(list(events))).encode()
    results = relay.handle(read_request(body, {}, max_events=1000)).events
    if settle:
        settled(relay)
    return results


def settled(relay: Relay) -> None:
    unknown = relay._event_types
    if unknown is not None:
        assert unknown.wait_idle(10)


def event_types(svix_api: Svix) -> dict[str, Any]:
    from svix.api import EventTypeListOptions

    listed = svix_api.event_type.list(EventTypeListOptions(include_archived=True, limit=250))
    return {t.name: t for t in listed.data}


def test_a_type_outside_the_catalogue_is_created_once_after_its_first_delivery(
    make_service: Any, svix_api: Svix
):
    relay = make_service()
    results = deliver(relay, event(1), event(2), event(3, "user.created"))
    assert [r.outcome for r in results] == [Outcome.DELIVERED] * 3
    deliver(relay, event(4))
    known = event_types(svix_api)
    # Only the type the catalogue lacks: the catalogue's own are the sync's to make.
    assert set(known) == {NEW_TYPE}
    created = known[NEW_TYPE]
    assert created.group_name == "sim"
    assert NEW_TYPE in created.description
    assert not created.archived


def test_a_second_instance_finds_the_type_and_creates_nothing(make_service: Any, svix_api: Svix):
    deliver(make_service(), event(1))
    first = event_types(svix_api)[NEW_TYPE]
    deliver(make_service(), event(2))
    assert event_types(svix_api)[NEW_TYPE].updated_at == first.updated_at


def test_switched_off_the_relay_creates_no_type(make_service: Any, svix_api: Svix):
    deliver(make_service(RELAY_CREATE_EVENT_TYPES="false"), event(1))
    assert event_types(svix_api) == {}


@pytest.mark.parametrize(
    "answer", [b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n", b""]
)
def test_a_failing_event_type_api_is_a_warning_and_the_event_is_delivered(
    relay_env: dict[str, str], svix: Any, caplog: pytest.LogCaptureFixture, answer: bytes
):
    # Svix's event-type calls answer 503 (or the connection closes unanswered); messages go.
    failing = ScriptedServer([servers.answer(answer, then_close=True)])
    settings = load_settings(relay_env)
    kind = DirectSvixSender if settings.svix_client == "direct" else SdkSvixSender
    registry = kind(
        token=svix.token, server_url=f"http://127.0.0.1:{failing.port}", timeout_seconds=1
    )
    relay = build_relay(settings, event_types=registry)
    try:
        with caplog.at_level(logging.WARNING, logger="relay"):
            [result] = deliver(relay, event(1))
    finally:
        relay.close()
        failing.close()
    assert result.outcome is Outcome.DELIVERED
    assert "could not create Svix event type sim.swapped" in caplog.text
    assert len(svix.messages()) == 1
    assert failing.requests  # it was asked


@pytest.mark.parametrize("status", [400, 422])
def test_an_archived_type_refuses_the_event_and_the_relay_parks_it_saying_why(
    make_service: Any, svix: Any, svix_api: Svix, status: int
):
    svix.set_faults(archived_type_status=status)
    svix_api.event_type.create(EventTypeIn(name=NEW_TYPE, description="Retired."))
    svix_api.event_type.delete(NEW_TYPE)  # archives it
    parking = CollectingParkingLot()
    relay = make_service(parking)
    [result] = deliver(relay, event(1))
    assert result.outcome is Outcome.PARKED
    assert "event type is archived" in result.reason
    assert "event-types sync" in result.reason
    [parked] = parking.parked
    assert parked.event_id == "evt_types_1"
    assert "archived" in parked.reason
    assert svix.messages() == []
    # Not unarchived behind the operator's back.
    assert event_types(svix_api)[NEW_TYPE].archived


def test_without_a_parking_topic_the_archived_type_answers_4xx_naming_it(
    make_relay: Any, svix: Any, svix_api: Svix
):
    svix_api.event_type.create(EventTypeIn(name=NEW_TYPE, description="Retired."))
    svix_api.event_type.delete(NEW_TYPE)
    response = make_relay().post("/", json=event(1))
    assert 400 <= response.status_code < 500
    [answer] = response.get_json()["events"]
    assert answer["outcome"] == "rejected"
    assert "archived" in answer["reason"]


def test_channels_reach_the_message_and_a_channel_filter_finds_it(
    make_service: Any, svix: Any, svix_api: Svix
):
    relay = make_service(RELAY_CHANNELS="{data.object}:{data.id},user:{data.user.id}")
    deliver(relay, USER, SUBSCRIPTION)
    by_type = {m["eventType"]: m for m in svix.messages()}
    assert by_type["user.created"]["channels"] == ["user:usr_test0000000000000000000001"]
    subscription = SUBSCRIPTION["data"]
    assert by_type["subscription.activated"]["channels"] == [
        f"subscription:{subscription['id']}",
        f"user:{subscription['user']['id']}",
    ]
    app = USER["project"]
    user_channel = "user:usr_test0000000000000000000001"
    # An endpoint on the user's channel gets the user's events and those of its subscriptions.
    listed = svix_api.message.list(app, MessageListOptions(channel=user_channel)).data
    assert {m.event_type for m in listed} == {"user.created", "subscription.activated"}


def test_channels_are_off_by_default(make_service: Any, svix: Any):
    deliver(make_service(), USER)
    [stored] = svix.messages()
    assert not stored.get("channels")


def test_channels_from_hostile_values_are_ones_svix_takes(make_service: Any, svix: Any):
    templates = "u:{data.id},{data.object}:{data.id},n:{data.n},d:{data.deep.a.b.c},l:{data.long}"
    relay = make_service(RELAY_CHANNELS=templates)
    hostile = {
        "id": "usr ä/1 😀",
        "object": "u",  # gives "u:" + the id again: one channel, not two
        "n": 12345678901234567890,
        "deep": {"a": {"b": {"c": "x" * 5000}}},
        "long": "é" * 100_000,
    }
    twin = {**hostile, "id": "usr_ä_1_😀"}  # the same once refused characters are replaced
    results = deliver(relay, event(1, "user.updated", data=hostile), event(2, data=twin))
    assert [r.outcome for r in results] == [Outcome.DELIVERED] * 2
    by_id = {m["eventId"]: m["channels"] for m in svix.messages()}
    first, second = by_id["evt_types_1"], by_id["evt_types_2"]
    assert len(first) == 4  # "u:…" once
    assert "n:12345678901234567890" in first
    assert all(len(c) <= 128 for c in first)
    assert first[0] != second[0]


def test_without_its_catalogue_the_relay_still_starts_and_checks_each_type(
    relay_env: dict[str, str], svix_api: Svix, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    with caplog.at_level(logging.WARNING, logger="relay"):
        relay = build_relay(load_settings(relay_env), catalogue=tmp_path / "none.toml")
    assert "no event catalogue at" in caplog.text
    try:
        deliver(relay, event(1, "user.created"))
    finally:
        relay.close()
    assert set(event_types(svix_api)) == {"user.created"}  # not in a catalogue now


def test_a_broken_catalogue_stops_the_start_naming_it(relay_env: dict[str, str], tmp_path: Path):
    broken = tmp_path / "event-types.toml"
    broken.write_text('["user.created"]\ngroup = "user"\n["user.created"]\n')
    with pytest.raises(SettingsError, match="the event catalogue cannot be read"):
        build_relay(load_settings(relay_env), catalogue=broken)
