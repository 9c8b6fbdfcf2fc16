"""What the on-call runs: replay (send events again, with the same keys, but only those Svix does
not hold) and reconcile (compare the events we were given with the messages Svix holds).

Both look events up by their Svix eventId. Svix replays an idempotency key's answer for 12 hours
and refuses a second eventId for a day; past both, sending an event again makes a second
message. And a message created late (after an outage, or by a replay) lies outside any listing
of its event's time window; a look-up by eventId finds a message of any age.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from relay.events import InvalidEvent
from relay.intake import (
    Batch,
    IncomingEvent,
    MalformedRequest,
    PubSubMessage,
    RequestTooLarge,
    read_request,
)
from relay.logs import fields, log
from relay.messages import svix_event_id, to_message
from relay.outcomes import DONE, Outcome
from relay.service import Relay
from relay.svix_listing import LookupFailed, SvixMessage

# Events in one replayed Pub/Sub message or one JSONL line. Above the function's own limit
# (RELAY_MAX_EVENTS_PER_REQUEST) on purpose: what the function refused as too large must still
# be replayable by hand.
MAX_EVENTS_PER_DOCUMENT = 10_000
FOUND = "found"  # replay's count of events Svix already held: looked up, not sent


class EventLookup(Protocol):
    def find(self, app_id: str, svix_event_id: str) -> str | None: ...


class SourceDocument(bytes):
    """One JSONL line or Pub/Sub message's data, and where it came from (for the report)."""

    where: str

    def __new__(cls, data: bytes, where: str) -> SourceDocument:
        document = super().__new__(cls, data)
        document.where = where
        return document


@dataclass
class ReplaySummary:
    messages: int = 0
    acknowledged: int = 0
    left: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

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
    batch = read_request(data, headers, max_events=MAX_EVENTS_PER_DOCUMENT)
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
    lookup: EventLookup,
    fixed_app_id: str | None,
    dry_run: bool,
    on_done: Callable[[str, bool], None] | None = None,
) -> ReplaySummary:
    """Send every message's events that Svix does not hold through the relay. `on_done(message_id,
    delivered)` is told after each message so the caller acknowledges only what is in Svix."""
    summary = ReplaySummary()
    for message_id, data, attributes in messages:
        summary.messages += 1
        try:
            batch = replay_batch(message_id, data, attributes)
            unreadable = batch.unreadable
        except (MalformedRequest, RequestTooLarge) as exc:
            unreadable = str(exc)
        if unreadable is not None:
            summary.count("unreadable")
            summary.failures.append(f"{message_id}: {unreadable}")
            delivered = False
        else:
            delivered = _replay_events(relay, batch, summary, lookup, fixed_app_id, dry_run)
        if on_done:
            on_done(message_id, delivered)
    return summary


def _replay_events(
    relay: Relay,
    batch: Batch,
    summary: ReplaySummary,
    lookup: EventLookup,
    fixed_app_id: str | None,
    dry_run: bool,
) -> bool:
    """Whether every event of the batch is in Svix now (never after a dry run)."""
    unsent, all_looked_up = _not_in_svix(batch.events, summary, lookup, fixed_app_id)
    if dry_run:
        for incoming in unsent:
            summary.count("would_send" if incoming.event else "invalid")
        return False
    if not unsent:
        return all_looked_up
    answer = relay.handle(replace(batch, events=unsent))
    for result in answer.body.get("events", []):
        summary.count(result["outcome"])
        if Outcome(result["outcome"]) not in DONE:
            summary.failures.append(f"{result['id']}: {result.get('reason', '')}")
    return all_looked_up and answer.status == 200


