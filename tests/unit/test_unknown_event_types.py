"""The event types the catalogue lacks: created in Svix after their first delivered event,
once per instance, and never at the cost of a delivery."""

from __future__ import annotations

import json
import logging
import threading

import pytest

from relay.core.errors import PermanentFailure, RateLimited, TransientFailure
from relay.core.messages import OutgoingMessage
from relay.delivery.event_types import (
    MAX_CREATED_PER_INSTANCE,
    RETRY_AFTER_SECONDS,
    UnknownEventTypes,
)
from relay.delivery.pacer import Pacer
from relay.delivery.ports import Accepted, EventTypeState
from relay.delivery.service import Relay, RetryPolicy
from relay.pubsub.push import read_request
from tests.support.fakes import FakeEventTypeRegistry, FakeTime
from tests.unit.test_service import NOW


class Sender:
    def __init__(self, failure: Exception | None = None) -> None:
        self.failure = failure
        self.sent: list[str] = []

    def send(self, message: OutgoingMessage) -> Accepted:
        self.sent.append(message.event_type)
        if self.failure is not None:
            raise self.failure
        return Accepted(f"msg_{len(self.sent)}")

    def find(self, message: OutgoingMessage) -> Accepted | None:
        raise AssertionError("fresh events are not looked up")


def events(*types: str) -> bytes:
    return json.dumps(
        [
            {"id": f"evt_{i}", "type": t, "project": "p", "time": NOW, "data": {}}
            for i, t in enumerate(types)
        ]
    ).encode()


def relay_for(
    registry: FakeEventTypeRegistry,
    *,
    catalogue: frozenset[str] = frozenset(),
    sender: Sender | None = None,
    time: FakeTime | None = None,
) -> tuple[Relay, Sender, FakeTime]:
    time = time or FakeTime()
    sender = sender or Sender()
    unknown = UnknownEventTypes(registry, catalogue=catalogue, clock=time.clock)
    relay = Relay(
        sender=sender,
        pacer=Pacer(retry_floor=0.1, retry_cap=60.0, clock=time.clock, sleep=time.sleep),
        policy=RetryPolicy(time_budget=10.0, backoff_initial=0.1, backoff_max=1.0),
        max_in_flight=8,
        event_types=unknown,
        clock=time.clock,
        sleep=time.sleep,
    )
    return relay, sender, time


def handle(relay: Relay, body: bytes) -> list[str]:
    """The outcomes, once the types the events handed over are settled (off the request)."""
    result = relay.handle(read_request(body, {}, max_events=100))
    unknown = relay._event_types
    assert unknown is not None and unknown.wait_idle(5)
    return [r.outcome.value for r in result.events]


def test_a_type_outside_the_catalogue_is_created_once_with_its_group():
    registry = FakeEventTypeRegistry()
    relay, _, _ = relay_for(registry, catalogue=frozenset({"user.created"}))
    handle(relay, events("user.created", "sim.activated", "sim.activated"))
    handle(relay, events("sim.activated"))
    relay.close()
    assert registry.asked == ["sim.activated"]
    [(name, description, group)] = registry.created
    assert (name, group) == ("sim.activated", "sim")
    assert "sim.activated" in description


def test_a_type_svix_has_is_asked_about_once_and_not_created():
    registry = FakeEventTypeRegistry({"sim.activated": EventTypeState.ACTIVE})
    relay, _, _ = relay_for(registry)
    handle(relay, events("sim.activated"))
    handle(relay, events("sim.activated"))
    relay.close()
    assert registry.asked == ["sim.activated"]
    assert registry.created == []


def test_an_archived_type_is_never_unarchived(caplog: pytest.LogCaptureFixture):
    registry = FakeEventTypeRegistry({"sim.activated": EventTypeState.ARCHIVED})
    relay, _, _ = relay_for(registry)
    with caplog.at_level(logging.WARNING, logger="relay"):
        handle(relay, events("sim.activated"))
    relay.close()
    assert registry.created == []
    assert "archived" in caplog.text


