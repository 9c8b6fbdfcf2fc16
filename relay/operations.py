"""What the on-call runs: replay (send events again, with the same keys) and reconcile (compare
the events we were given with the messages Svix holds)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from relay.intake import (
    Batch,
    IncomingEvent,
    MalformedRequest,
    PubSubMessage,
    RequestTooLarge,
    read_request,
)
from relay.messages import svix_event_id
from relay.outcomes import DONE, Outcome
from relay.service import Relay


class ReplaySource(Protocol):
    def __iter__(self) -> Iterator[tuple[str, bytes, dict[str, str]]]: ...


@dataclass
class ReplaySummary:
    messages: int = 0
    acknowledged: int = 0
    left: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "acknowledged": self.acknowledged,
            "left_in_subscription": self.left,
            "outcomes": self.outcomes,
            "failures": self.failures[:50],
        }


def replay_batch(message_id: str, data: bytes, attributes: dict[str, str]) -> Batch:
    """The batch a replayed message stands for, keeping the event id a parked event was given."""
    headers = {"x-goog-pubsub-message-id": message_id}
    batch = read_request(data, headers, max_events=10_000)
    parked_id = attributes.get("relay_event_id")
    if parked_id and len(batch.events) == 1 and not parked_id.startswith(("message:", "sha256:")):
        only = batch.events[0]
        batch = Batch(
            [IncomingEvent(only.position, only.raw, parked_id, only.event, only.problem)],
            batch.data,
            PubSubMessage(message_id=message_id, attributes=attributes),
        )
    return batch


def replay(
    relay: Relay,
    messages: Iterable[tuple[str, bytes, dict[str, str]]],
    *,
    dry_run: bool,
    on_done: Callable[[str, bool], None] | None = None,
) -> ReplaySummary:
    """Send every message's events through the relay. `on_done(message_id, delivered)` is told
    after each message so the caller acknowledges only what reached Svix."""
    summary = ReplaySummary()
    for message_id, data, attributes in messages:
        summary.messages += 1
        try:
            batch = replay_batch(message_id, data, attributes)
        except (MalformedRequest, RequestTooLarge) as exc:
            summary.failures.append(f"{message_id}: {exc}")
            _count(summary, "unreadable")
            if on_done:
                on_done(message_id, False)
            continue
        if dry_run:
            for incoming in batch.events:
                _count(summary, "would_send" if incoming.event else "invalid")
            if batch.unreadable:
                _count(summary, "unreadable")
            if on_done:
                on_done(message_id, False)
            continue
        answer = relay.handle(batch)
        results = answer.body.get("events", [])
        for result in results:
            _count(summary, result["outcome"])
            if Outcome(result["outcome"]) not in DONE:
                summary.failures.append(f"{result['id']}: {result.get('reason', '')}")
        if batch.unreadable:
            _count(summary, "unreadable")
            summary.failures.append(f"{message_id}: {batch.unreadable}")
        delivered = answer.status == 200 and not batch.unreadable
        if on_done:
            on_done(message_id, delivered)
    return summary


def _count(summary: ReplaySummary, key: str) -> None:
    summary.outcomes[key] = summary.outcomes.get(key, 0) + 1


@dataclass(frozen=True)
class SourceEvent:
    event_id: str
    app_id: str
    time: datetime | None


@dataclass(frozen=True)
class SvixMessage:
    app_id: str
    svix_id: str
    event_id: str | None
    event_type: str
    timestamp: datetime


@dataclass
class Reconciliation:
    since: datetime
    until: datetime
    expected: int = 0
    found: int = 0
    missing: list[SourceEvent] = field(default_factory=list)
    unexpected: list[SvixMessage] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing

    def as_json(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "expected_events": self.expected,
            "found_in_svix": self.found,
            "missing_in_svix": [
                {"event_id": e.event_id, "app_id": e.app_id, "time": e.time and e.time.isoformat()}
                for e in self.missing
            ],
            "messages_without_source_event": [
                {
                    "app_id": m.app_id,
                    "svix_message_id": m.svix_id,
                    "event_id": m.event_id,
                    "event_type": m.event_type,
                    "timestamp": m.timestamp.isoformat(),
                }
                for m in self.unexpected
            ],
            "ok": self.ok,
        }

    def as_table(self) -> str:
        lines = [
            f"window            {self.since.isoformat()} .. {self.until.isoformat()}",
            f"expected events   {self.expected}",
            f"found in Svix     {self.found}",
            f"missing in Svix   {len(self.missing)}",
            f"without source    {len(self.unexpected)}",
        ]
        if self.missing:
            lines += ["", "MISSING IN SVIX", f"{'event id':<40} {'application':<24} time"]
            lines += [
                f"{e.event_id:<40} {e.app_id:<24} {e.time.isoformat() if e.time else '-'}"
                for e in self.missing
            ]
        if self.unexpected:
            lines += ["", "SVIX MESSAGES WITHOUT A SOURCE EVENT"]
            lines += [f"{'svix message':<32} {'application':<24} event id"]
            lines += [
                f"{m.svix_id:<32} {m.app_id:<24} {m.event_id or '-'}" for m in self.unexpected
            ]
        return "\n".join(lines)


def source_events(documents: Iterable[bytes], *, fixed_app_id: str | None) -> Iterator[SourceEvent]:
    """The events in a stream of message bodies or JSONL lines (one event or array each)."""
    for data in documents:
        try:
            batch = read_request(data, {}, max_events=10_000)
        except (MalformedRequest, RequestTooLarge):
            continue
        for incoming in batch.events:
            raw = incoming.raw if isinstance(incoming.raw, dict) else {}
            app = fixed_app_id or raw.get("project")
            if isinstance(app, str) and app:
                yield SourceEvent(incoming.event_id, app, _time(raw.get("time")))


def reconcile(
    events: Iterable[SourceEvent],
    messages: list[SvixMessage],
    *,
    since: datetime,
    until: datetime,
) -> Reconciliation:
    """Events of the window that Svix lacks, and Svix messages of the window nobody sent."""
    report = Reconciliation(since, until)
    all_events = {(e.app_id, svix_event_id(e.event_id)): e for e in events}
    in_svix = {(m.app_id, m.event_id) for m in messages if m.event_id}
    for key, event in sorted(all_events.items()):
        if event.time is not None and not since <= event.time < until:
            continue
        report.expected += 1
        if key in in_svix:
            report.found += 1
        else:
            report.missing.append(event)
    for message in messages:
        if (
            since <= message.timestamp < until
            and (message.app_id, message.event_id) not in all_events
        ):
            report.unexpected.append(message)
    return report


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def jsonl_documents(lines: Iterable[str]) -> Iterator[bytes]:
    for line in lines:
        if line.strip():
            yield line.strip().encode()


def dump(data: Any) -> str:
    return json.dumps(data, indent=2)
