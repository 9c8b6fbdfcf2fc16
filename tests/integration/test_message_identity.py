"""How an event is named in Svix (application, eventId, idempotency key), through the function
over HTTP against the Svix emulator, with both senders.

Two defects are pinned here: a project of dots was taken for an application id (the direct
sender delivered to an application named "..", the SDK sender got 404/405 and answered 503 on
every redelivery), and with one fixed application two projects' events with the same id were one
message (the second was answered "delivered" by the 409 look-up and never sent).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from relay.core.messages import svix_event_id
from tests.support import own_events, push_envelope, unique_name

USER = own_events()["user-created"]
FIXED_APP = "gigs-all-projects"


@pytest.fixture(params=["direct", "sdk"])
def relay_env(relay_env: dict[str, str], request: pytest.FixtureRequest) -> dict[str, str]:
    return {**relay_env, "RELAY_SVIX_CLIENT": request.param}


def post(client: Any, body: object) -> Any:
    return client.post(
        "/", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )


def events_of(response: Any) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = response.get_json()["events"]
    return events


def sdk(svix: Any) -> Any:
    from svix.api import Svix, SvixOptions

    return Svix(svix.token, SvixOptions(server_url=svix.url, retry_schedule=[]))


@pytest.fixture
def fixed_relay(make_relay: Any, svix: Any) -> Any:
    from svix.api import ApplicationIn

    sdk(svix).application.create(ApplicationIn(name="Gigs", uid=FIXED_APP))
    return make_relay(SVIX_APP_ID=FIXED_APP)


# ---- dot-only projects are not applications -----------------------------------------------------


@pytest.mark.parametrize("project", [".", "..", "..."])
def test_a_project_of_dots_is_refused_and_no_application_is_made(
    relay: Any, svix: Any, project: str
):
    event = {**USER, "id": "evt_dots_project", "project": project}
    response = post(relay, push_envelope(event))
    assert response.status_code == 422, response.get_json()
    (result,) = events_of(response)
    assert result["outcome"] == "rejected"
    assert "not a valid Svix application uid" in result["reason"]
    assert svix.messages() == []
    assert svix.stats()["messages_per_app"] == {}


@pytest.fixture
def parking(pubsub: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """A parking topic with a pull subscription, the relay's Pub/Sub client on the emulator."""
    for name, value in pubsub.env().items():
        monkeypatch.setenv(name, value)
    topic = pubsub.create_topic(unique_name("parking-dots"))
    return topic, pubsub.create_pull_subscription(unique_name("parking-dots-sub"), topic)


def test_with_a_parking_topic_a_project_of_dots_is_parked_and_acked(
    make_relay: Any, svix: Any, pubsub: Any, parking: tuple[str, str]
):
    topic, subscription = parking
    relay = make_relay(RELAY_PARKING_TOPIC=topic)
    poison = {**USER, "id": "evt_dots_parked", "project": ".."}
    response = post(relay, push_envelope([USER, poison]))
    assert response.status_code == 200, response.get_json()
    assert [e["outcome"] for e in events_of(response)] == ["delivered", "parked"]
    (parked,) = pubsub.pull_all(subscription, quiet_seconds=0.5, timeout=20, min_messages=1)
    assert parked.attributes["relay_event_id"] == "evt_dots_parked"
    assert "not a valid Svix application uid" in parked.attributes["relay_parked_reason"]
    assert [m["eventId"] for m in svix.messages()] == [USER["id"]]


# ---- dot-only event ids are not path segments --------------------------------------------------


@pytest.mark.parametrize("event_id", [".", "..", "..."])
def test_an_event_id_of_dots_is_sent_as_a_digest_and_redelivery_makes_no_second_message(
    relay: Any, svix: Any, event_id: str
):
    event = {**USER, "id": event_id}
    first = post(relay, push_envelope(event, message_id="41"))
    again = post(relay, push_envelope(event, message_id="41"))
    assert first.status_code == again.status_code == 200, again.get_json()
    (stored,) = svix.messages()
    assert stored["eventId"] == svix_event_id(event_id)
    assert stored["eventId"].startswith("evt_sha256_")
    assert stored["payload"]["id"] == event_id  # the customer still sees the event's own id


def test_after_a_409_an_event_id_of_dots_is_looked_up_by_its_digest(relay: Any, svix: Any):
    from svix.api import ApplicationIn, MessageIn

    event = {**USER, "id": ".."}
    existing = sdk(svix).message.create(
        USER["project"],
        MessageIn(
            event_type=USER["type"],
            event_id=svix_event_id(".."),
            payload={"id": ".."},
            application=ApplicationIn(name=USER["project"], uid=USER["project"]),
        ),
    )
    response = post(relay, push_envelope(event))
    assert response.status_code == 200, response.get_json()
    (result,) = events_of(response)
    assert (result["outcome"], result["svix_message_id"]) == ("duplicate", existing.id)
    assert len(svix.messages()) == 1


# ---- one fixed application: the project is part of the event's identity -------------------------


