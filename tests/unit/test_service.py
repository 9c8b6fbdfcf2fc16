"""The service's retry policy with a scripted sender and a fake clock: how many attempts, how
long it waits, and when it gives up. (The real sender is tested against the emulator.)"""

from __future__ import annotations

import datetime as dt
import itertools
import json

import pytest

from relay.core.errors import (
    PermanentFailure,
    RateLimited,
    SendFailure,
    ServiceRefused,
    TransientFailure,
)
from relay.core.messages import OutgoingMessage
from relay.delivery.pacer import Pacer
from relay.delivery.ports import Accepted
from relay.delivery.service import Relay, RetryPolicy
from relay.entrypoints.answers import answer_for
from relay.pubsub.push import read_request
from tests.support import own_events
from tests.support.fakes import FakeTime

USER = own_events()["user-created"]
# Events that happened just now: none is looked up in Svix before it is created.
NOW = dt.datetime.now(dt.UTC).isoformat()


def fresh(event_id: str) -> bytes:
    event = {"object": "event", "id": event_id, "type": "user.created", "project": "p"}
    return json.dumps({**event, "time": NOW}).encode()


class ScriptedSender:
    """Answers each send with the next item of the script (an exception or Accepted)."""

    def __init__(self, script: list[SendFailure | Accepted], time: FakeTime) -> None:
        self.script = script
        self.sent: list[float] = []
        self._time = time

    def send(self, message: OutgoingMessage) -> Accepted:
        self.sent.append(self._time.now)
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, SendFailure):
            raise step
        return step

    def find(self, message: OutgoingMessage) -> Accepted | None:
        # Every event here is fresh: a look-up would be a bug of the service.
        raise AssertionError(f"looked up {message.event_id}, a fresh event")


def pacer_on(time: FakeTime) -> Pacer:
    return Pacer(retry_floor=0.1, retry_cap=60.0, clock=time.clock, sleep=time.sleep)


def relay_with(
    sender: ScriptedSender,
    time: FakeTime,
    budget: float = 10.0,
    *,
    pacer: Pacer | None = None,
    max_in_flight: int = 4,
) -> Relay:
    return Relay(
        sender=sender,
        pacer=pacer or pacer_on(time),
        policy=RetryPolicy(time_budget=budget, backoff_initial=0.1, backoff_max=1.0),
        max_in_flight=max_in_flight,
        clock=time.clock,
        sleep=time.sleep,
    )


def deliver(sender_script: list, budget: float = 10.0) -> tuple:
    time = FakeTime()
    sender = ScriptedSender(sender_script, time)
    relay = relay_with(sender, time, budget)
    body = fresh("evt_1")
    answer = answer_for(relay.handle(read_request(body, {}, max_events=10)))
    relay.close()
    return answer, sender, time


OK = Accepted("msg_1")


def test_first_attempt_success_does_not_wait():
    answer, sender, time = deliver([OK])
    assert answer.status == 200
    assert len(sender.sent) == 1
    assert time.sleeps == []


def test_transient_failures_back_off_exponentially_with_jitter_then_succeed():
    answer, sender, time = deliver([TransientFailure("boom")] * 4 + [OK])
    assert answer.status == 200
    assert len(sender.sent) == 5
    ceilings = [0.1, 0.2, 0.4, 0.8]
    assert all(c / 2 <= s <= c for s, c in zip(time.sleeps, ceilings, strict=True))


def test_retries_stop_before_the_budget_runs_out():
    answer, sender, time = deliver([TransientFailure("down")], budget=3.0)
    assert answer.status == 503
    assert time.now < 3.0
    assert 3 <= len(sender.sent) <= 8


def test_retry_after_is_honoured_and_budget_exhaustion_answers_429():
    answer, sender, _ = deliver([RateLimited("slow down", retry_after=2.0)], budget=5.0)
    assert answer.status == 429
    assert int(answer.headers["Retry-After"]) >= 1
    gaps = [b - a for a, b in zip(sender.sent, sender.sent[1:], strict=False)]
    assert gaps and all(gap >= 2.0 for gap in gaps)


@pytest.mark.parametrize(
    ("failure", "status"),
    [(PermanentFailure("bad", status=422), 422), (ServiceRefused("token", status=401), 503)],
)
def test_what_no_retry_can_fix_is_tried_once(failure: SendFailure, status: int):
    answer, sender, _ = deliver([failure, OK])
    assert answer.status == status
    assert len(sender.sent) == 1


def test_a_429_slows_every_sender_of_the_process_without_stopping_it():
    time = FakeTime()
    pacer = pacer_on(time)
    for _ in range(20):  # another thread was sending 20 calls/s and met a 429
        permit = pacer.acquire(deadline=time.now + 10)
        assert permit is not None
        time.now += 0.05
    assert permit is not None
    pacer.refused(permit, 1.0)
    cut, lowered = time.now, pacer.rate
    assert lowered is not None and lowered == pytest.approx(0.7 * 20, rel=0.1)
    sender = ScriptedSender([OK], time)
    relay = relay_with(sender, time, 10, pacer=pacer, max_in_flight=1)
    events = [
        {"object": "event", "id": f"evt_{n}", "type": "user.created", "project": "p", "time": NOW}
        for n in range(5)
    ]
    answer = answer_for(relay.handle(read_request(json.dumps(events).encode(), {}, max_events=10)))
    relay.close()
    assert answer.status == 200
    # Sent at the lowered pace (or faster, as it grows back) straight away, not after the
    # Retry-After (1 s).
    assert len(sender.sent) == 5
    gaps = [b - a for a, b in zip([cut, *sender.sent], sender.sent, strict=False)]
    assert all(0 < gap <= 1 / lowered + 1e-9 for gap in gaps)
    assert sender.sent[-1] - cut < 0.5


