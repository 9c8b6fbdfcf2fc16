"""Svix's dedup windows, and which events may have outlived them.

Svix replays an idempotency key's first answer for 12 hours and refuses a second message with an
eventId for a day. Past both, a create makes a second message: so an event that may be that old
is looked up by its eventId before it is created. A fresh event costs no extra call.
"""

from __future__ import annotations

from relay.core.batch import Origin

# Past this age an event may be older than Svix's 12-hour idempotency window, so it is looked up
# by its eventId before it is created: an hour under the window, for clock skew and time in
# flight. The relay cannot have created a message before Pub/Sub published its event, so a
# publishTime younger than this proves both windows still hold.
LOOK_FIRST_AFTER_SECONDS = 11 * 3600.0
# How far in the future a direct post's own time may be and still count as fresh.
CLOCK_SKEW = 300.0
# Pub/Sub's longest retry delay (600 s): so many attempts may span that age too.
LONGEST_RETRY_DELAY_SECONDS = 600.0


def may_be_old(
    source: Origin | None, happened: float | None, published: float | None, *, now: float
) -> bool:
    """Whether the event may be older than Svix's dedup windows: its publishTime says so, or
    Pub/Sub has tried it that long. Without a publishTime (a direct post) only the event's own
    time can clear it: one that is absent, unreadable or in the future does not."""
    if published is not None:
        if now - published > LOOK_FIRST_AFTER_SECONDS:
            return True
    elif happened is None or not now - LOOK_FIRST_AFTER_SECONDS <= happened <= now + CLOCK_SKEW:
        return True
    attempt = source.delivery_attempt if source else None
    return attempt is not None and attempt * LONGEST_RETRY_DELAY_SECONDS > LOOK_FIRST_AFTER_SECONDS
