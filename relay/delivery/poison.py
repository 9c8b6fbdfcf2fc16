"""Poison: what the service does with an event, or a whole Pub/Sub message, that no retry can
deliver. Parked on the parking topic with its reason (and acked), or refused when there is none."""

from __future__ import annotations

import json

from relay.core.batch import Batch, IncomingEvent
from relay.core.errors import ParkingFailed
from relay.core.outcomes import BatchResult, Outcome
from relay.delivery import report
from relay.delivery.ports import ParkedEvent, ParkingLot
from relay.logs import log


def unreadable(batch: Batch, parking: ParkingLot | None, trace: str | None) -> BatchResult:
    """A Pub/Sub message no event can be read from: park it whole, or refuse it."""
    reason = batch.unreadable or "unreadable message"
    message_id = batch.source.message_id if batch.source else None
    label = f"message {message_id}" if message_id else "request"
    if parking is None:
        report.message_line(f"{label} rejected: {reason}", Outcome.REJECTED, batch.source, trace)
        return BatchResult(unreadable=reason)
    try:
        parking.park(
            ParkedEvent(
                batch.data,
                reason,
                event_id=f"message:{message_id}",
                attributes=_source_attributes(batch),
            )
        )
    except ParkingFailed as exc:
        log.error("%s", exc, exc_info=True)
        return BatchResult(unreadable=reason, parking_failed=str(exc))
    report.message_line(f"{label} parked: {reason}", Outcome.PARKED, batch.source, trace)
    return BatchResult(unreadable=reason, parked=True)


def parked_event(incoming: IncomingEvent, batch: Batch, reason: str) -> ParkedEvent:
    alone = len(batch.events) == 1 and batch.data
    data = batch.data if alone else json.dumps(incoming.raw).encode()
    return ParkedEvent(
        data, reason, event_id=incoming.event_id, attributes=_source_attributes(batch)
    )


def _source_attributes(batch: Batch) -> dict[str, str]:
    return dict(batch.source.attributes) if batch.source else {}