def test_a_refused_event_is_retried_no_sooner_than_its_retry_after_while_others_go_on():
    time = FakeTime()
    sender = ScriptedSender([RateLimited("slow down", retry_after=2.0), OK], time)
    relay = relay_with(sender, time, 10)
    body = fresh("evt_1")
    assert answer_for(relay.handle(read_request(body, {}, max_events=10))).status == 200
    assert sender.sent[1] - sender.sent[0] >= 2.0
    # The next event is sent without waiting for anything but its turn.
    sender.script = [OK]
    begun = time.now
    assert answer_for(relay.handle(read_request(body, {}, max_events=10))).status == 200
    relay.close()
    assert sender.sent[-1] - begun < 1.0


def test_a_single_event_and_a_batch_keep_one_pace():
    time = FakeTime()
    sender = ScriptedSender([RateLimited("slow down", retry_after=1.0), OK], time)
    relay = relay_with(sender, time, 10, max_in_flight=1)
    single = fresh("evt_0")
    assert answer_for(relay.handle(read_request(single, {}, max_events=10))).status == 200
    events = [
        {"object": "event", "id": f"evt_{n}", "type": "user.created", "project": "p", "time": NOW}
        for n in range(1, 6)
    ]
    sender.script = [OK]
    answer = answer_for(relay.handle(read_request(json.dumps(events).encode(), {}, max_events=10)))
    relay.close()
    assert answer.status == 200
    # The 429 met by the single event paces the batch: without it all five would leave at once.
    batch = sender.sent[2:]
    assert len(batch) == 5
    assert all(b > a for a, b in itertools.pairwise(batch))


@pytest.mark.parametrize("retry_after", [3 * 3600.0, float("inf")])
def test_an_absurd_retry_after_answers_429_at_once_instead_of_holding_the_event(
    retry_after: float,
):
    answer, sender, time = deliver([RateLimited("slow down", retry_after=retry_after)])
    assert answer.status == 429
    assert len(sender.sent) == 1
    assert time.sleeps == []
    assert int(answer.headers["Retry-After"]) == 60  # capped


def test_an_event_whose_turn_comes_after_the_budget_is_not_sent():
    time = FakeTime()

    class SlowSender(ScriptedSender):
        def send(self, message: OutgoingMessage) -> Accepted:
            time.now += 1.0  # each send takes a second of the budget
            return super().send(message)

    sender = SlowSender([OK], time)
    relay = relay_with(sender, time, 2.5, max_in_flight=1)
    events = [
        {"object": "event", "id": f"evt_{n}", "type": "user.created", "project": "p", "time": NOW}
        for n in range(5)
    ]
    answer = answer_for(relay.handle(read_request(json.dumps(events).encode(), {}, max_events=10)))
    relay.close()
    assert answer.status == 503
    outcomes = [event["outcome"] for event in answer.body["events"]]
    assert outcomes == ["delivered", "delivered", "delivered", "failed", "failed"]
    assert len(sender.sent) == 3
    assert "time budget ran out" in answer.body["events"][4]["reason"]


def test_an_event_without_a_turn_in_the_budget_is_not_sent_and_cuts_nothing():
    time = FakeTime()
    pacer = pacer_on(time)
    first = pacer.acquire(deadline=10.0)
    assert first is not None
    pacer.refused(first, 5.0)  # a cut at the minimum: 0.5 calls/s
    for _ in range(20):
        permit = pacer.acquire(deadline=time.now + 100)
        assert permit is not None
        pacer.refused(permit, 5.0)
    rate = pacer.rate
    assert rate is not None and rate < 1
    sender = ScriptedSender([OK], time)
    relay = relay_with(sender, time, 1.0, pacer=pacer, max_in_flight=1)
    body = fresh("evt_1")
    for _ in range(3):
        answer = answer_for(relay.handle(read_request(body, {}, max_events=10)))
        assert answer.status == 429
        assert int(answer.headers["Retry-After"]) >= 1
        assert answer.body["events"][0]["outcome"] == "rate_limited"
    relay.close()
    assert sender.sent == []
    assert pacer.rate == rate


@pytest.mark.parametrize("retry_after", [0.0, -3.0])
def test_a_retry_after_of_zero_or_less_never_retries_sooner_than_the_initial_backoff(
    retry_after: float,
):
    answer, sender, _ = deliver([RateLimited("slow down", retry_after=retry_after)] * 4 + [OK])
    assert answer.status == 200
    gaps = [b - a for a, b in zip(sender.sent, sender.sent[1:], strict=False)]
    assert len(gaps) == 4
    assert all(gap >= 0.1 for gap in gaps)  # the policy's initial backoff
