"""The relay's service layer: every event of a batch becomes one Svix message, or a reason.

It maps events to messages, sends them (concurrently, with a bounded number in flight) at the
pacer's rate, retries what a retry can fix within the request's time budget, parks what it
cannot, logs one line per event, and hands back a BatchResult; each entry point decides its own
answer from it.

Strategy: a fresh event costs one call. Only an event that may be older than Svix's dedup
windows (12 h for the idempotency key, a day for the eventId) is looked up by its eventId first,
because past both windows a second create would make a second message.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from relay.core.batch import Batch, IncomingEvent
from relay.core.channels import ChannelTemplate
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
from relay.core.outcomes import BatchResult, EventResult, Outcome
from relay.core.times import timestamp
from relay.delivery import report
from relay.delivery.event_types import UnknownEventTypes
from relay.delivery.pacer import Pacer
from relay.delivery.poison import parked_event, unreadable
from relay.delivery.ports import MessageSender, ParkingLot
from relay.delivery.windows import may_be_old
from relay.logs import fields, log


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
        channel_templates: tuple[ChannelTemplate, ...] = (),
        event_types: UnknownEventTypes | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._sender = sender
        self._pacer = pacer  # one per process: batches and single events keep the same pace
        self._policy = policy
        self._fixed_app_id = fixed_app_id
        self._parking = parking
        self._channel_templates = channel_templates
        self._event_types = event_types
        self._clock = clock
        self._sleep = sleep
        self._wall_clock = wall_clock
        self._pool = ThreadPoolExecutor(max_in_flight, thread_name_prefix="relay-send")
        self._rng = random.Random()

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        if self._event_types is not None:
            self._event_types.wait_idle(5.0)  # no Svix call of ours outlives the relay

    def handle(
        self, batch: Batch, *, trace: str | None = None, looked_up: bool = False
    ) -> BatchResult:
        """Deliver every event of the batch, and say what became of each. `looked_up`: the
        caller has just looked every event up in Svix (replay), so none is looked up again."""
        if batch.unreadable is not None:
            return unreadable(batch, self._parking, trace)
        deadline = self._clock() + self._policy.time_budget
        published = timestamp(batch.source.publish_time) if batch.source else None

        def one(incoming: IncomingEvent) -> EventResult:
            return self._relay_event(incoming, batch, deadline, trace, published, looked_up)

        if len(batch.events) <= 1:
            results = [one(incoming) for incoming in batch.events]
        else:
            results = list(self._pool.map(one, batch.events))
        return BatchResult(results, retry_after=self._pacer.retry_after())

    def _relay_event(
        self,
        incoming: IncomingEvent,
        batch: Batch,
        deadline: float,
        trace: str | None,
        published: float | None,
        looked_up: bool,
    ) -> EventResult:
        started = self._clock()
        happened = timestamp(incoming.event.time) if incoming.event else None
        try:
            message = to_message(
                incoming,
                fixed_app_id=self._fixed_app_id,
                channel_templates=self._channel_templates,
            )
        except InvalidEvent as exc:
            event_type = incoming.event.type if incoming.event else None
            status = 413 if isinstance(exc, PayloadTooLarge) else None
            result = self._permanent(
                incoming, batch, str(exc), event_type=event_type, app_id=None, status=status
            )
        else:
            look_first = not looked_up and may_be_old(
                batch.source, happened, published, now=self._wall_clock()
            )
            result, asked = self._deliver(incoming, message, deadline, batch, trace, look_first)
            if asked:  # rare (only events that may be past Svix's windows): no field elsewhere
                result = replace(result, looked_up=True)
        taken = result.outcome in (Outcome.DELIVERED, Outcome.DUPLICATE)
        lags: dict[str, float] = {}
        if taken:
            lags = report.lag_fields(self._wall_clock(), published=published, happened=happened)
        took = self._clock() - started
        report.event_line(result, batch.source, trace, took=took, lags=lags)
        if taken and self._event_types is not None and result.event_type:
            self._event_types.delivered(result.event_type)  # queued: it costs the answer nothing
        return result

    def _deliver(
        self,
        incoming: IncomingEvent,
        message: OutgoingMessage,
        deadline: float,
        batch: Batch,
        trace: str | None,
        look_first: bool,
    ) -> tuple[EventResult, bool]:
        attempts = 0
        looked_up = False
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
                # A refused token or unknown application (ServiceRefused) is not retried within
                # the request (it will not fix itself in seconds) but still answered 503.
                attempts += 1  # look-ups too: their retries back off like a create's
                try:
                    if look_first:
                        # The look-up takes a turn of its own: Svix limits GETs too.
                        looked_up = True
                        found = self._sender.find(message)
                        self._pacer.succeeded(permit)
                        if found is not None:
                            accepted = found
                            break
                        look_first = False
                        continue
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
                report.retry_line(message, failure, attempts, pause, trace)
                self._sleep(pause)
        except PermanentFailure as exc:
            known = self._event_types
            permanent = self._permanent(
                incoming,
                batch,
                known.explained(message.event_type, exc) if known else exc.reason,
                event_type=message.event_type,
                app_id=message.app_id,
                status=exc.status,
                attempts=attempts,
            )
            return permanent, looked_up
        except SendFailure as exc:
            failed = EventResult(
                incoming.position,
                incoming.event_id,
                Outcome.RATE_LIMITED if isinstance(exc, RateLimited) else Outcome.FAILED,
                event_type=message.event_type,
                app_id=message.app_id,
                reason=exc.reason,
                attempts=attempts,
                status=exc.status,
            )
            return failed, looked_up
        delivered = EventResult(
            incoming.position,
            incoming.event_id,
            Outcome.DUPLICATE if accepted.already_existed else Outcome.DELIVERED,
            event_type=message.event_type,
            app_id=message.app_id,
            svix_message_id=accepted.svix_message_id,
            attempts=attempts,
        )
        return delivered, looked_up

    def _backoff(self, attempt: int, *, after_429: bool = False) -> float:
        """Exponential with jitter. After a 429 never under the initial backoff: a pause of
        next to nothing is how a retry storm starts."""
        policy = self._policy
        ceiling = min(policy.backoff_max, policy.backoff_initial * 2 ** (attempt - 1))
        pause = self._rng.uniform(ceiling / 2, ceiling)
        return max(policy.backoff_initial, pause) if after_429 else pause

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
                self._parking.park(parked_event(incoming, batch, reason))
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
