"""Pulling messages from a Pub/Sub subscription, for replay and reconcile (not the hot path).

The client honours PUBSUB_EMULATOR_HOST, which is how the tests point it at the emulator.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class PulledMessage:
    ack_id: str
    message_id: str
    data: bytes
    attributes: dict[str, str] = field(default_factory=dict)


class SubscriptionReader:
    def __init__(self, subscription: str, *, timeout_seconds: float = 30.0) -> None:
        from google.cloud import pubsub_v1

        self.subscription = subscription
        self._timeout = timeout_seconds
        self._client: Any = pubsub_v1.SubscriberClient()

    def pull(self, max_messages: int = 100) -> list[PulledMessage]:
        # Without return_immediately a pull on an empty subscription blocks for a long time;
        # with it Pub/Sub may answer empty while messages exist, so drain() asks twice.
        response = self._client.pull(
            request={
                "subscription": self.subscription,
                "max_messages": max_messages,
                "return_immediately": True,
            },
            timeout=self._timeout,
        )
        return [
            PulledMessage(
                ack_id=received.ack_id,
                message_id=received.message.message_id,
                data=bytes(received.message.data),
                attributes=dict(received.message.attributes),
            )
            for received in response.received_messages
        ]

    def drain(self, *, limit: int | None = None, batch: int = 100) -> Iterator[PulledMessage]:
        """Pull until the subscription has nothing more to give (or `limit` is reached)."""
        seen = 0
        empty_in_a_row = 0
        while (limit is None or seen < limit) and empty_in_a_row < 2:
            want = batch if limit is None else min(batch, limit - seen)
            messages = self.pull(want)
            empty_in_a_row = 0 if messages else empty_in_a_row + 1
            for message in messages:
                seen += 1
                yield message

    def ack(self, ack_ids: list[str]) -> None:
        if ack_ids:
            self._client.acknowledge(
                request={"subscription": self.subscription, "ack_ids": ack_ids},
                timeout=self._timeout,
            )

    def release(self, ack_ids: list[str]) -> None:
        """Hand messages back at once instead of when their ack deadline runs out."""
        if ack_ids:
            self._client.modify_ack_deadline(
                request={
                    "subscription": self.subscription,
                    "ack_ids": ack_ids,
                    "ack_deadline_seconds": 0,
                },
                timeout=self._timeout,
            )

    def close(self) -> None:
        self._client.close()
