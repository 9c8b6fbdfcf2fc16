"""Parking: publishing a permanently failed event to a topic instead of nacking it.

A nack of a message no retry can fix slows the whole subscription (Pub/Sub's push backoff is
subscription-wide) and only ends in the dead-letter topic after the last attempt anyway.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


class ParkingFailed(Exception):
    """The event could not be parked; it must be nacked so that it is not lost."""


@dataclass(frozen=True)
class ParkedEvent:
    data: bytes  # the event's original bytes where the message held it alone, else its JSON
    reason: str
    event_id: str
    attributes: Mapping[str, str] = field(default_factory=dict)

    def publish_attributes(self) -> dict[str, str]:
        # Keep the original attributes so a replay sees the message as it was published.
        # Pub/Sub refuses attribute values over 1,024 bytes: a long reason is cut, a long id is
        # replaced by a digest (replay then derives the event's id again from its content).
        event_id = self.event_id
        if len(_utf8(event_id)) > MAX_ATTRIBUTE_BYTES:
            event_id = "sha256:" + hashlib.sha256(_utf8(event_id)).hexdigest()
        return {
            **self.attributes,
            "relay_parked_reason": _cut(self.reason, MAX_ATTRIBUTE_BYTES),
            "relay_event_id": event_id,
        }


MAX_ATTRIBUTE_BYTES = 1024


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _cut(text: str, limit: int) -> str:
    """At most `limit` bytes of UTF-8, cut on a character boundary."""
    return _utf8(text)[:limit].decode("utf-8", "ignore")


class ParkingLot(Protocol):
    def park(self, event: ParkedEvent) -> None: ...


class PubSubParkingLot:
    """Publishes to a Pub/Sub topic. The client is made on first use: parking is rare, and
    importing the Pub/Sub client (gRPC) would add to every cold start."""

    def __init__(self, topic: str, *, timeout_seconds: float = 10.0) -> None:
        self.topic = topic
        self._timeout = timeout_seconds
        self._publisher: Any = None
        self._lock = threading.Lock()

    def _client(self) -> Any:
        with self._lock:
            if self._publisher is None:
                from google.cloud import pubsub_v1

                self._publisher = pubsub_v1.PublisherClient()
            return self._publisher

    def park(self, event: ParkedEvent) -> None:
        try:
            future = self._client().publish(self.topic, event.data, **event.publish_attributes())
            future.result(timeout=self._timeout)
        except Exception as exc:
            raise ParkingFailed(
                f"could not publish to parking topic {self.topic}: {type(exc).__name__}: {exc}"
            ) from exc
