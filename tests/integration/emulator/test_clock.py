"""The emulator's clock and Svix's two dedup windows, through the real svix SDK: an idempotency
key is forgotten after 12 hours, an eventId's uniqueness after 24, and timestamps follow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from svix import Svix
from svix.api import MessageCreateOptions, MessageIn, MessageListOptions
from svix.exceptions import HttpError

from svix_emulator.testing import RunningEmulator

HOUR = 3600


def event(event_id: str = "evt-1", source_id: str = "src-1") -> MessageIn:
    return MessageIn(event_type="order.created", event_id=event_id, payload={"id": source_id})


def key(name: str) -> MessageCreateOptions:
    return MessageCreateOptions(idempotency_key=name)


def test_the_clock_starts_at_the_wall_clock_advances_and_resets(emulator: RunningEmulator) -> None:
    start = emulator.clock()
    assert abs(start - datetime.now(UTC)) < timedelta(minutes=1)

    later = emulator.advance_clock(25 * HOUR)
    assert later - start >= timedelta(hours=25)
    assert later - start < timedelta(hours=25, minutes=1)
    assert emulator.control("GET", "clock")["offset_seconds"] == 25 * HOUR

    emulator.reset()
    assert emulator.clock() - start < timedelta(minutes=1)
    assert emulator.control("GET", "clock")["offset_seconds"] == 0


@pytest.mark.parametrize(
    "body", [{"advance_seconds": -1}, {"advance_seconds": "1"}, {"advance_seconds": True}, {}, []]
)
def test_the_clock_never_goes_back_and_refuses_what_is_not_a_duration(
    emulator: RunningEmulator, body: object
) -> None:
    with pytest.raises(ValueError, match="400"):
        emulator.control("POST", "clock", body)
    assert emulator.control("GET", "clock")["offset_seconds"] == 0


def test_message_timestamps_come_from_the_clock(
    svix_client: Svix, app_uid: str, emulator: RunningEmulator
) -> None:
    before = svix_client.message.create(app_uid, event("evt-1", "src-1"))
    emulator.advance_clock(48 * HOUR)
    after = svix_client.message.create(app_uid, event("evt-2", "src-2"))

    assert after.timestamp - before.timestamp >= timedelta(hours=48)
    assert (
        emulator.messages(app_uid)[1]["timestamp"]
        == after.timestamp.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    )
    # The list's before/after filters use the same clock.
    window = MessageListOptions(after=before.timestamp + timedelta(hours=1))
    assert [m.id for m in svix_client.message.list(app_uid, window).data] == [after.id]


def test_an_idempotency_key_is_replayed_for_12_hours_then_forgotten(
    svix_client: Svix, app_uid: str, emulator: RunningEmulator
) -> None:
    first = svix_client.message.create(app_uid, event(), key("k"))
    emulator.advance_clock(12 * HOUR - 60)
    assert svix_client.message.create(app_uid, event(), key("k")).id == first.id
    assert emulator.stats()["idempotent_replays"] == 1

    emulator.advance_clock(60)
    # The key is new again; the eventId, a day old at most, still refuses a second message.
    with pytest.raises(HttpError) as caught:
        svix_client.message.create(app_uid, event(), key("k"))
    assert caught.value.status_code == 409
    assert emulator.stats()["idempotent_replays"] == 1
    assert len(emulator.messages()) == 1


def test_a_forgotten_key_takes_the_next_answer_and_keeps_it(
    svix_client: Svix, app_uid: str, emulator: RunningEmulator
) -> None:
    svix_client.message.create(app_uid, event("evt-1", "src-1"), key("k"))
    emulator.advance_clock(13 * HOUR)
    # Under the same key, now forgotten, another event makes a message whose answer is kept.
    second = svix_client.message.create(app_uid, event("evt-2", "src-2"), key("k"))
    again = svix_client.message.create(app_uid, event("evt-3", "src-3"), key("k"))
    assert again.id == second.id
    assert [m["eventId"] for m in emulator.messages()] == ["evt-1", "evt-2"]


def test_after_24_hours_the_same_event_id_makes_a_second_message(
    svix_client: Svix, app_uid: str, emulator: RunningEmulator
) -> None:
    first = svix_client.message.create(app_uid, event(), key("k1"))
    emulator.advance_clock(24 * HOUR - 60)
    with pytest.raises(HttpError) as caught:
        svix_client.message.create(app_uid, event(), key("k2"))
    assert caught.value.status_code == 409

    emulator.advance_clock(60)
    # Svix's documented window: what the relay's replay must prevent by looking first.
    second = svix_client.message.create(app_uid, event(), key("k3"))
    assert second.id != first.id
    assert emulator.stats()["duplicate_source_events"] == 1
    # A look-up by eventId finds the newest of the two; the first is still there by its id.
    assert svix_client.message.get(app_uid, "evt-1").id == second.id
    assert svix_client.message.get(app_uid, first.id).id == first.id
    # And the second one's own day of uniqueness has started.
    with pytest.raises(HttpError) as caught:
        svix_client.message.create(app_uid, event(), key("k4"))
    assert caught.value.status_code == 409


def test_a_message_is_found_by_event_id_long_after_the_window(
    svix_client: Svix, app_uid: str, emulator: RunningEmulator
) -> None:
    created = svix_client.message.create(app_uid, event())
    emulator.advance_clock(30 * 24 * HOUR)
    assert svix_client.message.get(app_uid, "evt-1").id == created.id


def test_the_clock_route_over_http(emulator: RunningEmulator) -> None:
    with httpx.Client(base_url=emulator.url, trust_env=False) as client:
        assert client.get("/_emulator/clock").status_code == 200
        advanced = client.post("/_emulator/clock", json={"advance_seconds": 1.5})
        assert advanced.json()["offset_seconds"] == 1.5
        assert client.post("/_emulator/clock", content=b"{").status_code == 400
        wrong = client.put("/_emulator/clock", json={})
        assert (wrong.status_code, wrong.headers["allow"]) == (405, "GET, POST")
