"""The emulator through the real svix SDK 2.9.1: what the relay will see."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from svix import Svix
from svix.api import (
    ApplicationIn,
    MessageCreateOptions,
    MessageGetOptions,
    MessageIn,
    MessageListOptions,
)
from svix.exceptions import HttpError, HTTPValidationError

from svix_emulator.testing import RunningEmulator
from tests.support.emulator import Exchange, make_svix

ONE_MIB = 1024 * 1024


def event(event_id: str | None = "evt-1", source_id: str = "src-1", **fields: object) -> MessageIn:
    return MessageIn(
        event_type=str(fields.pop("event_type", "order.created")),
        event_id=event_id,
        payload={"id": source_id, "amount": 42, **fields},
    )


def test_health_answers(svix_client: Svix) -> None:
    svix_client.health.get()


def test_create_answers_202_with_a_message_out(svix_client: Svix, app_uid: str) -> None:
    options = MessageCreateOptions(idempotency_key="key-1", with_content=True)
    out = svix_client.message.create(app_uid, event(channels=None), options)

    assert out.id.startswith("msg_")
    assert len(out.id) == 31
    assert out.event_id == "evt-1"
    assert out.event_type == "order.created"
    assert out.payload == {"id": "src-1", "amount": 42, "channels": None}
    assert out.timestamp.tzinfo is not None
    assert abs(out.timestamp - datetime.now(UTC)) < timedelta(minutes=1)


def test_create_without_content_answers_an_empty_payload(
    svix_client: Svix, app_uid: str, emulator: RunningEmulator
) -> None:
    options = MessageCreateOptions(idempotency_key="key-1", with_content=False)
    out = svix_client.message.create(app_uid, event(), options)

    assert out.payload == {}
    assert emulator.messages(app_uid)[0]["payload"] == {"id": "src-1", "amount": 42}


def test_same_idempotency_key_replays_the_first_answer(
    svix_client: Svix, app_uid: str, emulator: RunningEmulator
) -> None:
    options = MessageCreateOptions(idempotency_key="relay-evt-1")
    first = svix_client.message.create(app_uid, event(), options)
    second = svix_client.message.create(app_uid, event(), options)

    assert second.id == first.id
    assert second.timestamp == first.timestamp
    assert len(emulator.messages()) == 1
    stats = emulator.stats()
    assert stats["idempotent_replays"] == 1
    assert stats["messages_created"] == 1
    assert stats["conflicts"] == 0
    assert emulator.messages()[0]["idempotencyKey"] == "relay-evt-1"


def test_replay_is_byte_for_byte(http: httpx.Client, app_uid: str) -> None:
    body = {"eventType": "a.b", "eventId": "e1", "payload": {"id": "s1"}}
    headers = {"idempotency-key": "same"}
    first = http.post(f"/api/v1/app/{app_uid}/msg", json=body, headers=headers)
    # A different body under the same key still gets the first answer, as in Svix.
    second = http.post(
        f"/api/v1/app/{app_uid}/msg?with_content=false",
        json={**body, "eventId": "e2"},
        headers=headers,
    )

    assert first.status_code == second.status_code == 202
    assert second.content == first.content


def test_sdk_default_auto_keys_make_new_messages(
    svix_client: Svix, app_uid: str, emulator: RunningEmulator
) -> None:
    first = svix_client.message.create(app_uid, event(event_id=None))
    second = svix_client.message.create(app_uid, event(event_id=None))

    assert first.id != second.id
    assert emulator.stats()["duplicate_source_events"] == 1
    assert [m["idempotencyKey"][:5] for m in emulator.messages()] == ["auto_", "auto_"]


def test_duplicate_event_id_is_409(
    svix_client: Svix, app_uid: str, emulator: RunningEmulator
) -> None:
    svix_client.message.create(app_uid, event(), MessageCreateOptions(idempotency_key="k1"))
    with pytest.raises(HttpError) as caught:
        svix_client.message.create(app_uid, event(), MessageCreateOptions(idempotency_key="k2"))

    assert caught.value.status_code == 409
    assert caught.value.code == "conflict"
    assert emulator.stats()["conflicts"] == 1
    assert len(emulator.messages()) == 1


def test_same_event_id_in_another_app_is_fine(svix_client: Svix, app_uid: str) -> None:
    svix_client.application.create(ApplicationIn(name="Other", uid="other-app"))
    svix_client.message.create(app_uid, event())
    svix_client.message.create("other-app", event())


@pytest.mark.parametrize("event_id", ["evt:1", "evt/1", "evt 1", "x" * 257, ""])
def test_bad_event_id_is_422(
    svix_client: Svix, app_uid: str, emulator: RunningEmulator, event_id: str
) -> None:
    with pytest.raises(HTTPValidationError) as caught:
        svix_client.message.create(app_uid, event(event_id=event_id))

    assert caught.value.status_code == 422
    assert caught.value.detail[0].loc == ["body", "eventId"]
    assert emulator.messages() == []
    assert emulator.stats()["validation_errors"] == 1


def test_missing_event_type_is_422(svix_client: Svix, app_uid: str) -> None:
    # model_construct skips the SDK's own check, so the request goes out without eventType.
    message = MessageIn.model_construct(payload={"id": "s"}, event_id="e")
    message.model_fields_set.discard("event_type")
    with pytest.raises(HTTPValidationError) as caught:
        svix_client.message.create(app_uid, message)

    assert caught.value.status_code == 422
    assert caught.value.detail[0].loc == ["body", "eventType"]
    assert caught.value.detail[0].type == "value_error.missing"


def test_payload_over_one_mib_is_413(
    svix_client: Svix, app_uid: str, emulator: RunningEmulator
) -> None:
    too_big = MessageIn(event_type="big", payload={"b": "x" * (ONE_MIB - 7)})
    with pytest.raises(HttpError) as caught:
        svix_client.message.create(app_uid, too_big)

    assert caught.value.status_code == 413
    assert emulator.messages() == []


def test_payload_of_exactly_one_mib_is_accepted(svix_client: Svix, app_uid: str) -> None:
    # {"b":"…"} is 8 bytes around the string.
    just_fits = MessageIn(event_type="big", payload={"b": "x" * (ONE_MIB - 8)})
    svix_client.message.create(app_uid, just_fits)


def test_unknown_app_is_404(svix_client: Svix, emulator: RunningEmulator) -> None:
    with pytest.raises(HttpError) as caught:
        svix_client.message.create("no-such-app", event())

    assert caught.value.status_code == 404
    assert caught.value.code == "not_found"
    assert emulator.stats()["not_found"] == 1


def test_application_in_the_message_creates_the_app(
    svix_client: Svix, emulator: RunningEmulator
) -> None:
    message = event()
    message.application = ApplicationIn(name="Customer 7", uid="customer-7")
    out = svix_client.message.create("customer-7", message)

    app = svix_client.application.get("customer-7")
    assert app.uid == "customer-7"
    assert app.name == "Customer 7"
    assert svix_client.message.get("customer-7", out.id).id == out.id
    assert emulator.stats()["messages_per_app"] == {"customer-7": 1}


def test_application_in_the_message_is_ignored_when_the_app_exists(
    svix_client: Svix, app_uid: str
) -> None:
    message = event()
    message.application = ApplicationIn(name="Renamed", uid=app_uid)
    svix_client.message.create(app_uid, message)

    assert svix_client.application.get(app_uid).name == "Test app"


def test_application_uid_must_match_the_path(svix_client: Svix) -> None:
    message = event()
    message.application = ApplicationIn(name="X", uid="other")
    with pytest.raises(HTTPValidationError) as caught:
        svix_client.message.create("customer-8", message)

    assert caught.value.detail[0].loc == ["body", "application", "uid"]


def test_wrong_token_is_401(
    emulator: RunningEmulator, exchanges: list[Exchange], app_uid: str
) -> None:
    client = make_svix(emulator, exchanges, token="testsk_wrong")
    with pytest.raises(HttpError) as caught:
        client.message.create(app_uid, event())

    assert caught.value.status_code == 401
    assert caught.value.code == "authentication_failed"
    assert emulator.stats()["unauthorized"] == 1
    assert emulator.messages() == []


def test_app_create_and_get(svix_client: Svix, emulator: RunningEmulator) -> None:
    created = svix_client.application.create(
        ApplicationIn(name="Shop", uid="shop-1", metadata={"tier": "gold"})
    )
    assert created.id.startswith("app_")
    assert len(created.id) == 31
    assert created.metadata == {"tier": "gold"}

    assert svix_client.application.get(created.id) == created
    assert svix_client.application.get("shop-1") == created
    assert (
        svix_client.application.get_or_create(ApplicationIn(name="Shop", uid="shop-1")) == created
    )

    with pytest.raises(HttpError) as caught:
        svix_client.application.create(ApplicationIn(name="Shop again", uid="shop-1"))
    assert caught.value.status_code == 409

    with pytest.raises(HttpError) as missing:
        svix_client.application.get("shop-2")
    assert missing.value.status_code == 404

    unnamed = svix_client.application.create(ApplicationIn(name="No uid"))
    assert unnamed.uid is None
    assert svix_client.application.get(unnamed.id).name == "No uid"


def test_get_by_id_and_by_event_id(svix_client: Svix, app_uid: str) -> None:
    out = svix_client.message.create(app_uid, event(event_id="evt-42"))

    with_content = MessageGetOptions(with_content=True)
    by_id = svix_client.message.get(app_uid, out.id, with_content)
    by_event_id = svix_client.message.get(app_uid, "evt-42", with_content)

    assert by_id == by_event_id
    assert by_id.payload == {"id": "src-1", "amount": 42}
    assert svix_client.message.get(app_uid, out.id).payload == {}
    for missing in ("evt-43", "msg_000000000000000000000000000"):
        with pytest.raises(HttpError) as caught:
            svix_client.message.get(app_uid, missing)
        assert caught.value.status_code == 404


def _create_many(client: Svix, app: str, count: int) -> list[str]:
    ids = []
    for n in range(count):
        kind = "order.created" if n % 2 == 0 else "order.paid"
        message = event(event_id=f"evt-{n}", source_id=f"src-{n}", event_type=kind)
        message.channels = ["even" if n % 2 == 0 else "odd"]
        message.tags = [f"n{n % 3}"]
        ids.append(client.message.create(app, message).id)
    return ids


def test_list_pages_newest_first(svix_client: Svix, app_uid: str) -> None:
    ids = _create_many(svix_client, app_uid, 7)

    seen: list[str] = []
    iterator = None
    pages = 0
    while True:
        page = svix_client.message.list(app_uid, MessageListOptions(limit=3, iterator=iterator))
        seen += [m.id for m in page.data]
        pages += 1
        if page.done:
            break
        iterator = page.iterator
    assert seen == list(reversed(ids))
    assert pages == 3

    # prevIterator walks back towards newer messages.
    middle = svix_client.message.list(app_uid, MessageListOptions(limit=2, iterator=ids[2]))
    assert [m.id for m in middle.data] == [ids[1], ids[0]]
    newer = svix_client.message.list(app_uid, MessageListOptions(limit=2, iterator=f"-{ids[4]}"))
    assert [m.id for m in newer.data] == [ids[6], ids[5]]
    assert newer.done


def test_list_filters(svix_client: Svix, app_uid: str) -> None:
    ids = _create_many(svix_client, app_uid, 6)

    def listed(**options: object) -> list[str]:
        page = svix_client.message.list(app_uid, MessageListOptions(**options))  # type: ignore[arg-type]
        return [m.id for m in page.data]

    assert listed(event_types=["order.paid"]) == [ids[5], ids[3], ids[1]]
    assert listed(event_types=["order.paid", "order.created"]) == list(reversed(ids))
    assert listed(channel="even") == [ids[4], ids[2], ids[0]]
    assert listed(tag="n1") == [ids[4], ids[1]]
    assert listed(with_content=True, limit=1)[0] == ids[5]

    third = svix_client.message.get(app_uid, ids[2]).timestamp
    assert set(listed(before=third)) <= set(ids[:2])
    assert set(listed(after=third)) <= set(ids[3:])
    assert listed(after=datetime.now(UTC) + timedelta(hours=1)) == []
    assert listed(before=datetime.now(UTC) + timedelta(hours=1)) == list(reversed(ids))


def test_list_of_unknown_app_is_404(svix_client: Svix) -> None:
    with pytest.raises(HttpError) as caught:
        svix_client.message.list("nope")
    assert caught.value.status_code == 404


def test_empty_list(svix_client: Svix, app_uid: str) -> None:
    page = svix_client.message.list(app_uid)
    assert page.data == []
    assert page.done
    assert page.iterator is None