def _not_in_svix(
    events: list[IncomingEvent],
    summary: ReplaySummary,
    lookup: EventLookup,
    fixed_app_id: str | None,
) -> tuple[list[IncomingEvent], bool]:
    """The events to send: those Svix holds no message for, and the invalid ones (the relay says
    why it refuses them). False when a look-up failed: such events are not sent at all, since
    sending blind is what makes a second message past Svix's windows."""
    unsent: list[IncomingEvent] = []
    failure: LookupFailed | None = None
    for incoming in events:
        try:
            message = to_message(incoming, fixed_app_id=fixed_app_id)
        except InvalidEvent:
            unsent.append(incoming)
            continue
        found: str | None = None
        if failure is None:
            try:
                found = lookup.find(message.app_id, message.svix_event_id)
            except LookupFailed as exc:
                failure = exc
        if failure is not None:
            # The rest of the message waits for the next replay too: one failed look-up says
            # Svix is not answering, and each further one could cost a whole timeout.
            summary.count(Outcome.FAILED.value)
            reason = f"not sent, as Svix could not be asked whether it holds it: {failure}"
            summary.failures.append(f"{incoming.event_id}: {reason}")
            log.error(
                "event %s %s",
                incoming.event_id,
                reason,
                extra=fields(event_id=incoming.event_id, app_id=message.app_id, outcome="failed"),
            )
        elif found is None:
            unsent.append(incoming)
        else:
            summary.count(FOUND)
            log.info(
                "event %s found in Svix (%s): not sent again",
                incoming.event_id,
                found,
                extra=fields(
                    event_id=incoming.event_id,
                    app_id=message.app_id,
                    outcome=FOUND,
                    svix_message_id=found,
                ),
            )
    return unsent, failure is None


@dataclass(frozen=True)
class SourceEvent:
    event_id: str
    app_id: str
    time: datetime | None
    # Only with one fixed application (SVIX_APP_ID): the relay then makes the project part of
    # the Svix eventId, so that two projects' events with one id stay two messages.
    project: str | None = None

    @property
    def svix_event_id(self) -> str:
        return svix_event_id(self.event_id, project=self.project)


@dataclass
class SourceProblems:
    """What reading the source events met: documents and events the relay could not have
    delivered either (reported), and documents too large to count (reconcile cannot tell)."""

    unreadable: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def source_events(
    documents: Iterable[bytes],
    *,
    fixed_app_id: str | None,
    problems: SourceProblems | None = None,
) -> Iterator[SourceEvent]:
    """The events in a stream of message bodies or JSONL lines (one event or array each)."""
    problems = problems if problems is not None else SourceProblems()
    for number, data in enumerate(documents, start=1):
        where = getattr(data, "where", f"document {number}")
        try:
            batch = read_request(data, {}, max_events=MAX_EVENTS_PER_DOCUMENT)
        except RequestTooLarge as exc:
            problems.errors.append(f"{where}: {exc}: its events were not counted")
            continue
        except MalformedRequest as exc:
            problems.unreadable.append(f"{where}: {exc}")
            continue
        for incoming in batch.events:
            raw = incoming.raw if isinstance(incoming.raw, dict) else {}
            project = raw.get("project") if isinstance(raw.get("project"), str) else None
            app = fixed_app_id or project
            if not app:
                problems.unreadable.append(
                    f"{where}: event {incoming.event_id} has no `project` naming its application"
                )
                continue
            yield SourceEvent(
                incoming.event_id,
                app,
                event_time(raw.get("time")),
                (project or None) if fixed_app_id else None,
            )


