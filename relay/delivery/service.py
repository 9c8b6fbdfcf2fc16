"""The relay's service layer: every event of a batch becomes one Svix message, or a reason.

It maps events to messages, sends them (concurrently, with a bounded number in flight), retries
what a retry can fix within the request's time budget, parks what it cannot, logs one line per
event, and hands back the results; `outcomes.answer_for` turns them into the HTTP answer.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from relay.core.batch import Batch, IncomingEvent, Origin
from relay.core.errors import (
    InvalidEvent,
    ParkingFailed,
    PayloadTooLarge,
    PermanentFailure,
    RateLimited,
    SendFailure,
    TransientFailure,
)
from relay.core.messages import OutgoingMessage, to_message
from relay.core.outcomes import Answer, EventResult, Outcome, answer_for
from relay.delivery.ports import Accepted, MessageSender, ParkedEvent, ParkingLot
from relay.logs import TRACE_FIELD, fields, log
from relay.rate_gate import RateLimitGate

# A refused token or unknown application is not retried within the request (it will not fix
# itself in seconds) but still answered 503: the message comes back once the deployment is fixed.
RETRYABLE = (TransientFailure, RateLimited)


class GateStillClosed(RateLimited):
    """The gate stayed closed (after a 429 seen by any sender) past the time budget. Svix said
    nothing new, so this must not close the gate any further."""


@dataclass(frozen=True)
class RetryPolicy:
    time_budget: float  # seconds from the request's start after which no attempt starts
    backoff_initial: float
    backoff_max: float


class Relay:
    def __init__(
        self,
        *,
        sender: MessageSender,
        gate: RateLimitGate,
        policy: RetryPolicy,
        max_in_flight: int,
        fixed_app_id: str | None = None,
        parking: ParkingLot | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._sender = sender
        self._gate = gate
        self._policy = policy
        self._fixed_app_id = fixed_app_id
        self._parking = parking
        self._clock = clock
        self._sleep = sleep
        self._pool = ThreadPoolExecutor(max_in_flight, thread_name_prefix="relay-send")
        self._rng = random.Random()

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def handle(self, batch: Batch, *, trace: str | None = None) -> Answer:
        """Deliver every event of the batch and decide the answer."""
        if batch.unreadable is not None:
            return self._unreadable(batch, trace)
        deadline = self._clock() + self._policy.time_budget

        def one(incoming: IncomingEvent) -> EventResult:
            return self._relay_event(incoming, batch, deadline, trace)

        if len(batch.events) <= 1:
            results = [one(incoming) for incoming in batch.events]
        else:
            results = list(self._pool.map(one, batch.events))
        return answer_for(results, retry_after=self._gate.remaining())

    def _relay_event(
        self,
        incoming: IncomingEvent,
        batch: Batch,
        deadline: float,
        trace: str | None,
    ) -> EventResult:
        started = self._clock()
        try:
            message = to_message(incoming, fixed_app_id=self._fixed_app_id)
        except InvalidEvent as exc:
            event_type = incoming.event.type if incoming.event else None
            status = 413 if isinstance(exc, PayloadTooLarge) else None
            result = self._permanent(
                incoming, batch, str(exc), event_type=event_type, app_id=None, status=status
            )
        else:
            result = self._send(incoming, message, deadline, batch, trace)
        self._log(result, batch.source, trace, self._clock() - started)
        return result

    def _send(
        self,
        incoming: IncomingEvent,
        message: OutgoingMessage,
        deadline: float,
        batch: Batch,
        trace: str | None,
    ) -> EventResult:
        attempts = 0
        try:
            while True:
                if self._clock() >= deadline:
                    # Queued behind other events of a large batch until the budget ran out.
                    raise TransientFailure("not sent: the request's time budget ran out first")
                attempts += 1
                try:
                    accepted = self._send_once(message, deadline)
                    break
                except GateStillClosed:
                    raise
                except RETRYABLE as failure:
                    pause = self._pause_after(failure, attempts)
                    if self._clock() + pause >= deadline:
                        raise
                    self._log_retry(message, failure, attempts, pause, trace)
                    self._sleep(pause)
        except PermanentFailure as exc:
            return self._permanent(
                incoming,
                batch,
                exc.reason,
                event_type=message.event_type,
                app_id=message.app_id,
                status=exc.status,
                attempts=attempts,
            )
        except SendFailure as exc:
            return EventResult(
                incoming.position,
                incoming.event_id,
                Outcome.RATE_LIMITED if isinstance(exc, RateLimited) else Outcome.FAILED,
                event_type=message.event_type,
                app_id=message.app_id,
                reason=exc.reason,
                attempts=attempts,
                status=exc.status,
            )
        return EventResult(
            incoming.position,
            incoming.event_id,
            Outcome.DUPLICATE if accepted.already_existed else Outcome.DELIVERED,
            event_type=message.event_type,
            app_id=message.app_id,
            svix_message_id=accepted.svix_message_id,
            attempts=attempts,
        )

    def _send_once(self, message: OutgoingMessage, deadline: float) -> Accepted:
        ticket = self._gate.enter(deadline)
        if ticket is None:
            raise GateStillClosed(
                "Svix rate limit keeps the relay waiting past the time budget", retry_after=None
            )
        rate_limited = False
        try:
            return self._sender.send(message)
        except RateLimited:
            rate_limited = True
            raise
        finally:
            self._gate.leave(ticket, rate_limited=rate_limited)

    def _pause_after(self, failure: SendFailure, attempt: int) -> float:
        """How long to wait before the next attempt: a 429 closes the gate for every sender of
        the process (this one included); anything else backs off exponentially with jitter."""
        if isinstance(failure, RateLimited):
            return self._gate.close_for(failure.retry_after)
        ceiling = min(self._policy.backoff_max, self._policy.backoff_initial * 2 ** (attempt - 1))
        return self._rng.uniform(ceiling / 2, ceiling)

    def _log_retry(
        self,
        message: OutgoingMessage,
        failure: SendFailure,
        attempt: int,
        pause: float,
        trace: str | None,
    ) -> None:
        log.warning(
            "retrying event %s in %.2fs after attempt %d: %s",
            message.event_id,
            pause,
            attempt,
            failure.reason,
            extra=fields(
                event_id=message.event_id,
                event_type=message.event_type,
                app_id=message.app_id,
                attempt=attempt,
                retry_in_seconds=round(pause, 3),
                svix_status=failure.status,
                **{TRACE_FIELD: trace},
            ),
        )

    def _permanent(
        self,
        incoming: IncomingEvent,
        batch: Batch,
        reason: str,
        *,
        event_type: str | None,
        app_id: str | None,
        status: int | None,
        attempts: int = 0,
    ) -> EventResult:
        """An event no retry can deliver: parked when there is a parking topic, else rejected."""
        outcome = Outcome.REJECTED
        if self._parking is not None:
            try:
                self._parking.park(_parked(incoming, batch, reason))
                outcome = Outcome.PARKED
            except ParkingFailed as exc:
                log.error("%s", exc, exc_info=True, extra=fields(event_id=incoming.event_id))
                outcome, reason = Outcome.FAILED, f"{reason}; and parking it failed: {exc}"
        return EventResult(
            incoming.position,
            incoming.event_id,
            outcome,
            event_type=event_type,
            app_id=app_id,
            reason=reason,
            attempts=attempts,
            status=status,
        )

    def _unreadable(self, batch: Batch, trace: str | None) -> Answer:
        """A Pub/Sub message no event can be read from: park it whole, or refuse it."""
        reason = batch.unreadable or "unreadable message"
        message_id = batch.source.message_id if batch.source else None
        label = f"message {message_id}" if message_id else "request"
        if self._parking is None:
            self._log_line(f"{label} rejected: {reason}", Outcome.REJECTED, batch.source, trace)
            return Answer(400, {"error": reason})
        try:
            self._parking.park(
                ParkedEvent(
                    batch.data,
                    reason,
                    event_id=f"message:{message_id}",
                    attributes=_source_attributes(batch),
                )
            )
        except ParkingFailed as exc:
            log.error("%s", exc, exc_info=True)
            return Answer(503, {"error": f"{reason}; and parking it failed: {exc}"})
        self._log_line(f"{label} parked: {reason}", Outcome.PARKED, batch.source, trace)
        return Answer(200, {"counts": {"parked": 1}, "events": [], "parked": reason})

    def _log(
        self, result: EventResult, source: Origin | None, trace: str | None, took: float
    ) -> None:
        level = {
            Outcome.DELIVERED: logging.INFO,
            Outcome.DUPLICATE: logging.INFO,
            Outcome.RATE_LIMITED: logging.WARNING,
        }.get(result.outcome, logging.ERROR)
        text = f"event {result.event_id} {result.outcome.value}"
        if result.reason:
            text = f"{text}: {result.reason}"
        log.log(
            level,
            text,
            extra=fields(
                event_id=result.event_id,
                event_type=result.event_type,
                app_id=result.app_id,
                outcome=result.outcome.value,
                svix_message_id=result.svix_message_id,
                attempts=result.attempts,
                latency_ms=round(took * 1000, 1),
                svix_status=result.status,
                reason=result.reason,
                **_source_fields(source),
                **{TRACE_FIELD: trace},
            ),
        )

    def _log_line(
        self, text: str, outcome: Outcome, source: Origin | None, trace: str | None
    ) -> None:
        """A line for a whole message that held no readable event: counted like an event."""
        log.error(
            text,
            extra=fields(outcome=outcome.value, **_source_fields(source), **{TRACE_FIELD: trace}),
        )


def _source_fields(source: Origin | None) -> dict[str, object]:
    if source is None:
        return {}
    return {
        "pubsub_message_id": source.message_id,
        "pubsub_subscription": source.subscription,
        "delivery_attempt": source.delivery_attempt,
    }


def _parked(incoming: IncomingEvent, batch: Batch, reason: str) -> ParkedEvent:
    alone = len(batch.events) == 1 and batch.data
    data = batch.data if alone else json.dumps(incoming.raw).encode()
    return ParkedEvent(
        data, reason, event_id=incoming.event_id, attributes=_source_attributes(batch)
    )


def _source_attributes(batch: Batch) -> dict[str, str]:
    return dict(batch.source.attributes) if batch.source else {}