@pytest.mark.parametrize(
    "failure",
    [
        TransientFailure("Svix answered 503"),
        RateLimited("Svix rate limit (429)", retry_after=1.0),
        PermanentFailure("Svix rejected it (422)"),
        RuntimeError("a bug in an adapter"),
    ],
    ids=lambda f: type(f).__name__,
)
def test_a_failure_is_a_warning_that_costs_delivery_nothing_and_is_tried_again_later(
    failure: Exception, caplog: pytest.LogCaptureFixture
):
    registry = FakeEventTypeRegistry()
    registry.failure = failure
    relay, sender, time = relay_for(registry)
    with caplog.at_level(logging.WARNING, logger="relay"):
        assert handle(relay, events("sim.activated")) == ["delivered"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "could not create Svix event type sim.activated" in warnings[0].getMessage()
    # Not on every event: only after the pause.
    handle(relay, events("sim.activated"))
    assert registry.asked == ["sim.activated"]
    registry.failure = None
    time.now += RETRY_AFTER_SECONDS
    handle(relay, events("sim.activated"))
    relay.close()
    assert registry.asked == ["sim.activated"] * 2
    assert [c[0] for c in registry.created] == ["sim.activated"]
    assert sender.sent == ["sim.activated"] * 3


def test_an_event_svix_did_not_take_creates_no_type():
    registry = FakeEventTypeRegistry()
    relay, _, _ = relay_for(registry, sender=Sender(TransientFailure("Svix answered 503")))
    assert handle(relay, events("sim.activated")) == ["failed"]
    relay.close()
    assert registry.asked == []


@pytest.mark.parametrize("status", [400, 422])
def test_a_refusal_in_other_words_is_explained_when_svix_holds_the_type_archived(status: int):
    registry = FakeEventTypeRegistry({"sim.activated": EventTypeState.ARCHIVED})
    refusal = PermanentFailure(
        f"Svix rejected the message ({status}): bad_request: nope", status=status
    )
    relay, _, _ = relay_for(registry, sender=Sender(refusal))
    result = relay.handle(read_request(events("sim.activated"), {}, max_events=10))
    relay.close()
    [rejected] = result.events
    assert rejected.reason is not None
    assert rejected.reason.startswith("Svix refused the message because its event type is archived")
    assert "bad_request: nope" in rejected.reason  # Svix's own words stay
    assert "event-types sync" in rejected.reason
    assert registry.created == []


@pytest.mark.parametrize(
    ("state", "failure"),
    [
        (EventTypeState.ACTIVE, None),
        (EventTypeState.MISSING, None),
        (EventTypeState.ARCHIVED, TransientFailure("Svix answered 503")),
    ],
)
def test_a_refusal_keeps_its_reason_when_the_type_is_not_archived_or_svix_cannot_tell(
    state: EventTypeState, failure: Exception | None
):
    registry = FakeEventTypeRegistry({"sim.activated": state})
    registry.failure = failure
    refusal = PermanentFailure("Svix rejected the message (400): bad_request: nope", status=400)
    relay, _, _ = relay_for(registry, sender=Sender(refusal))
    result = relay.handle(read_request(events("sim.activated"), {}, max_events=10))
    relay.close()
    assert [r.reason for r in result.events] == [refusal.reason]


def test_an_instance_creates_at_most_so_many_types(caplog: pytest.LogCaptureFixture):
    registry = FakeEventTypeRegistry()
    relay, _, _ = relay_for(registry)
    names = [f"bug.usr_{n}" for n in range(MAX_CREATED_PER_INSTANCE + 5)]
    with caplog.at_level(logging.WARNING, logger="relay"):
        assert set(handle(relay, events(*names))) == {"delivered"}
    relay.close()
    assert len(registry.created) == MAX_CREATED_PER_INSTANCE
    assert "is a producer putting ids into event types?" in caplog.text


class HeldRegistry(FakeEventTypeRegistry):
    """Svix's event types, whose look-ups wait until the test lets them answer."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def event_type_state(self, name: str) -> EventTypeState:
        self.entered.set()
        assert self.release.wait(5)
        return super().event_type_state(name)


def test_delivered_returns_before_svix_answers_and_the_type_is_settled_after():
    registry = HeldRegistry()
    unknown = UnknownEventTypes(registry, catalogue=frozenset())
    try:
        unknown.delivered("sim.activated")  # returns while the look-up is held
        assert registry.entered.wait(5)
        assert not unknown.wait_idle(0)
        assert registry.created == []
    finally:
        registry.release.set()
    assert unknown.wait_idle(5)
    assert [c[0] for c in registry.created] == ["sim.activated"]


def test_many_threads_meeting_new_types_ask_svix_once_per_type():
    registry = HeldRegistry()
    unknown = UnknownEventTypes(registry, catalogue=frozenset({"user.created"}))
    names = [f"sim.kind{n % 5}" for n in range(40)] + ["user.created"] * 8
    # While the first look-up is held, every thread hands its type over and goes on at once.
    threads = [threading.Thread(target=unknown.delivered, args=(name,)) for name in names]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(5)
            assert not thread.is_alive()
        assert registry.entered.wait(5)
    finally:
        registry.release.set()
    assert unknown.wait_idle(5)
    assert sorted(registry.asked) == [f"sim.kind{n}" for n in range(5)]
    assert sorted(c[0] for c in registry.created) == registry.asked
    for name in names:  # settled: never asked again
        unknown.delivered(name)
    assert unknown.wait_idle(5)
    assert len(registry.asked) == 5


def test_no_thread_is_left_running_once_the_types_are_settled():
    unknown = UnknownEventTypes(FakeEventTypeRegistry(), catalogue=frozenset())
    unknown.delivered("sim.activated")
    assert unknown.wait_idle(5)
    assert not [t for t in threading.enumerate() if t.name == "relay-event-types"]
