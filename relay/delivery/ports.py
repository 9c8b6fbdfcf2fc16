"""The ports the delivery service talks through: a sender to Svix and a parking lot for poison.

The adapters in relay/svix and relay/pubsub implement them; unit tests use fakes. Nothing here
knows how a message travels.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from relay.core.messages import OutgoingMessage


@dataclass(frozen=True)
class Accepted:
    # None when Svix already had the message (409) and did not say which it is.
    svix_message_id: str | None
    already_existed: bool = False


class MessageSender(Protocol):
    def send(self, message: OutgoingMessage) -> Accepted: ...

    def find(self, message: OutgoingMessage) -> Accepted | None:
        """The message Svix holds with this message's eventId, or None when it holds none."""
        ...


@dataclass(frozen=True)
class ParkedEvent:
    data: bytes  # the event's original bytes where the message held it alone, else its JSON
    reason: str
    event_id: str
    attributes: Mapping[str, str] = field(default_factory=dict)


class ParkingLot(Protocol):
    def park(self, event: ParkedEvent) -> None: ...


class EventTypeState(enum.Enum):
    ACTIVE = "active"
    ARCHIVED = "archived"  # Svix refuses new messages of this type
    MISSING = "missing"


class EventTypeRegistry(Protocol):
    """Svix's event types, one catalogue for the whole environment (not per application).
    Both calls raise a SendFailure when Svix cannot answer."""

    def event_type_state(self, name: str) -> EventTypeState: ...

    def create_event_type(self, name: str, *, description: str, group: str | None) -> None:
        """Create it; one that came into being meanwhile (a 409) is not a failure."""
        ...
