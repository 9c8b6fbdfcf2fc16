"""Svix-shaped ids and RFC 3339 timestamps."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta, timezone

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# Real KSUIDs lead with a timestamp so ids sort by age. A sequence number does the same job and,
# unlike the clock, keeps ids reproducible under a seed and strictly ordered within a millisecond.
_SEQ_WIDTH = 8
_RANDOM_WIDTH = 27 - _SEQ_WIDTH

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})"
)


class IdFactory:
    """Makes `prefix_` + 27 base62 characters; ids of one prefix sort in creation order."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        self._seq: dict[str, int] = {}

    def new(self, prefix: str) -> str:
        seq = self._seq.get(prefix, 0) + 1
        self._seq[prefix] = seq
        head = []
        for _ in range(_SEQ_WIDTH):
            seq, digit = divmod(seq, 62)
            head.append(_BASE62[digit])
        tail = "".join(self._rng.choice(_BASE62) for _ in range(_RANDOM_WIDTH))
        return f"{prefix}_{''.join(reversed(head))}{tail}"


class Clock:
    """Millisecond UTC timestamps that never go backwards, so time order matches id order."""

    def __init__(self) -> None:
        self._last = datetime.min.replace(tzinfo=UTC)

    def now(self) -> datetime:
        now = datetime.now(UTC)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        if now < self._last:
            now = self._last
        self._last = now
        return now


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_micros(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def format_timestamp(moment: datetime) -> str:
    """`2026-01-01T00:00:00.000Z`: the shape Svix answers with."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_timestamp(text: str) -> datetime | None:
    """An RFC 3339 date-time with its offset, as an aware datetime; None when it is not one."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    if offset in ("Z", "z"):
        zone = UTC
    else:
        sign = 1 if offset[0] == "+" else -1
        hours, minutes = int(offset[1:3]), int(offset[4:6])
        if hours > 23 or minutes > 59:
            return None
        zone = timezone(timedelta(minutes=sign * (hours * 60 + minutes)))
    try:
        return datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micro, zone
        )
    except ValueError:
        return None
