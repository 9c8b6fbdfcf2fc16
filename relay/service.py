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
from datetime import UTC, datetime

from relay.events import InvalidEvent
from relay.intake import Batch, IncomingEvent, PubSubMessage
from relay.logs import TRACE_FIELD, fields, log
from relay.messages import OutgoingMessage, PayloadTooLarge, to_message
from relay.outcomes import Answer, EventResult, Outcome, answer_for
from relay.pacer import Pacer
from relay.parking import ParkedEvent, ParkingFailed, ParkingLot
from relay.svix_sender import (
    MessageSender,
    PermanentFailure,
    RateLimited,
    SendFailure,
    TransientFailure,
)


class NoTurnInBudget(RateLimited):
    """The pacer had no turn for this call before the time budget ends: the event is answered
    429 without being sent (Svix said nothing new, so the rate is not cut further)."""


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
        pacer: Pacer,
        policy: RetryPolicy,
        max_in_flight: int,
        fixed_app_id: str | None = None,
        parking: ParkingLot | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._sender = sender
        self._pacer = pacer  # one per process: batches and single events keep the same pace
        self._policy = policy
        self._fixed_app_id = fixed_app_id
        self._parking = parking
        self._clock = clock
        self._sleep = sleep
        self._wall_clock = wall_clock
        self._pool = ThreadPoolExecutor(max_in_flight, thread_name_prefix="relay-send")
        self._rng = random.Random()

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def handle(self, batch: Batch, *, trace: str | None = None) -> Answer:
        """Deliver every event of the batch and decide the answer."""
        if batch.unreadable is not None:
            return self._unreadable(batch, trace)
        deadline = self._clock() + self._policy.time_budget
        published = _moment(batch.source.publish_time) if batch.source else None

        def one(incoming: IncomingEvent) -> EventResult:
            return self._relay_event(incoming, batch, deadline, trace, published)

        if len(batch.events) <= 1:
            results = [one(incoming) for incoming in batch.events]
        else:
            results = list(self._pool.map(one, batch.events))
        return answer_for(results, retry_after=self._pacer.retry_after())

    def _relay_event(
        self,
        incoming: IncomingEvent,
        batch: Batch,
        deadline: float,
        trace: str | None,
        published: float | None,
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
        lags: dict[str, float] = {}
        if result.outcome in (Outcome.DELIVERED, Outcome.DUPLICATE):
            # The SLO signal: how long after publishing (and after it happened) Svix had it.
            in_svix = self._wall_clock()
            happened = _moment(incoming.event.time) if incoming.event else None
            for name, since in (("publish_lag_ms", published), ("event_lag_ms", happened)):
                if since is not None:
                    lags[name] = round((in_svix - since) * 1000, 1)
        self._log(result, batch.source, trace, self._clock() - started, lags)
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
                permit = self._pacer.acquire(deadline)
                if permit is None:
                    raise NoTurnInBudget(
                        "Svix rate limit: the relay's pace leaves no turn within the time budget",
                        retry_after=None,
                    )
                attempts += 1
                # A refused token or unknown application (ServiceRefused) is not retried within
                # the request (it will not fix itself in seconds) but still answered 503.
                try:
                    accepted = self._sender.send(message)
                except RateLimited as limited:
                    # The rate is cut for every sender of the process; this event itself waits
                    # for Svix's Retry-After (floored and capped), or backs off without one.
                    told = self._pacer.refused(permit, limited.retry_after)
                    pause = self._backoff(attempts, after_429=True) if told is None else told
                    failure: SendFailure = limited
                except TransientFailure as transient:
                    pause, failure = self._backoff(attempts), transient
                else:
                    self._pacer.succeeded(permit)
                    break
                if self._clock() + pause >= deadline:
                    raise failure
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

    def _backoff(self, attempt: int, *, after_429: bool = False) -> float:
        """Exponential with jitter. After a 429 never under the initial backoff: a pause of
        next to nothing is how a retry storm starts."""
        policy = self._policy
        ceiling = min(policy.backoff_max, policy.backoff_initial * 2 ** (attempt - 1))
        pause = self._rng.uniform(ceiling / 2, ceiling)
        return max(policy.backoff_initial, pause) if after_429 else pause

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
        self,
        result: EventResult,
        source: PubSubMessage | None,
        trace: str | None,
        took: float,
        lags: dict[str, float],
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
                **lags,
                **_source_fields(source),
                **{TRACE_FIELD: trace},
            ),
        )

    def _log_line(
        self, text: str, outcome: Outcome, source: PubSubMessage | None, trace: str | None
    ) -> None:
        """A line for a whole message that held no readable event: counted like an event."""
        log.error(
            text,
            extra=fields(outcome=outcome.value, **_source_fields(source), **{TRACE_FIELD: trace}),
        )


def _moment(text: str | None) -> float | None:
    """An RFC 3339 / ISO 8601 time as a POSIX timestamp (no zone: UTC); None when unreadable."""
    if not text or not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _source_fields(source: PubSubMessage | None) -> dict[str, object]:
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