def test_two_projects_with_the_same_event_id_are_two_messages_in_one_fixed_application(
    fixed_relay: Any, svix: Any
):
    acme = {**USER, "id": "evt_shared_1", "project": "acme-mobile"}
    beta = {**USER, "id": "evt_shared_1", "project": "beta-telco"}
    first = post(fixed_relay, push_envelope(acme, message_id="1"))
    second = post(fixed_relay, push_envelope(beta, message_id="2"))
    assert first.status_code == second.status_code == 200, second.get_json()
    assert [e["outcome"] for e in events_of(first) + events_of(second)] == [
        "delivered",
        "delivered",
    ]
    stored = svix.messages(FIXED_APP)
    assert sorted(m["eventId"] for m in stored) == [
        "acme-mobile.evt_shared_1",
        "beta-telco.evt_shared_1",
    ]
    assert {m["payload"]["project"] for m in stored} == {"acme-mobile", "beta-telco"}
    assert len({m["idempotencyKey"] for m in stored}) == 2


def test_two_projects_in_one_array_with_the_same_event_id_are_two_messages(
    fixed_relay: Any, svix: Any
):
    batch = [{**USER, "id": "evt_shared_2", "project": p} for p in ("acme-mobile", "beta-telco")]
    response = post(fixed_relay, push_envelope(batch))
    assert response.status_code == 200, response.get_json()
    assert [e["outcome"] for e in events_of(response)] == ["delivered", "delivered"]
    assert len(svix.messages(FIXED_APP)) == 2


def test_the_same_event_twice_in_a_fixed_application_is_one_message(fixed_relay: Any, svix: Any):
    # A fresh event: the second post goes by the idempotency key, not by a look-up first.
    now = dt.datetime.now(dt.UTC).isoformat()
    event = {**USER, "id": "evt_once", "project": "acme-mobile", "time": now}
    first = post(fixed_relay, push_envelope(event, message_id="9"))
    again = post(fixed_relay, event)  # the same event, posted directly this time
    assert first.status_code == again.status_code == 200
    assert events_of(first)[0]["svix_message_id"] == events_of(again)[0]["svix_message_id"]
    (stored,) = svix.messages(FIXED_APP)
    assert stored["eventId"] == "acme-mobile.evt_once"
    assert svix.stats()["idempotent_replays"] == 1


def test_a_fixed_application_finds_its_own_message_after_a_409(fixed_relay: Any, svix: Any):
    from svix.api import MessageIn

    event = {**USER, "id": "evt_conflict", "project": "beta-telco"}
    existing = sdk(svix).message.create(
        FIXED_APP,
        MessageIn(
            event_type=USER["type"],
            event_id=svix_event_id("evt_conflict", project="beta-telco"),
            payload={"id": "evt_conflict"},
        ),
    )
    # Another project's message with the bare event id must not be taken for this one.
    sdk(svix).message.create(
        FIXED_APP, MessageIn(event_type=USER["type"], event_id="evt_conflict", payload={})
    )
    response = post(fixed_relay, push_envelope(event))
    assert response.status_code == 200, response.get_json()
    (result,) = events_of(response)
    assert (result["outcome"], result["svix_message_id"]) == ("duplicate", existing.id)
    assert len(svix.messages(FIXED_APP)) == 2


def test_an_event_without_project_keeps_its_bare_id_in_a_fixed_application(
    fixed_relay: Any, svix: Any
):
    event = {key: value for key, value in USER.items() if key != "project"}
    event["id"] = "evt_no_project"
    response = post(fixed_relay, push_envelope(event))
    assert response.status_code == 200, response.get_json()
    (stored,) = svix.messages(FIXED_APP)
    assert stored["eventId"] == "evt_no_project"


# ---- names Svix would read as another object's id ------------------------------------------------


def test_a_project_shaped_like_an_application_id_cannot_reach_that_application(
    relay: Any, svix: Any
):
    # Svix finds an application by id or by uid: a project spelling another application's id
    # would put the event in that (another customer's) application.
    assert post(relay, push_envelope(USER)).status_code == 200
    victim = sdk(svix).application.get(USER["project"]).id
    intruder = {**USER, "id": "evt_intruder", "project": victim}
    response = post(relay, push_envelope(intruder))
    assert response.status_code == 422, response.get_json()
    assert "Svix application id" in events_of(response)[0]["reason"]
    assert [m["eventId"] for m in svix.messages()] == [USER["id"]]


def test_an_event_id_shaped_like_a_message_id_is_not_taken_for_that_message_after_a_409(
    relay: Any, svix: Any
):
    # Svix looks a message up by id or by eventId: after a 409 (here one not about our eventId,
    # as when two requests create an application at once) an event whose id spells another
    # message's id would be answered "duplicate" with that message, and never sent.
    first = post(relay, push_envelope(USER))
    other_message = events_of(first)[0]["svix_message_id"]
    svix.set_faults(errors=[{"status": 409, "next": 1}])
    lookalike = {**USER, "id": other_message}
    response = post(relay, push_envelope(lookalike))
    assert response.status_code == 200, response.get_json()
    (result,) = events_of(response)
    assert result["outcome"] == "delivered"
    assert result["svix_message_id"] != other_message
    stored = {m["payload"]["id"] for m in svix.messages()}
    assert stored == {USER["id"], other_message}
