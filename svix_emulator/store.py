"""Applications, messages, event types and counters in memory. Not locked here: callers hold
`State.lock`."""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from svix_emulator.event_type_catalogue import EventTypeCatalogue
from svix_emulator.ids import Clock, IdFactory, format_timestamp, to_micros
from svix_emulator.validation import ApplicationSpec, ListQuery, MessageSpec

# Svix's two dedup windows: an idempotency key's answer is replayed for 12 hours, and an eventId
# is "verified to be unique only up to a day". Both run on the emulator's clock.
IDEMPOTENCY_WINDOW = timedelta(hours=12)
EVENT_ID_WINDOW = timedelta(hours=24)

FAULT_COUNTERS = (
    "rate_limited",
    "error_409",
    "error_500",
    "error_502",
    "error_503",
    "dropped_before_store",
    "dropped_after_store",
    "slow_after_store",
)


@dataclass(slots=True)
class App:
    id: str
    uid: str | None
    name: str
    throttle_rate: int | None
    metadata: dict[str, str]
    created_at: str
    messages: list[Message] = field(default_factory=list)
    # The newest message with each eventId: past EVENT_ID_WINDOW a second one can exist, and a
    # look-up by eventId then finds the newest (Svix does not say which it answers).
    by_event_id: dict[str, Message] = field(default_factory=dict)
    source_event_ids: set[str] = field(default_factory=set)

    @property
    def key(self) -> str:
        """How the control API names an app: the uid its user chose, else the id."""
        return self.uid if self.uid is not None else self.id

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "name": self.name}
        if self.uid is not None:
            out["uid"] = self.uid
        if self.throttle_rate is not None:
            out["throttleRate"] = self.throttle_rate
        out.update(createdAt=self.created_at, updatedAt=self.created_at, metadata=self.metadata)
        return out


@dataclass(slots=True)
class Message:
    id: str
    app: App
    spec: MessageSpec
    moment: int  # microseconds since the epoch, for exact before/after comparisons
    timestamp: str
    idempotency_key: str | None

    def to_json(self, with_content: bool) -> dict[str, Any]:
        # Null fields are left out: the SDK reads an absent key as None, and strict JSON Schema
        # (where OpenAPI's `nullable` means nothing) accepts an absent key but not a null.
        out: dict[str, Any] = {"id": self.id, "eventType": self.spec.event_type}
        if self.spec.event_id is not None:
            out["eventId"] = self.spec.event_id
        # MessageOut requires `payload`; Svix answers `{}` when the content is not wanted.
        out["payload"] = self.spec.payload if with_content else {}
        if self.spec.channels is not None:
            out["channels"] = self.spec.channels
        if self.spec.tags is not None:
            out["tags"] = self.spec.tags
        if self.spec.deliver_at is not None:
            out["deliverAt"] = self.spec.deliver_at
        out["timestamp"] = self.timestamp
        return out

    def to_control_json(self) -> dict[str, Any]:
        return {
            "app": self.app.key,
            "id": self.id,
            "eventId": self.spec.event_id,
            "eventType": self.spec.event_type,
            "payload": self.spec.payload,
            "channels": self.spec.channels,
            "tags": self.spec.tags,
            "idempotencyKey": self.idempotency_key,
            "timestamp": self.timestamp,
        }


@dataclass(slots=True)
class Stats:
    requests: int = 0
    messages_created: int = 0
    duplicate_source_events: int = 0
    idempotent_replays: int = 0
    conflicts: int = 0
    validation_errors: int = 0
    not_found: int = 0
    unauthorized: int = 0
    archived_type_refusals: int = 0
    faults: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FAULT_COUNTERS, 0))


class EmulatorClock:
    """The wall clock plus an offset that only moves forward (`POST /_emulator/clock`), so tests
    can cross Svix's dedup windows without waiting a day. Millisecond steps, never backwards."""

    def __init__(self) -> None:
        self._wall = Clock()
        self._offset = timedelta(0)

    def now(self) -> datetime:
        return self._wall.now() + self._offset

    def now_micros(self) -> int:
        return to_micros(self.now())

    @property
    def offset_seconds(self) -> float:
        return self._offset.total_seconds()

    def advance(self, seconds: float) -> None:
        self._offset += timedelta(milliseconds=round(seconds * 1000))


