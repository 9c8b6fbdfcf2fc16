"""reconcile: compare the events we were given with the messages Svix holds.

Strategy: the listing of the window is only a shortcut. A message created late (after an
outage, or by a replay) lies outside any listing of its event's time window, so every event
the listing lacks is looked up by its eventId, and only Svix's "not found" makes it missing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from relay.core.errors import LookupFailed, MalformedRequest, RequestTooLarge
from relay.core.messages import svix_event_id
from relay.core.times import parse_time
from relay.operations.sources import MAX_EVENTS_PER_DOCUMENT, EventLookup
from relay.pubsub.push import read_request
from relay.svix.listing import SvixMessage

# Events in one replayed Pub/Sub message or one JSONL line. Above the function's own limit
# (RELAY_MAX_EVENTS_PER_REQUEST) on purpose: what the function refused as too large must still
# be replayable by hand.


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
                parse_time(raw.get("time")),
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
