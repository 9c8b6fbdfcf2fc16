"""Events that may be older than Svix's dedup windows are looked up before they are created;
fresh ones cost no extra call."""

from __future__ import annotations

import json
import time

import pytest

from relay.core.batch import Origin
from relay.core.errors import TransientFailure
from relay.core.messages import OutgoingMessage
from relay.core.outcomes import Outcome
from relay.delivery.pacer import Pacer
from relay.delivery.ports import Accepted
from relay.delivery.service import Relay, RetryPolicy
from relay.delivery.windows import LOOK_FIRST_AFTER_SECONDS, may_be_old
from relay.pubsub.push import read_request
from tests.support import own_events, push_envelope
from tests.support.fakes import FakeTime

HOUR = 3600.0
USER = own_events()["user-created"]


class Svix:
    """A sender that holds what it was given, and counts its calls."""

    def __init__(self, held: set[str] | None = None, find_fails: int = 0) -> None:
        self.held = held or set()
        self.calls: list[tuple[str, str]] = []
        self._find_fails = find_fails

    def send(self, message: OutgoingMessage) -> Accepted:
        self.calls.append(("send", message.event_id))
        self.held.add(message.event_id)
        return Accepted(f"msg_{message.event_id}")

    def find(self, message: OutgoingMessage) -> Accepted | None:
        self.calls.append(("find", message.event_id))
        if self._find_fails:
            self._find_fails -= 1
            raise TransientFailure("Svix answered 503 to the look-up", status=503)
        if message.event_id in self.held:
            return Accepted(f"msg_{message.event_id}", already_existed=True)
        return None


def relay_for(svix: Svix, fake: FakeTime) -> Relay:
    return Relay(
        sender=svix,
        pacer=Pacer(retry_floor=0.1, retry_cap=60.0, clock=fake.clock, sleep=fake.sleep),
        policy=RetryPolicy(time_budget=10.0, backoff_initial=0.1, backoff_max=1.0),
        max_in_flight=4,
        clock=fake.clock,
        sleep=fake.sleep,
    )


def pushed(event: dict, *, hours_ago: float, attempt: int | None = None):
    published = time.time() - hours_ago * HOUR
    envelope = push_envelope(event, delivery_attempt=attempt)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(published))
    envelope["message"]["publishTime"] = envelope["message"]["publish_time"] = stamp
    return read_request(json.dumps(envelope).encode(), {}, max_events=10)


def test_a_fresh_push_costs_one_call():
    svix = Svix()
    result = relay_for(svix, FakeTime()).handle(pushed(USER, hours_ago=0.01))
    assert [r.outcome for r in result.events] == [Outcome.DELIVERED]
    assert svix.calls == [("send", USER["id"])]


def test_a_push_published_past_the_window_that_svix_holds_is_found_not_created():
    svix = Svix(held={USER["id"]})
    result = relay_for(svix, FakeTime()).handle(pushed(USER, hours_ago=25))
    assert [r.outcome for r in result.events] == [Outcome.DUPLICATE]
    assert result.events[0].svix_message_id == f"msg_{USER['id']}"
    assert svix.calls == [("find", USER["id"])]


def test_a_push_published_past_the_window_that_svix_lacks_is_created_after_the_look_up():
    svix = Svix()
    result = relay_for(svix, FakeTime()).handle(pushed(USER, hours_ago=13))
    assert [r.outcome for r in result.events] == [Outcome.DELIVERED]
    assert svix.calls == [("find", USER["id"]), ("send", USER["id"])]


def test_a_failed_look_up_is_retried_and_never_skipped():
    svix = Svix(held={USER["id"]}, find_fails=2)
    result = relay_for(svix, FakeTime()).handle(pushed(USER, hours_ago=30))
    assert [r.outcome for r in result.events] == [Outcome.DUPLICATE]
    assert svix.calls == [("find", USER["id"])] * 3


def test_replay_says_it_looked_already():
    svix = Svix()
    relay = relay_for(svix, FakeTime())
    result = relay.handle(pushed(USER, hours_ago=40), looked_up=True)
    assert [r.outcome for r in result.events] == [Outcome.DELIVERED]
    assert svix.calls == [("send", USER["id"])]


NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("published", "happened", "attempt", "old"),
    [
        (NOW - 60, NOW - 30 * 24 * HOUR, None, False),  # published now: the event's time is moot
        (NOW - LOOK_FIRST_AFTER_SECONDS - 1, None, None, True),
        (NOW - LOOK_FIRST_AFTER_SECONDS + 1, None, None, False),
        (None, NOW - 12 * HOUR, None, True),  # a direct post: only the event's own time says
        (None, NOW - HOUR, None, False),
        (None, None, None, True),  # a direct post with no time to clear it
        (None, NOW + 3600, None, True),  # ... or a time in the future
        (None, NOW + 60, None, False),  # within the clock skew
        (NOW - 60, None, 66, False),  # 66 tries at most 600 s apart: 11 h exactly, not more
        (NOW - 60, None, 67, True),
    ],
)
def test_which_events_may_be_older_than_the_windows(published, happened, attempt, old):
    source = Origin(message_id="1", delivery_attempt=attempt)
    assert may_be_old(source, happened, published, now=NOW) is old