@dataclass
class Reconciliation:
    since: datetime
    until: datetime
    expected: int = 0
    found: int = 0  # in the listing of the window, or by look-up
    found_by_lookup: int = 0
    missing: list[SourceEvent] = field(default_factory=list)
    not_checked: list[SourceEvent] = field(default_factory=list)  # no answer from Svix
    unexpected: list[SvixMessage] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.errors

    @property
    def exit_status(self) -> int:
        """0 all found, 1 some missing, 2 could not tell: never 1 for an error, since 1 is what
        pages someone to replay, and a replay on a false report is what duplicates."""
        return 2 if self.errors else 1 if self.missing else 0

    def as_json(self) -> dict[str, Any]:
        def event(e: SourceEvent) -> dict[str, Any]:
            return {"event_id": e.event_id, "app_id": e.app_id, "time": _iso(e.time)}

        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "expected_events": self.expected,
            "found_in_svix": self.found,
            "found_by_lookup": self.found_by_lookup,
            "missing_in_svix": [event(e) for e in self.missing],
            "not_checked": [event(e) for e in self.not_checked],
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
            "unreadable_source": self.unreadable,
            "errors": self.errors,
            "ok": self.ok,
        }

    def as_table(self) -> str:
        lines = [
            f"window            {self.since.isoformat()} .. {self.until.isoformat()}",
            f"expected events   {self.expected}",
            f"found in Svix     {self.found}",
            f"found by look-up  {self.found_by_lookup}",
            f"missing in Svix   {len(self.missing)}",
            f"not checked       {len(self.not_checked)}",
            f"without source    {len(self.unexpected)}",
            f"unreadable source {len(self.unreadable)}",
        ]
        for title, events in (("MISSING IN SVIX", self.missing), ("NOT CHECKED", self.not_checked)):
            if events:
                lines += ["", title, f"{'event id':<40} {'application':<24} time"]
                lines += [f"{e.event_id:<40} {e.app_id:<24} {_iso(e.time) or '-'}" for e in events]
        if self.unexpected:
            lines += ["", "SVIX MESSAGES WITHOUT A SOURCE EVENT"]
            lines += [f"{'svix message':<32} {'application':<24} event id"]
            lines += [
                f"{m.svix_id:<32} {m.app_id:<24} {m.event_id or '-'}" for m in self.unexpected
            ]
        for title, notes in (("UNREADABLE SOURCE", self.unreadable), ("ERRORS", self.errors)):
            if notes:
                lines += ["", title, *notes[:50]]
        return "\n".join(lines)


def reconcile(
    events: Iterable[SourceEvent],
    messages: list[SvixMessage],
    *,
    since: datetime,
    until: datetime,
    lookup: EventLookup,
    problems: SourceProblems | None = None,
) -> Reconciliation:
    """Events of the window that Svix holds no message for, and Svix messages of the window
    nobody sent. `messages` (the window's listing) saves look-ups; whatever it lacks is looked
    up by eventId, one GET each, and only a 404 makes an event missing."""
    report = Reconciliation(since, until)
    if problems is not None:
        report.unreadable, report.errors = list(problems.unreadable), list(problems.errors)
    by_key = {(e.app_id, e.svix_event_id): e for e in events}
    listed = {(m.app_id, m.event_id) for m in messages if m.event_id}
    to_look_up = []
    for key, event in sorted(by_key.items()):
        if event.time is not None and not since <= event.time < until:
            continue
        report.expected += 1
        if key in listed:
            report.found += 1
        else:
            to_look_up.append(event)
    for event in to_look_up:
        if report.not_checked:
            # One look-up failed: Svix is not answering, and each further try could cost a
            # whole timeout. The rest is not checked, which is "could not tell" (exit 2).
            report.not_checked.append(event)
            continue
        try:
            found = lookup.find(event.app_id, event.svix_event_id)
        except LookupFailed as exc:
            report.errors.append(str(exc))
            report.not_checked.append(event)
            continue
        if found is None:
            report.missing.append(event)
        else:
            report.found += 1
            report.found_by_lookup += 1
    report.unexpected = [
        m for m in messages if since <= m.timestamp < until and (m.app_id, m.event_id) not in by_key
    ]
    return report


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def event_time(value: object) -> datetime | None:
    """An event's `time` as an aware datetime: one written without a zone is UTC."""
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def jsonl_file_documents(data: bytes) -> Iterator[SourceDocument]:
    """The documents of a JSONL file. Lines end at "\\n" only: a JSON string may hold U+2028 and
    other characters str.splitlines() breaks at. A byte order mark is read (UTF-16 too, as
    PowerShell writes); "\\r" and blank lines are dropped."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = data.decode("utf-16")
        return jsonl_documents(line.encode("utf-8", "surrogatepass") for line in text.split("\n"))
    return jsonl_documents(data.removeprefix(codecs.BOM_UTF8).split(b"\n"))


def jsonl_documents(lines: Iterable[str | bytes]) -> Iterator[SourceDocument]:
    for number, line in enumerate(lines, start=1):
        raw = line.encode("utf-8", "surrogatepass") if isinstance(line, str) else line
        if raw.strip():
            yield SourceDocument(raw.strip(), f"line {number}")


def dump(data: Any) -> str:
    return json.dumps(data, indent=2)
