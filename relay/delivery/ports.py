"""The ports the delivery service talks through: a sender to Svix and a parking lot for poison.

The adapters in relay/svix and relay/pubsub implement them; unit tests use fakes. Nothing here
knows how a message travels.
"""

from __future__ import annotations

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
