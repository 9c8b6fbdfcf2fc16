"""Where the on-call's tools read events from: JSONL files and Pub/Sub message bodies."""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from relay.core.jsontext import utf8

# Events in one replayed Pub/Sub message or one JSONL line. Above the function's own limit
# (RELAY_MAX_EVENTS_PER_REQUEST) on purpose: what the function refused as too large must still
# be replayable by hand.


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


def jsonl_file_documents(data: bytes) -> Iterator[SourceDocument]:
    """The documents of a JSONL file. Lines end at "\\n" only: a JSON string may hold U+2028 and
    other characters str.splitlines() breaks at. A byte order mark is read (UTF-16 too, as
    PowerShell writes); "\\r" and blank lines are dropped."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = data.decode("utf-16")
        return jsonl_documents(utf8(line) for line in text.split("\n"))
    return jsonl_documents(data.removeprefix(codecs.BOM_UTF8).split(b"\n"))


def jsonl_documents(lines: Iterable[str | bytes]) -> Iterator[SourceDocument]:
    for number, line in enumerate(lines, start=1):
        raw = utf8(line) if isinstance(line, str) else line
        if raw.strip():
            yield SourceDocument(raw.strip(), f"line {number}")


def dump(data: Any) -> str:
    return json.dumps(data, indent=2)
