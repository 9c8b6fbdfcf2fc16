"""Times as events and Pub/Sub write them (RFC 3339 / ISO 8601)."""

from __future__ import annotations

from datetime import UTC, datetime


def parse_time(value: object) -> datetime | None:
    """A time (an event's `time`, a publishTime) as an aware datetime; one written without a
    zone is UTC. None when it is absent or not a time."""
    if not isinstance(value, str):
        return None
    try:
        # RFC 3339 allows a lower-case "z" too; fromisoformat takes neither form in every case.
        when = datetime.fromisoformat(value[:-1] + "+00:00" if value[-1:] in ("z", "Z") else value)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def timestamp(value: object) -> float | None:
    """The same time as POSIX seconds, for arithmetic with time.time()."""
    when = parse_time(value)
    return when.timestamp() if when is not None else None
