"""The service's retry policy with a scripted sender and a fake clock: how many attempts, how
long it waits, and when it gives up. (The real sender is tested against the emulator.)"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from relay.core.errors import (
    PermanentFailure,
    RateLimited,
    SendFailure,
    ServiceRefused,
    TransientFailure,
)
from relay.core.messages import OutgoingMessage
from relay.delivery.ports import Accepted
from relay.delivery.service import Relay, RetryPolicy
from relay.pubsub.push import read_request
from relay.rate_gate import RateLimitGate
from tests.support import own_events
from tests.support.fakes import FakeTime

USER = own_events()["user-created"]


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


def gate_on(time: FakeTime) -> RateLimitGate:
    return RateLimitGate(initial_backoff=0.1, max_backoff=1.0, clock=time.clock, sleep=time.sleep)


def relay_with(
    sender: ScriptedSender,
    time: FakeTime,
    budget: float = 10.0,
    *,
    gate: RateLimitGate | None = None,
    max_in_flight: int = 4,
) -> Relay:
    return Relay(
        sender=sender,
        gate=gate or gate_on(time),
        policy=RetryPolicy(time_budget=budget, backoff_initial=0.1, backoff_max=1.0),
        max_in_flight=max_in_flight,
        clock=time.clock,
        sleep=time.sleep,
    )


def deliver(sender_script: list, budget: float = 10.0) -> tuple:
    time = FakeTime()
    sender = ScriptedSender(sender_script, time)
    relay = relay_with(sender, time, budget)
    body = b'{"object": "event", "id": "evt_1", "type": "user.created", "project": "p"}'
    answer = relay.handle(read_request(body, {}, max_events=10))
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


def test_a_429_makes_every_sender_of_the_process_wait():
    time = FakeTime()
    gate = gate_on(time)
    gate.close_for(1.5)  # another thread's 429, moments ago
    sender = ScriptedSender([OK], time)
    relay = relay_with(sender, time, 10, gate=gate, max_in_flight=1)
    body = b'{"object": "event", "id": "evt_1", "type": "user.created", "project": "p"}'
    assert relay.handle(read_request(body, {}, max_events=10)).status == 200
    relay.close()
    assert sender.sent[0] >= 1.5


def test_own_events_map_and_send(make_relay: Callable, svix) -> None:
    # Guard against the fakes drifting from the real wiring: the same body through the real one.
    client = make_relay()
    assert client.post("/", json=USER).status_code == 200


def test_an_event_whose_turn_comes_after_the_budget_is_not_sent():
    time = FakeTime()

    class SlowSender(ScriptedSender):
        def send(self, message: OutgoingMessage) -> Accepted:
            time.now += 1.0  # each send takes a second of the budget
            return super().send(message)

    sender = SlowSender([OK], time)
    relay = relay_with(sender, time, 2.5, max_in_flight=1)
    events = [
        {"object": "event", "id": f"evt_{n}", "type": "user.created", "project": "p"}
        for n in range(5)
    ]
    answer = relay.handle(read_request(json.dumps(events).encode(), {}, max_events=10))
    relay.close()
    assert answer.status == 503
    outcomes = [event["outcome"] for event in answer.body["events"]]
    assert outcomes == ["delivered", "delivered", "delivered", "failed", "failed"]
    assert len(sender.sent) == 3
    assert "time budget ran out" in answer.body["events"][4]["reason"]


def test_waiting_out_the_gate_past_the_budget_does_not_close_it_further():
    time = FakeTime()
    gate = gate_on(time)
    gate.close_for(5.0)
    sender = ScriptedSender([OK], time)
    relay = relay_with(sender, time, 1.0, gate=gate, max_in_flight=1)
    body = b'{"object": "event", "id": "evt_1", "type": "user.created", "project": "p"}'
    for _ in range(3):
        assert relay.handle(read_request(body, {}, max_events=10)).status == 429
    relay.close()
    assert sender.sent == []
    assert gate.remaining() == pytest.approx(5.0)
