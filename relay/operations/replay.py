"""replay: send events again through the relay's delivery code, with the same keys, but only
those Svix does not hold.

Svix replays an idempotency key's answer for 12 hours and refuses a second eventId for a day;
past both, sending an event again makes a second message. So replay looks every event up by its
Svix eventId first (one GET each) and sends only what Svix lacks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from relay.core.batch import Batch, IncomingEvent, Origin
from relay.core.errors import InvalidEvent, LookupFailed, MalformedRequest, RequestTooLarge
from relay.core.messages import to_message
from relay.core.outcomes import DONE, Outcome
from relay.delivery.service import Relay
from relay.logs import fields, log
from relay.operations.sources import MAX_EVENTS_PER_DOCUMENT, EventLookup
from relay.pubsub.push import read_request

# Events in one replayed Pub/Sub message or one JSONL line. Above the function's own limit
# (RELAY_MAX_EVENTS_PER_REQUEST) on purpose: what the function refused as too large must still
# be replayable by hand.


FOUND = "found"  # replay's count of events Svix already held: looked up, not sent


@dataclass
class ReplaySummary:
    messages: int = 0
    acknowledged: int = 0
    left: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    def as_json(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "acknowledged": self.acknowledged,
            "left_in_subscription": self.left,
            "outcomes": self.outcomes,
            "failures": self.failures[:50],
        }


def replay_batch(message_id: str, data: bytes, attributes: dict[str, str]) -> Batch:
    """The batch a replayed message stands for, keeping the event id a parked event was given."""
    headers = {"x-goog-pubsub-message-id": message_id}
    batch = read_request(data, headers, max_events=MAX_EVENTS_PER_DOCUMENT)
    parked_id = attributes.get("relay_event_id")
    if parked_id and len(batch.events) == 1 and not parked_id.startswith(("message:", "sha256:")):
        only = batch.events[0]
        batch = Batch(
            [IncomingEvent(only.position, only.raw, parked_id, only.event, only.problem)],
            batch.data,
            Origin(message_id=message_id, attributes=attributes),
        )
    return batch


def replay(
    relay: Relay,
    messages: Iterable[tuple[str, bytes, dict[str, str]]],
    *,
    lookup: EventLookup,
    fixed_app_id: str | None,
    dry_run: bool,
    on_done: Callable[[str, bool], None] | None = None,
) -> ReplaySummary:
    """Send every message's events that Svix does not hold through the relay. `on_done(message_id,
    delivered)` is told after each message so the caller acknowledges only what is in Svix."""
    summary = ReplaySummary()
    for message_id, data, attributes in messages:
        summary.messages += 1
        try:
            batch = replay_batch(message_id, data, attributes)
            unreadable = batch.unreadable
        except (MalformedRequest, RequestTooLarge) as exc:
            unreadable = str(exc)
        if unreadable is not None:
            summary.count("unreadable")
            summary.failures.append(f"{message_id}: {unreadable}")
            delivered = False
        else:
            delivered = _replay_events(relay, batch, summary, lookup, fixed_app_id, dry_run)
        if on_done:
            on_done(message_id, delivered)
    return summary


def _replay_events(
    relay: Relay,
    batch: Batch,
    summary: ReplaySummary,
    lookup: EventLookup,
    fixed_app_id: str | None,
    dry_run: bool,
) -> bool:
    """Whether every event of the batch is in Svix now (never after a dry run)."""
    unsent, all_looked_up = _not_in_svix(batch.events, summary, lookup, fixed_app_id)
    if dry_run:
        for incoming in unsent:
            summary.count("would_send" if incoming.event else "invalid")
        return False
    if not unsent:
        return all_looked_up
    result = relay.handle(replace(batch, events=unsent), looked_up=True)
    for event in result.events:
        summary.count(event.outcome.value)
        if event.outcome not in DONE:
            summary.failures.append(f"{event.event_id}: {event.reason or ''}")
    return all_looked_up and result.done


def _not_in_svix(
    events: list[IncomingEvent],
    summary: ReplaySummary,
    lookup: EventLookup,
    fixed_app_id: str | None,
) -> tuple[list[IncomingEvent], bool]:
    """The events to send: those Svix holds no message for, and the invalid ones (the relay says
    why it refuses them). False when a look-up failed: such events are not sent at all, since
    sending blind is what makes a second message past Svix's windows."""
    unsent: list[IncomingEvent] = []
    failure: LookupFailed | None = None
    for incoming in events:
        try:
            message = to_message(incoming, fixed_app_id=fixed_app_id)
        except InvalidEvent:
            unsent.append(incoming)
            continue
        found: str | None = None
        if failure is None:
            try:
                found = lookup.find(message.app_id, message.svix_event_id)
            except LookupFailed as exc:
                failure = exc
        if failure is not None:
            # The rest of the message waits for the next replay too: one failed look-up says
            # Svix is not answering, and each further one could cost a whole timeout.
            summary.count(Outcome.FAILED.value)
            reason = f"not sent, as Svix could not be asked whether it holds it: {failure}"
            summary.failures.append(f"{incoming.event_id}: {reason}")
            log.error(
                "event %s %s",
                incoming.event_id,
                reason,
                extra=fields(event_id=incoming.event_id, app_id=message.app_id, outcome="failed"),
            )
        elif found is None:
            unsent.append(incoming)
        else:
            summary.count(FOUND)
            log.info(
                "event %s found in Svix (%s): not sent again",
                incoming.event_id,
                found,
                extra=fields(
                    event_id=incoming.event_id,
                    app_id=message.app_id,
                    outcome=FOUND,
                    svix_message_id=found,
                ),
            )
    return unsent, failure is None