class Store:
    def __init__(self, seed: int) -> None:
        self.ids = IdFactory(seed)
        self.clock = EmulatorClock()
        self.apps_by_id: dict[str, App] = {}
        self.apps_by_uid: dict[str, App] = {}
        self.messages: list[Message] = []
        self.event_types = EventTypeCatalogue()
        self.stats = Stats()

    def find_app(self, id_or_uid: str) -> App | None:
        return self.apps_by_id.get(id_or_uid) or self.apps_by_uid.get(id_or_uid)

    def create_app(self, spec: ApplicationSpec) -> App:
        app = App(
            id=self.ids.new("app"),
            uid=spec.uid,
            name=spec.name,
            throttle_rate=spec.throttle_rate,
            metadata=spec.metadata,
            created_at=format_timestamp(self.clock.now()),
        )
        self.apps_by_id[app.id] = app
        if app.uid is not None:
            self.apps_by_uid[app.uid] = app
        return app

    def create_message(self, app: App, spec: MessageSpec, idempotency_key: str | None) -> Message:
        moment = self.clock.now()
        message = Message(
            id=self.ids.new("msg"),
            app=app,
            spec=spec,
            moment=to_micros(moment),
            timestamp=format_timestamp(moment),
            idempotency_key=idempotency_key,
        )
        app.messages.append(message)
        self.messages.append(message)
        if spec.event_id is not None:
            app.by_event_id[spec.event_id] = message
        self.stats.messages_created += 1
        source_id = spec.payload.get("id")
        if source_id is not None:
            source_key = json.dumps(source_id, sort_keys=True)
            if source_key in app.source_event_ids:
                self.stats.duplicate_source_events += 1
            app.source_event_ids.add(source_key)
        return message

    def event_id_taken(self, app: App, event_id: str) -> bool:
        """Whether a message with this eventId was created in the app less than a day ago."""
        existing = app.by_event_id.get(event_id)
        window = EVENT_ID_WINDOW // timedelta(microseconds=1)
        return existing is not None and self.clock.now_micros() - existing.moment < window

    def find_message(self, app: App, id_or_event_id: str) -> Message | None:
        if id_or_event_id.startswith("msg_"):
            index = bisect.bisect_left(app.messages, id_or_event_id, key=lambda m: m.id)
            if index < len(app.messages) and app.messages[index].id == id_or_event_id:
                return app.messages[index]
        return app.by_event_id.get(id_or_event_id)

    def list_messages(self, app: App, query: ListQuery) -> tuple[list[Message], bool]:
        """A page, newest first, and whether it is the last one in its direction.

        `iterator` is the id of the oldest message already seen (go older), or `-` and the id of
        the newest one seen (go newer), as in Svix's `iterator` and `prevIterator`."""
        messages = app.messages
        newer = query.iterator is not None and query.iterator.startswith("-")
        if query.iterator is None:
            candidates: Iterator[Message] = reversed(messages)
        elif newer:
            start = bisect.bisect_right(messages, query.iterator[1:], key=lambda m: m.id)
            candidates = iter(messages[start:])
        else:
            end = bisect.bisect_left(messages, query.iterator, key=lambda m: m.id)
            candidates = reversed(messages[:end])
        page: list[Message] = []
        for message in candidates:
            if _matches(message, query):
                page.append(message)
                if len(page) > query.limit:
                    break
        done = len(page) <= query.limit
        page = page[: query.limit]
        if newer:
            page.reverse()
        return page, done

    def messages_snapshot(self, app_key: str | None) -> list[Message]:
        if app_key is None:
            return list(self.messages)
        app = self.find_app(app_key)
        return [] if app is None else list(app.messages)

    def stats_json(self) -> dict[str, Any]:
        stats = self.stats
        per_app = {app.key: len(app.messages) for app in self.apps_by_id.values() if app.messages}
        return {
            "requests": stats.requests,
            "messages_created": stats.messages_created,
            "messages_per_app": per_app,
            "duplicate_source_events": stats.duplicate_source_events,
            "idempotent_replays": stats.idempotent_replays,
            "conflicts": stats.conflicts,
            "validation_errors": stats.validation_errors,
            "not_found": stats.not_found,
            "unauthorized": stats.unauthorized,
            "archived_type_refusals": stats.archived_type_refusals,
            "faults_injected": dict(stats.faults),
        }


def _matches(message: Message, query: ListQuery) -> bool:
    spec = message.spec
    if query.event_types is not None and spec.event_type not in query.event_types:
        return False
    if query.channel is not None and (spec.channels is None or query.channel not in spec.channels):
        return False
    if query.tag is not None and (spec.tags is None or query.tag not in spec.tags):
        return False
    if query.before is not None and message.moment >= query.before:
        return False
    return not (query.after is not None and message.moment <= query.after)
