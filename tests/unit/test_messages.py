"""Mapping events to Svix messages: routing, the public payload, ids and idempotency keys."""

from __future__ import annotations

import copy
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.core.batch import IncomingEvent
from relay.core.errors import InvalidEvent, PayloadTooLarge
from relay.core.events import INTERNAL_FIELDS, parse_event, public_payload
from relay.core.ids import SVIX_ID_PATTERN
from relay.core.messages import MAX_PAYLOAD_BYTES, idempotency_key, svix_event_id, to_message
from tests.support import own_events

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


# Keys near the edges of the rule: internal names, a leading "_", and the separator the
# common-case check joins keys with.
_KEYS = st.one_of(
    st.sampled_from(
        [*sorted(INTERNAL_FIELDS), "_", "_x", "x_", "type", "\x00", "\x00_", "a\x00_b"]
    ),
    st.text(max_size=6),
)


@given(st.dictionaries(_KEYS, st.integers(), max_size=8), st.sampled_from(["x", "com.gigs.x"]))
def test_the_public_payload_is_the_event_minus_internal_and_underscore_fields(raw, kind):
    raw = {**raw, "type": kind}
    before = dict(raw)
    payload = public_payload(raw)
    kept = [k for k in raw if k not in INTERNAL_FIELDS and not k.startswith("_")]
    assert list(payload) == kept  # in the event's own order
    assert payload["type"] == "x"
    assert raw == before  # the event itself is left as it came


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
        # A type is a name in Svix's URL space too (/event-type/{name}): no dots-only names.
        ({"type": ".."}, "not a valid Svix event type"),
        ({"type": "com.gigs.."}, "not a valid Svix event type"),
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


# ---- naming an event in Svix: dot-only ids, fixed applications, boundaries -----------------------


@pytest.mark.parametrize("dots", [".", "..", "...", "." * 256])
def test_an_event_id_of_dots_is_never_a_path_segment(dots: str):
    assert svix_event_id(dots).startswith("evt_sha256_")
    assert svix_event_id(dots, project="acme").startswith("evt_sha256_")
    assert svix_event_id(dots) != svix_event_id(dots, project="acme")


@pytest.mark.parametrize("project", [".", "..", "..."])
def test_a_project_of_dots_is_not_an_application(project: str):
    raw = {**EVENTS["user-created"], "project": project}
    with pytest.raises(InvalidEvent, match="not a valid Svix application uid"):
        to_message(incoming(raw), fixed_app_id=None)


def test_without_a_fixed_application_the_event_id_is_the_svix_event_id():
    message = to_message(incoming(EVENTS["user-created"]), fixed_app_id=None)
    assert message.svix_event_id == svix_event_id(EVENTS["user-created"]["id"])
    assert message.idempotency_key == idempotency_key("acme-mobile", EVENTS["user-created"]["id"])


def test_with_a_fixed_application_the_project_is_part_of_the_event_id_and_the_key():
    raw = EVENTS["user-created"]
    message = to_message(incoming(raw), fixed_app_id="gigs")
    assert message.svix_event_id == f"acme-mobile.{raw['id']}"
    assert message.svix_event_id == svix_event_id(raw["id"], project="acme-mobile")
    assert message.idempotency_key == idempotency_key("gigs", raw["id"], project="acme-mobile")
    other = to_message(incoming({**raw, "project": "beta-telco"}), fixed_app_id="gigs")
    assert other.svix_event_id != message.svix_event_id
    assert other.idempotency_key != message.idempotency_key


def test_an_event_without_project_keeps_the_ids_it_had_before_projects_counted():
    # Messages already in Svix must still dedup: the key and eventId of such events never change.
    raw = {k: v for k, v in EVENTS["user-created"].items() if k != "project"}
    message = to_message(incoming(raw), fixed_app_id="gigs")
    digest = hashlib.sha256(f"gigs\n{raw['id']}".encode()).hexdigest()[:48]
    assert message.idempotency_key == f"gigs-relay-v1-{digest}"
    assert message.svix_event_id == raw["id"]
    assert idempotency_key("gigs", raw["id"], project=None) == message.idempotency_key
    assert svix_event_id("evt:1", project=None) == svix_event_id("evt:1")


