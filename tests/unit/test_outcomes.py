"""The HTTP answer for a batch: the decision Pub/Sub's retry policy rests on."""

from __future__ import annotations

import pytest

from relay.core.outcomes import BatchResult, EventResult, Outcome
from relay.entrypoints.answers import answer_for as answer_for_batch


def answer_for(results: list[EventResult], *, retry_after: float = 0.0):
    return answer_for_batch(BatchResult(results, retry_after=retry_after))


def result(outcome: Outcome, n: int = 0, status: int | None = None) -> EventResult:
    return EventResult(n, f"evt_{n}", outcome, reason=f"reason {n}", status=status)


@pytest.mark.parametrize(
    ("outcomes", "status"),
    [
        ([], 200),
        ([Outcome.DELIVERED], 200),
        ([Outcome.DELIVERED, Outcome.DUPLICATE, Outcome.PARKED], 200),
        ([Outcome.DELIVERED, Outcome.FAILED], 503),
        ([Outcome.RATE_LIMITED, Outcome.FAILED], 503),
        ([Outcome.DELIVERED, Outcome.RATE_LIMITED], 429),
        ([Outcome.REJECTED, Outcome.RATE_LIMITED], 429),
        ([Outcome.DELIVERED, Outcome.REJECTED], 422),
    ],
)
def test_status_decision(outcomes: list[Outcome], status: int):
    answer = answer_for([result(o, i) for i, o in enumerate(outcomes)])
    assert answer.status == status
    assert answer.status != 202  # the Pub/Sub emulator treats 202 as a nack


def test_the_summary_counts_outcomes_and_names_every_event():
    answer = answer_for([result(Outcome.DELIVERED, 0), result(Outcome.DUPLICATE, 1)])
    assert answer.body["counts"] == {"delivered": 1, "duplicate": 1}
    assert [e["id"] for e in answer.body["events"]] == ["evt_0", "evt_1"]


def test_rate_limited_answer_carries_retry_after_rounded_up():
    answer = answer_for([result(Outcome.RATE_LIMITED)], retry_after=2.1)
    assert answer.headers == {"Retry-After": "3"}
    assert answer_for([result(Outcome.RATE_LIMITED)]).headers == {"Retry-After": "1"}


def test_a_permanent_failure_names_the_event_and_reason():
    answer = answer_for([result(Outcome.REJECTED, 7)])
    assert "evt_7: reason 7" in answer.body["error"]


def test_only_too_large_payloads_answer_413():
    assert answer_for([result(Outcome.REJECTED, 0, status=413)]).status == 413
    mixed = [result(Outcome.REJECTED, 0, status=413), result(Outcome.REJECTED, 1, status=422)]
    assert answer_for(mixed).status == 422
