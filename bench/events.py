"""Request bodies for the benchmark: the sample Gigs events, each post with an id of its own.

Bodies are made from pre-serialised templates by string replacement, so that the load generator
spends as little CPU as it can on them (it shares the machine with what it measures).
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_PLACEHOLDER = "__BENCH_EVENT_ID__"
# Published as the run starts, as live events are: an older publishTime would make the relay look
# every event up in Svix before creating it (relay/delivery/windows.py).
_PUBLISH_TIME = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
_SUBSCRIPTION = "projects/bench-project/subscriptions/gigs-events-svix-relay"
# What the relay keeps out of a customer's payload (relay/core/events.py); the floor sends the same.
_INTERNAL_FIELDS = frozenset({"internal", "attributes", "messageId", "publishTime", "subscription"})
_TYPE_PREFIX = "com.gigs."


@dataclass(frozen=True)
class _Template:
    event: dict[str, Any]  # the event as published, with the placeholder as its id
    text: str  # its JSON
    project: str
    event_type: str  # as the customer sees it
    payload: dict[str, Any]  # the public payload, placeholder id


def _public(event: dict[str, Any]) -> dict[str, Any]:
    payload = {
        k: v for k, v in event.items() if k not in _INTERNAL_FIELDS and not k.startswith("_")
    }
    payload["type"] = str(payload["type"]).removeprefix(_TYPE_PREFIX)
    return payload


class EventFactory:
    """Unique events from the samples in `events_dir`, in rotation.

    Ids look like `evt_bench_<run>_<tag>_<client>_<n>`: unique within a run and across runs, and
    within Svix's id rules, so every post creates a new message."""

    def __init__(self, events_dir: Path) -> None:
        self.run = secrets.token_hex(4)
        self.templates: list[_Template] = []
        for path in sorted(events_dir.glob("*.json")):
            event = json.loads(path.read_text(encoding="utf-8"))
            event["id"] = _PLACEHOLDER
            self.templates.append(
                _Template(
                    event=event,
                    text=json.dumps(event, separators=(",", ":")),
                    project=str(event["project"]),
                    event_type=str(event["type"]).removeprefix(_TYPE_PREFIX),
                    payload=_public(event),
                )
            )
        if not self.templates:
            raise FileNotFoundError(f"no sample events (*.json) in {events_dir}")

    def event_id(self, tag: str, client: int, n: int) -> str:
        return f"evt_bench_{self.run}_{tag}_{client}_{n}"

    def _template(self, n: int) -> _Template:
        return self.templates[n % len(self.templates)]

    def event_json(self, event_id: str, n: int) -> str:
        return self._template(n).text.replace(_PLACEHOLDER, event_id)

    def push_body(self, tag: str, client: int, n: int) -> bytes:
        """A wrapped Pub/Sub push envelope carrying one event."""
        event_id = self.event_id(tag, client, n)
        return _envelope(self.event_json(event_id, n).encode(), event_id)

    def batch_body(self, tag: str, first: int, count: int) -> bytes:
        """One push envelope whose data is a JSON array of `count` events."""
        numbers = range(first, first + count)
        items = ",".join(self.event_json(self.event_id(tag, 0, n), n) for n in numbers)
        return _envelope(f"[{items}]".encode(), f"{tag}_batch_{first}")

    def message(self, tag: str, client: int, n: int) -> tuple[str, str, str, dict[str, Any]]:
        """(app uid, event type, event id, payload) of the message the relay would create."""
        template = self._template(n)
        event_id = self.event_id(tag, client, n)
        payload = dict(template.payload)
        payload["id"] = event_id
        return template.project, template.event_type, event_id, payload


def _envelope(data: bytes, message_id: str) -> bytes:
    encoded = base64.b64encode(data).decode("ascii")
    when = _PUBLISH_TIME
    return (
        f'{{"message":{{"data":"{encoded}","attributes":{{}},'
        f'"messageId":"{message_id}","message_id":"{message_id}",'
        f'"publishTime":"{when}","publish_time":"{when}"}},"subscription":"{_SUBSCRIPTION}"}}'
    ).encode()