def test_the_readable_fixed_application_form_stops_at_256_characters():
    project = "p" * 100
    fits = "e" * (256 - len(project) - 1)
    assert svix_event_id(fits, project=project) == f"{project}.{fits}"
    assert len(svix_event_id(fits, project=project)) == 256
    over = svix_event_id(fits + "e", project=project)
    assert over.startswith("evt_sha256_")
    assert over != svix_event_id(fits + "e")  # not the project-less digest either
    assert svix_event_id("e" * 256) == "e" * 256
    assert svix_event_id("e" * 257).startswith("evt_sha256_")


@pytest.mark.parametrize(
    ("one", "other"),
    [
        # A dot in the project would make the readable form split in the wrong place.
        (("a.b", "c"), ("a", "b.c")),
        # A newline in either part would let two pairs share one digest input.
        (("a\nb", "c:1"), ("a", "b\nc:1")),
        # Confusables: Cyrillic a (U+0430) is not Latin a.
        (("\u0430cme", "evt_1"), ("acme", "evt_1")),
        # A project of 256 characters leaves no room for the readable form.
        (("p" * 256, "evt_1"), ("p" * 255, "evt_1")),
        (("p" * 256, "evt_1"), ("p" * 256, "evt_2")),
    ],
)
def test_distinct_project_and_event_pairs_get_distinct_ids_and_keys(
    one: tuple[str, str], other: tuple[str, str]
):
    (p1, e1), (p2, e2) = one, other
    assert svix_event_id(e1, project=p1) != svix_event_id(e2, project=p2)
    assert idempotency_key("gigs", e1, project=p1) != idempotency_key("gigs", e2, project=p2)
    for project, event_id in (one, other):
        assert SVIX_ID_PATTERN.fullmatch(svix_event_id(event_id, project=project))
        assert len(svix_event_id(event_id, project=project)) <= 256


def test_a_project_event_never_shares_an_id_or_key_with_a_project_less_one():
    # A project-less id spelling out the digest input of a project event.
    assert svix_event_id("acme\nevt:1") != svix_event_id("evt:1", project="acme")
    assert svix_event_id("a.b\nevt_1") != svix_event_id("evt_1", project="a.b")
    assert idempotency_key("gigs", "acme\nevt_1") != idempotency_key(
        "gigs", "evt_1", project="acme"
    )


def test_an_event_id_that_looks_like_a_digest_is_digested_too():
    # Otherwise it would take the eventId of the event whose id was digested into it.
    odd = "evt:with/slash"
    looks_alike = svix_event_id(odd)
    assert svix_event_id(looks_alike) != looks_alike
    assert svix_event_id(looks_alike) != svix_event_id(odd)
    assert svix_event_id("evt_sha256_abc").startswith("evt_sha256_")


def test_an_empty_project_under_a_fixed_application_counts_as_none():
    assert svix_event_id("evt_1", project="") == "evt_1"
    assert idempotency_key("gigs", "evt_1", project="") == idempotency_key("gigs", "evt_1")


def test_ids_shaped_like_svix_object_ids_are_not_used_as_they_are():
    message_id = "msg_" + "2aBc" * 6 + "xyz"  # msg_ and 27 base62 characters
    assert svix_event_id(message_id).startswith("evt_sha256_")
    assert svix_event_id("msg_short") == "msg_short"
    application_id = "app_" + "2aBc" * 6 + "xyz"
    raw = {**EVENTS["user-created"], "project": application_id}
    with pytest.raises(InvalidEvent, match="Svix application id"):
        to_message(incoming(raw), fixed_app_id=None)
    assert to_message(incoming({**raw, "project": "app_short"}), fixed_app_id=None)
