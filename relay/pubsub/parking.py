"""Parking: publishing a permanently failed event to a topic instead of nacking it.

A nack of a message no retry can fix slows the whole subscription (Pub/Sub's push backoff is
subscription-wide) and only ends in the dead-letter topic after the last attempt anyway.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any

from relay.core.errors import ParkingFailed
from relay.core.jsontext import utf8
from relay.delivery.ports import ParkedEvent

MAX_ATTRIBUTE_BYTES = 1024


def _cut(text: str, limit: int) -> str:
    """At most `limit` bytes of UTF-8, cut on a character boundary."""
    return utf8(text)[:limit].decode("utf-8", "ignore")


def publish_attributes(event: ParkedEvent) -> dict[str, str]:
    """The parked message's attributes: the original ones, so a replay sees the message as it
    was published, plus why and which event. Pub/Sub refuses attribute values over 1,024 bytes:
    a long reason is cut, a long id is replaced by a digest (replay then derives the event's id
    again from its content)."""
    event_id = event.event_id
    if len(utf8(event_id)) > MAX_ATTRIBUTE_BYTES:
        event_id = "sha256:" + hashlib.sha256(utf8(event_id)).hexdigest()
    return {
        **event.attributes,
        "relay_parked_reason": _cut(event.reason, MAX_ATTRIBUTE_BYTES),
        "relay_event_id": event_id,
    }


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
            future = self._client().publish(self.topic, event.data, **publish_attributes(event))
            future.result(timeout=self._timeout)
        except Exception as exc:
            raise ParkingFailed(
                f"could not publish to parking topic {self.topic}: {type(exc).__name__}: {exc}"
            ) from exc
