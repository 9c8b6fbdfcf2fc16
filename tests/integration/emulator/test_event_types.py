"""Event types: the environment-wide catalogue (`/api/v1/event-type`), through the real svix SDK
and raw HTTP, and the refusal of messages whose event type is archived."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from svix import Svix
from svix.api import (
    EventTypeDeleteOptions,
    EventTypeIn,
    EventTypeListOptions,
    EventTypePatch,
    EventTypeUpsertIn,
    MessageIn,
    Ordering,
)
from svix.exceptions import HttpError, HTTPValidationError

from svix_emulator.cli import _parser, faults_from_args
from svix_emulator.spec import SPEC_PATH, SpecChecker
from svix_emulator.testing import PROJECT_ROOT, RunningEmulator, start_emulator
from tests.support.emulator import Exchange, make_http, spec_problems

SCHEMA = {"1": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}}
TYPES = "/api/v1/event-type"


def create(http: httpx.Client, name: str, **fields: Any) -> httpx.Response:
    return http.post(TYPES, json={"name": name, "description": f"{name} happened", **fields})


def archive(http: httpx.Client, name: str) -> None:
    assert create(http, name).status_code == 201
    assert http.delete(f"{TYPES}/{name}").status_code == 204


def send(
    http: httpx.Client, app: str, event_type: str, key: str | None = None, event_id: str = "evt-1"
) -> httpx.Response:
    headers = {} if key is None else {"idempotency-key": key}
    body = {"eventType": event_type, "eventId": event_id, "payload": {"id": event_id}}
    return http.post(f"/api/v1/app/{app}/msg", json=body, headers=headers)


def names(answer: httpx.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [item["name"] for item in answer.json()["data"]]


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# Through the SDK.


def test_sdk_creates_reads_upserts_patches_and_archives(
    svix_client: Svix, exchanges: list[Exchange]
) -> None:
    created = svix_client.event_type.create(
        EventTypeIn(
            name="user.signup",
            description="A user signed up",
            schemas=SCHEMA,
            group_name="user",
            feature_flags=["beta"],
        )
    )
    assert (created.name, created.description, created.archived) == (
        "user.signup",
        "A user signed up",
        False,
    )
    assert (created.deprecated, created.schemas, created.group_name, created.feature_flags) == (
        False,
        SCHEMA,
        "user",
        ["beta"],
    )
    assert abs(created.created_at - datetime.now(UTC)) < timedelta(minutes=1)
    assert svix_client.event_type.get("user.signup") == created

    upserted = svix_client.event_type.upsert(
        "user.signup", EventTypeUpsertIn(description="Signed up", deprecated=True)
    )
    # PUT replaces the whole type: what the body leaves out goes back to its default.
    assert (upserted.description, upserted.deprecated) == ("Signed up", True)
    assert (upserted.schemas, upserted.group_name, upserted.feature_flags) == (None, None, None)
    assert upserted.created_at == created.created_at

    patched = svix_client.event_type.patch(
        "user.signup", EventTypePatch(group_name="people", schemas=SCHEMA)
    )
    assert (patched.description, patched.deprecated) == ("Signed up", True)
    assert (patched.group_name, patched.schemas) == ("people", SCHEMA)
    cleared = svix_client.event_type.patch("user.signup", EventTypePatch(schemas=None))
    assert (cleared.schemas, cleared.group_name) == (None, "people")

    svix_client.event_type.delete("user.signup")
    assert svix_client.event_type.get("user.signup").archived is True
    assert svix_client.event_type.list().data == []
    listed = svix_client.event_type.list(EventTypeListOptions(include_archived=True))
    assert [(t.name, t.archived) for t in listed.data] == [("user.signup", True)]

    svix_client.event_type.delete("user.signup", EventTypeDeleteOptions(expunge=True))
    with pytest.raises(HttpError) as missing:
        svix_client.event_type.get("user.signup")
    assert missing.value.status_code == 404
    statuses = [ex.status for ex in exchanges]
    assert statuses == [201, 200, 200, 200, 200, 204, 200, 200, 200, 204, 404]


def test_sdk_upsert_creates_then_updates(svix_client: Svix, exchanges: list[Exchange]) -> None:
    first = svix_client.event_type.upsert("order.paid", EventTypeUpsertIn(description="Paid"))
    second = svix_client.event_type.upsert("order.paid", EventTypeUpsertIn(description="Paid!"))

    assert (first.name, first.description, second.description) == ("order.paid", "Paid", "Paid!")
    assert [ex.status for ex in exchanges] == [201, 200]


def test_sdk_sees_a_conflict_for_a_live_name(svix_client: Svix) -> None:
    svix_client.event_type.create(EventTypeIn(name="order.paid", description="Paid"))
    with pytest.raises(HttpError) as conflict:
        svix_client.event_type.create(EventTypeIn(name="order.paid", description="Again"))

    assert conflict.value.status_code == 409
    assert conflict.value.code == "event_type_exists"
    assert svix_client.event_type.get("order.paid").description == "Paid"


def test_sdk_pages_by_name_in_both_orders(svix_client: Svix) -> None:
    for name in ("c", "a", "e", "b", "d"):
        svix_client.event_type.create(EventTypeIn(name=name, description=name))

    def walk(order: Ordering) -> list[list[str]]:
        pages, iterator = [], None
        while True:
            page = svix_client.event_type.list(
                EventTypeListOptions(limit=2, iterator=iterator, order=order)
            )
            pages.append([t.name for t in page.data])
            if page.done:
                return pages
            iterator = page.iterator

    assert walk(Ordering.ASCENDING) == [["a", "b"], ["c", "d"], ["e"]]
    assert walk(Ordering.DESCENDING) == [["e", "d"], ["c", "b"], ["a"]]


def test_sdk_list_leaves_schemas_out_unless_asked(svix_client: Svix) -> None:
    svix_client.event_type.create(EventTypeIn(name="a", description="a", schemas=SCHEMA))

    assert svix_client.event_type.list().data[0].schemas is None
    with_content = EventTypeListOptions(with_content=True)
    assert svix_client.event_type.list(with_content).data[0].schemas == SCHEMA
    assert svix_client.event_type.get("a").schemas == SCHEMA


def test_sdk_sees_an_archived_type_refuse_a_message(
    svix_client: Svix, app_uid: str, emulator: RunningEmulator
) -> None:
    svix_client.event_type.create(EventTypeIn(name="order.paid", description="Paid"))
    svix_client.event_type.delete("order.paid")
    message = MessageIn(event_type="order.paid", payload={"id": "src-1"})

    with pytest.raises(HttpError) as refused:
        svix_client.message.create(app_uid, message)
    assert (refused.value.status_code, refused.value.code) == (400, "event_type_archived")

    emulator.set_faults(archived_type_status=422)
    with pytest.raises(HTTPValidationError) as invalid:
        svix_client.message.create(app_uid, message)
    assert invalid.value.status_code == 422
    assert emulator.messages() == []


# Validation, over raw HTTP.


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"description": "d"}, ["body", "name"]),
        ({"name": "a b", "description": "d"}, ["body", "name"]),
        ({"name": "a/b", "description": "d"}, ["body", "name"]),
        ({"name": "a\n", "description": "d"}, ["body", "name"]),
        ({"name": "", "description": "d"}, ["body", "name"]),
        ({"name": "x" * 257, "description": "d"}, ["body", "name"]),
        ({"name": 5, "description": "d"}, ["body", "name"]),
        ({"name": "a"}, ["body", "description"]),
        ({"name": "a", "description": None}, ["body", "description"]),
        ({"name": "a", "description": "d", "archived": "yes"}, ["body", "archived"]),
        ({"name": "a", "description": "d", "deprecated": None}, ["body", "deprecated"]),
        ({"name": "a", "description": "d", "schemas": "{}"}, ["body", "schemas"]),
        ({"name": "a", "description": "d", "schemas": []}, ["body", "schemas"]),
        ({"name": "a", "description": "d", "groupName": "a b"}, ["body", "groupName"]),
        ({"name": "a", "description": "d", "groupName": "g" * 257}, ["body", "groupName"]),
        ({"name": "a", "description": "d", "featureFlags": []}, ["body", "featureFlags"]),
        ({"name": "a", "description": "d", "featureFlags": ["f", "f"]}, ["body", "featureFlags"]),
        ({"name": "a", "description": "d", "featureFlags": "f"}, ["body", "featureFlags"]),
        (
            {"name": "a", "description": "d", "featureFlags": ["a:b"]},
            ["body", "featureFlags", "[0]"],
        ),
        ([], ["body"]),
    ],
)
def test_create_refuses_what_svix_refuses(
    http: httpx.Client, emulator: RunningEmulator, body: object, loc: list[str]
) -> None:
    answer = http.post(TYPES, json=body)

    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    assert loc in [item["loc"] for item in detail]
    assert all(set(item) == {"loc", "msg", "type"} for item in detail)
    assert emulator.event_types() == []
    assert emulator.stats()["validation_errors"] == 1


@pytest.mark.parametrize(
    "fields",
    [
        {"description": ""},
        {"name": "n" * 256},
        {"name": "A-Z_0.9"},
        {"groupName": None, "featureFlags": None, "schemas": None},
        {"schemas": {}, "featureFlags": ["f" * 256, "g"], "groupName": "g.h-i_j"},
        {"archived": True, "deprecated": True, "featureFlag": "legacy", "unknown": 1},
    ],
)
def test_create_accepts_what_the_spec_allows(http: httpx.Client, fields: dict[str, Any]) -> None:
    answer = http.post(TYPES, json={"name": "ok", "description": "d", **fields})

    assert answer.status_code == 201, answer.text
    out = answer.json()
    assert out["name"] == fields.get("name", "ok")
    assert out["archived"] is fields.get("archived", False)
    assert out["createdAt"] == out["updatedAt"]
    assert "featureFlag" not in out and "unknown" not in out


@pytest.mark.parametrize("content", [b"", b"{", b"NaN"])
def test_unreadable_bodies_are_400(http: httpx.Client, content: bytes) -> None:
    headers = {"content-type": "application/json"}
    for method, path in (("POST", TYPES), ("PUT", f"{TYPES}/a"), ("PATCH", f"{TYPES}/a")):
        answer = http.request(method, path, content=content, headers=headers)
        assert answer.status_code == 400, (method, answer.text)
        assert answer.json()["code"] == "bad_request"


@pytest.mark.parametrize("name", ["a%20b", "a%2Fb", "x" * 257, "a%0A"])
def test_bad_names_in_the_path_are_422_before_any_lookup(http: httpx.Client, name: str) -> None:
    requests = [
        ("GET", None),
        ("PUT", {"description": "d"}),
        ("PATCH", {}),
        ("DELETE", None),
    ]
    for method, body in requests:
        answer = http.request(method, f"{TYPES}/{name}", json=body)
        assert answer.status_code == 422, (method, answer.text)
        assert answer.json()["detail"][0]["loc"] == ["path", "event_type_name"]


def test_routes_methods_and_tokens(http: httpx.Client, emulator: RunningEmulator) -> None:
    assert http.delete(TYPES).headers["allow"] == "GET, POST"
    assert http.post(f"{TYPES}/a", json={}).headers["allow"] == "GET, PUT, PATCH, DELETE"
    assert http.get(f"{TYPES}/a/b").status_code == 404
    assert http.post(f"{TYPES}/import/openapi", json={}).status_code == 404
    assert create(http, "a").status_code == 201
    assert http.get(f"{TYPES}/a/").status_code == 200
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        answer = httpx.request(method, f"{emulator.url}{TYPES}/a", trust_env=False)
        assert answer.status_code == 401, method
    unauthorized = httpx.get(f"{emulator.url}{TYPES}", trust_env=False)
    assert unauthorized.json()["code"] == "authentication_failed"


# Create, read, replace, patch, archive.


def test_get_and_patch_of_a_missing_type_are_404(http: httpx.Client) -> None:
    for method, body in (("GET", None), ("PATCH", {"description": "d"}), ("DELETE", None)):
        answer = http.request(method, f"{TYPES}/nope", json=body)
        assert answer.status_code == 404, method
        assert answer.json()["code"] == "not_found"


def test_post_of_an_archived_name_unarchives_and_replaces_it(
    http: httpx.Client, emulator: RunningEmulator
) -> None:
    first = create(http, "order.paid", schemas=SCHEMA, groupName="orders").json()
    emulator.advance_clock(3600)
    assert http.delete(f"{TYPES}/order.paid").status_code == 204
    unarchived = create(http, "order.paid")  # archived: not a conflict

    assert unarchived.status_code == 201
    again = unarchived.json()
    assert http.get(f"{TYPES}/order.paid").json() == again
    assert again["archived"] is False
    # "This operation does not preserve the description and schemas."
    assert again["description"] == "order.paid happened"
    assert "schemas" not in again and "groupName" not in again
    assert again["createdAt"] == first["createdAt"]
    assert when(again["updatedAt"]) - when(first["updatedAt"]) >= timedelta(hours=1)


def test_post_of_a_live_name_is_409_and_changes_nothing(
    http: httpx.Client, emulator: RunningEmulator
) -> None:
    first = create(http, "order.paid").json()
    conflict = http.post(TYPES, json={"name": "order.paid", "description": "other"})

    assert conflict.status_code == 409
    assert conflict.json() == {
        "code": "event_type_exists",
        "detail": "An event_type with this name already exists",
    }
    assert http.get(f"{TYPES}/order.paid").json() == first
    assert emulator.stats()["conflicts"] == 1


def test_put_replaces_and_may_archive(http: httpx.Client) -> None:
    created = http.put(f"{TYPES}/a", json={"description": "one", "groupName": "g"})
    replaced = http.put(f"{TYPES}/a", json={"description": "two", "archived": True})
    invalid = http.put(f"{TYPES}/a", json={"archived": False})

    assert (created.status_code, replaced.status_code, invalid.status_code) == (201, 200, 422)
    assert "groupName" not in replaced.json()
    assert (replaced.json()["description"], replaced.json()["archived"]) == ("two", True)
    assert http.get(f"{TYPES}/a").json() == replaced.json()


def test_patch_changes_only_what_it_names_and_null_clears(http: httpx.Client) -> None:
    create(http, "a", schemas=SCHEMA, groupName="g", featureFlags=["f"], deprecated=True)
    unchanged = http.patch(f"{TYPES}/a", json={})
    archived = http.patch(f"{TYPES}/a", json={"archived": True, "description": "new"})
    cleared = http.patch(f"{TYPES}/a", json={"groupName": None, "featureFlags": None})

    assert unchanged.status_code == archived.status_code == cleared.status_code == 200
    assert {k: v for k, v in unchanged.json().items() if k != "updatedAt"} == {
        "name": "a",
        "description": "a happened",
        "archived": False,
        "deprecated": True,
        "schemas": SCHEMA,
        "createdAt": unchanged.json()["createdAt"],
        "groupName": "g",
        "featureFlags": ["f"],
    }
    assert (archived.json()["archived"], archived.json()["description"]) == (True, "new")
    assert cleared.json()["schemas"] == SCHEMA
    assert "groupName" not in cleared.json() and "featureFlags" not in cleared.json()


@pytest.mark.parametrize(
    "body",
    [
        {"description": None},
        {"archived": None},
        {"deprecated": "no"},
        {"schemas": "x"},
        {"featureFlags": []},
        {"groupName": "a b"},
        [],
    ],
)
def test_patch_refuses_nulls_where_the_spec_has_none(http: httpx.Client, body: object) -> None:
    before = create(http, "a", schemas=SCHEMA).json()
    answer = http.patch(f"{TYPES}/a", json=body)

    assert answer.status_code == 422, answer.text
    assert http.get(f"{TYPES}/a").json() == before


def test_delete_archives_and_expunge_removes(http: httpx.Client, emulator: RunningEmulator) -> None:
    create(http, "a")
    create(http, "b")
    assert http.delete(f"{TYPES}/a").status_code == 204
    assert http.delete(f"{TYPES}/a").status_code == 204  # archiving twice is fine
    assert http.delete(f"{TYPES}/b?expunge=maybe").status_code == 422
    assert http.delete(f"{TYPES}/b?expunge=true").status_code == 204

    assert http.get(f"{TYPES}/b").status_code == 404
    assert [(t["name"], t["archived"]) for t in emulator.event_types()] == [("a", True)]
    assert http.delete(f"{TYPES}/a?expunge=true").status_code == 204
    assert emulator.event_types() == []
    assert create(http, "a").status_code == 201


def test_timestamps_follow_the_emulator_clock(
    http: httpx.Client, emulator: RunningEmulator
) -> None:
    later = emulator.advance_clock(48 * 3600)
    created = create(http, "a").json()
    emulator.advance_clock(60)
    patched = http.patch(f"{TYPES}/a", json={"deprecated": True}).json()

    assert abs(when(created["createdAt"]) - later) < timedelta(minutes=1)
    assert when(patched["updatedAt"]) - when(created["createdAt"]) >= timedelta(seconds=60)
    assert patched["createdAt"] == created["createdAt"]


def test_reset_forgets_event_types(http: httpx.Client, emulator: RunningEmulator) -> None:
    archive(http, "a")
    emulator.reset()
    assert emulator.event_types() == []
    assert http.get(f"{TYPES}/a").status_code == 404


# Listing.


def test_list_pages_forward_and_back_by_name(http: httpx.Client) -> None:
    for name in ("d", "b", "a", "e", "c"):
        create(http, name)

    first = http.get(TYPES, params={"limit": 2}).json()
    second = http.get(TYPES, params={"limit": 2, "iterator": first["iterator"]}).json()
    back = http.get(TYPES, params={"limit": 2, "iterator": second["prevIterator"]}).json()
    last = http.get(TYPES, params={"limit": 2, "iterator": "d"}).json()

    assert [t["name"] for t in first["data"]] == ["a", "b"]
    assert (first["iterator"], first["prevIterator"], first["done"]) == ("b", "-a", False)
    assert [t["name"] for t in second["data"]] == ["c", "d"]
    assert [t["name"] for t in back["data"]] == ["a", "b"]
    assert back["done"] is True  # nothing before "a"
    assert ([t["name"] for t in last["data"]], last["done"]) == (["e"], True)
    down = http.get(TYPES, params={"limit": 2, "order": "descending", "iterator": "c"}).json()
    assert ([t["name"] for t in down["data"]], down["done"]) == (["b", "a"], True)
    up = http.get(TYPES, params={"limit": 2, "order": "descending", "iterator": "-c"}).json()
    assert ([t["name"] for t in up["data"]], up["done"]) == (["e", "d"], True)
    # Going back gives the page just before the mark, not the first one.
    before_e = http.get(TYPES, params={"limit": 2, "iterator": "-e"}).json()
    assert ([t["name"] for t in before_e["data"]], before_e["done"]) == (["c", "d"], False)
    after_c = http.get(TYPES, params={"limit": 1, "order": "descending", "iterator": "-c"}).json()
    assert ([t["name"] for t in after_c["data"]], after_c["done"]) == (["d"], False)


def test_list_of_nothing_has_a_null_iterator(http: httpx.Client) -> None:
    assert http.get(TYPES).json() == {"data": [], "iterator": None, "done": True}


def test_list_hides_archived_types_unless_asked(http: httpx.Client) -> None:
    create(http, "live")
    archive(http, "gone")

    assert names(http.get(TYPES)) == ["live"]
    assert names(http.get(TYPES, params={"include_archived": "false"})) == ["live"]
    assert names(http.get(TYPES, params={"include_archived": "true"})) == ["gone", "live"]


def test_list_with_content_decides_whether_schemas_come(http: httpx.Client) -> None:
    create(http, "a", schemas=SCHEMA)

    assert "schemas" not in http.get(TYPES).json()["data"][0]
    assert "schemas" not in http.get(TYPES, params={"with_content": "false"}).json()["data"][0]
    assert http.get(TYPES, params={"with_content": "true"}).json()["data"][0]["schemas"] == SCHEMA


def test_list_default_limit_is_50(http: httpx.Client) -> None:
    for n in range(51):
        assert create(http, f"t{n:02d}").status_code == 201

    page = http.get(TYPES).json()
    assert (len(page["data"]), page["iterator"], page["done"]) == (50, "t49", False)
    assert len(http.get(TYPES, params={"limit": 250}).json()["data"]) == 51


@pytest.mark.parametrize(
    "query",
    [
        {"limit": 0},
        {"limit": 251},
        {"limit": "x"},
        {"order": "sideways"},
        {"iterator": "a b"},
        {"iterator": "-"},
        {"include_archived": "yes"},
        {"with_content": "1"},
    ],
)
def test_list_refuses_bad_parameters(http: httpx.Client, query: dict[str, str | int]) -> None:
    answer = http.get(TYPES, params=query)

    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"][0] == "query"


# Idempotency keys on create.


def test_idempotency_key_replays_the_first_create(
    http: httpx.Client, emulator: RunningEmulator
) -> None:
    key = {"idempotency-key": "create-1"}
    first = http.post(TYPES, json={"name": "a", "description": "one"}, headers=key)
    again = http.post(TYPES, json={"name": "b", "description": "two"}, headers=key)

    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert [t["name"] for t in emulator.event_types()] == ["a"]
    assert emulator.stats()["idempotent_replays"] == 1


def test_a_refused_create_is_not_kept_for_its_key(http: httpx.Client) -> None:
    create(http, "a")
    key = {"idempotency-key": "create-2"}
    assert http.post(TYPES, json={"name": "a", "description": "d"}, headers=key).status_code == 409
    assert http.delete(f"{TYPES}/a").status_code == 204

    assert http.post(TYPES, json={"name": "a", "description": "d"}, headers=key).status_code == 201


# An archived event type refuses new messages.


def test_an_archived_type_refuses_a_message_with_400_and_stores_nothing(
    http: httpx.Client, app_uid: str, emulator: RunningEmulator
) -> None:
    archive(http, "order.paid")
    answer = send(http, app_uid, "order.paid")

    assert answer.status_code == 400
    assert answer.json() == {
        "code": "event_type_archived",
        "detail": "Event type 'order.paid' is archived",
    }
    assert emulator.messages() == []
    stats = emulator.stats()
    assert (stats["archived_type_refusals"], stats["messages_created"]) == (1, 0)
    assert stats["validation_errors"] == 1


def test_an_archived_type_refuses_with_422_when_set_so(
    http: httpx.Client, app_uid: str, emulator: RunningEmulator
) -> None:
    archive(http, "order.paid")
    emulator.set_faults(archived_type_status=422)
    answer = send(http, app_uid, "order.paid")

    assert answer.status_code == 422
    assert answer.json() == {
        "detail": [
            {
                "loc": ["body", "eventType"],
                "msg": "Event type 'order.paid' is archived",
                "type": "value_error",
            }
        ]
    }
    assert emulator.messages() == []
    assert emulator.stats()["archived_type_refusals"] == 1
    assert emulator.faults()["archived_type_status"] == 422
    emulator.set_faults()
    assert "archived_type_status" not in emulator.faults()
    assert send(http, app_uid, "order.paid").status_code == 400


def test_unknown_live_and_unarchived_types_are_accepted(
    http: httpx.Client, app_uid: str, emulator: RunningEmulator
) -> None:
    create(http, "order.created")
    archive(http, "order.paid")
    assert send(http, app_uid, "never.created", event_id="evt-0").status_code == 202
    assert send(http, app_uid, "order.created", event_id="evt-2").status_code == 202
    refused = send(http, app_uid, "order.paid", key="send-1")
    assert refused.status_code == 400

    assert create(http, "order.paid").status_code == 201  # unarchived
    # The refusal was not kept for the key: the same request now goes through.
    assert send(http, app_uid, "order.paid", key="send-1").status_code == 202
    assert [m["eventType"] for m in emulator.messages()] == [
        "never.created",
        "order.created",
        "order.paid",
    ]


def test_an_expunged_type_is_unknown_again(
    http: httpx.Client, app_uid: str, emulator: RunningEmulator
) -> None:
    archive(http, "order.paid")
    assert http.delete(f"{TYPES}/order.paid?expunge=true").status_code == 204

    assert send(http, app_uid, "order.paid").status_code == 202
    assert emulator.stats()["archived_type_refusals"] == 0


def test_a_refused_message_does_not_create_its_application(
    http: httpx.Client, emulator: RunningEmulator
) -> None:
    archive(http, "order.paid")
    body = {
        "eventType": "order.paid",
        "payload": {"id": "src-1"},
        "application": {"name": "New", "uid": "new-app"},
    }
    assert http.post("/api/v1/app/new-app/msg", json=body).status_code == 400
    assert http.get("/api/v1/app/new-app").status_code == 404


# The setting: faults configuration, command line, environment.


@pytest.mark.parametrize("status", [200, 409, 500, "422", True])
def test_the_archived_status_must_be_400_or_422(emulator: RunningEmulator, status: object) -> None:
    with pytest.raises(ValueError, match="400"):
        emulator.set_faults(archived_type_status=status)


def test_the_archived_status_from_the_command_line_and_environment() -> None:
    args = _parser({}).parse_args(["--archived-type-status", "422"])
    assert faults_from_args(args) == {"archived_type_status": 422}
    env = {"SVIX_EMULATOR_ARCHIVED_TYPE_STATUS": "422"}
    assert faults_from_args(_parser(env).parse_args([])) == {"archived_type_status": 422}
    flag_wins = _parser(env).parse_args(["--archived-type-status", "400"])
    assert faults_from_args(flag_wins) == {"archived_type_status": 400}
    assert faults_from_args(_parser({}).parse_args([])) == {}


def test_a_bad_archived_status_flag_exits_with_a_usage_error() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "svix_emulator", "--archived-type-status", "500"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert b"--archived-type-status" in done.stderr


def test_an_emulator_started_with_422_keeps_it_across_resets() -> None:
    with start_emulator(env={"SVIX_EMULATOR_ARCHIVED_TYPE_STATUS": "422"}) as started:
        started.reset()
        recorded: list[Exchange] = []
        with make_http(started, recorded) as http:
            http.post("/api/v1/app", json={"name": "App", "uid": "app"})
            archive(http, "order.paid")
            assert send(http, "app", "order.paid").status_code == 422
        assert started.faults()["archived_type_status"] == 422
    if SPEC_PATH.exists():
        assert spec_problems(SpecChecker.load(), recorded) == []


# The spec check excuses these refusals, and only these.


@pytest.mark.skipif(not SPEC_PATH.exists(), reason="no Svix OpenAPI spec")
@pytest.mark.parametrize(
    ("status", "body", "excused"),
    [
        (400, b'{"code":"event_type_archived","detail":"Event type \'a\' is archived"}', True),
        (
            422,
            b'{"detail":[{"loc":["body","eventType"],"msg":"Event type \'a\' is archived",'
            b'"type":"value_error"}]}',
            True,
        ),
        (400, b'{"code":"bad_request","detail":"no"}', False),
        (
            422,
            b'{"detail":[{"loc":["body","payload"],"msg":"Event type \'a\' is archived",'
            b'"type":"value_error"}]}',
            False,
        ),
    ],
)
def test_the_spec_check_excuses_only_archived_type_refusals(
    spec_checker: SpecChecker, status: int, body: bytes, excused: bool
) -> None:
    exchange = Exchange(
        method="POST",
        raw_path="/api/v1/app/app/msg",
        query={},
        request_body=b'{"eventType":"a","payload":{}}',
        status=status,
        content_type="application/json",
        body=body,
    )
    assert (spec_problems(spec_checker, [exchange]) == []) is excused
