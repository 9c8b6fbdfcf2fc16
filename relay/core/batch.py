"""A batch: the events of one request or message, in order, with where they came from.

What the delivery service takes; how a batch is read from a request is the edge's business.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from relay.core.events import GigsEvent


@dataclass(frozen=True)
class Origin:
    """Where a batch came from, when it came from Pub/Sub."""

    message_id: str | None = None
    subscription: str | None = None
    publish_time: str | None = None
    delivery_attempt: int | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class IncomingEvent:
    """One event of a batch: either valid (`event` set) or with the `problem` that makes it
    undeliverable. `event_id` is the event's own id, or one derived from its content."""

    position: int
    raw: Any
    event_id: str
    event: GigsEvent | None = None
    problem: str | None = None


@dataclass(frozen=True)
class Batch:
    """The events of one request, in order, with the bytes they were decoded from."""

    events: list[IncomingEvent]
    data: bytes
    source: Origin | None = None
    # Set when the Pub/Sub message itself cannot be read: no event can be taken out of it.
    unreadable: str | None = None
