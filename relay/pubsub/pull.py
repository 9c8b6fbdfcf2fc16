"""Pulling messages from a Pub/Sub subscription, for replay and reconcile (not the hot path).

The client honours PUBSUB_EMULATOR_HOST, which is how the tests point it at the emulator.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


class PubSubError(OSError):
    """Pub/Sub refused or failed a call; the message names the subscription and the reason."""


@dataclass(frozen=True)
class PulledMessage:
    ack_id: str
    message_id: str
    data: bytes
    attributes: dict[str, str] = field(default_factory=dict)


class SubscriptionReader:
    def __init__(self, subscription: str, *, timeout_seconds: float = 30.0) -> None:
        from google.api_core import exceptions
        from google.cloud import pubsub_v1

        self.subscription = subscription
        self._timeout = timeout_seconds
        self._client: Any = pubsub_v1.SubscriberClient()
        self._api_errors: tuple[type[BaseException], ...] = (exceptions.GoogleAPIError,)

    def _call(self, method: str, request: dict[str, Any]) -> Any:
        try:
            return getattr(self._client, method)(request=request, timeout=self._timeout)
        except self._api_errors as exc:
            raise PubSubError(f"Pub/Sub {method} on {self.subscription} failed: {exc}") from None

    def pull(self, max_messages: int = 100) -> list[PulledMessage]:
        # Without return_immediately a pull on an empty subscription blocks for a long time;
        # with it Pub/Sub may answer empty while messages exist, so drain() asks twice.
        with warnings.catch_warnings():
            # Deprecated, and chosen knowingly: see above.
            warnings.filterwarnings("ignore", "The return_immediately flag", DeprecationWarning)
            response = self._call(
                "pull",
                {
                    "subscription": self.subscription,
                    "max_messages": max_messages,
                    "return_immediately": True,
                },
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

    def drain(
        self, *, limit: int | None = None, batch: int = 100, hold_seconds: int = 600
    ) -> Iterator[PulledMessage]:
        """Pull until nothing new comes (or `limit` messages). Each pulled message's ack deadline
        is pushed to `hold_seconds` at once, so what is not acknowledged yet does not come back
        while the pulling goes on; a message that comes back anyway is not yielded twice."""
        seen: set[str] = set()
        quiet = 0
        while (limit is None or len(seen) < limit) and quiet < 2:
            want = batch if limit is None else min(batch, limit - len(seen))
            pulled = self.pull(want)
            if pulled:
                self._hold([m.ack_id for m in pulled], hold_seconds)
            fresh = [m for m in pulled if m.message_id not in seen]
            quiet = 0 if fresh else quiet + 1
            for message in fresh:
                seen.add(message.message_id)
                yield message

    def _hold(self, ack_ids: list[str], seconds: int) -> None:
        self._call(
            "modify_ack_deadline",
            {
                "subscription": self.subscription,
                "ack_ids": ack_ids,
                "ack_deadline_seconds": seconds,
            },
        )

    def ack(self, ack_ids: list[str]) -> None:
        if ack_ids:
            self._call("acknowledge", {"subscription": self.subscription, "ack_ids": ack_ids})

    def release(self, ack_ids: list[str]) -> None:
        """Hand messages back at once instead of when their ack deadline runs out."""
        if ack_ids:
            self._hold(ack_ids, 0)

    def close(self) -> None:
        self._client.close()
