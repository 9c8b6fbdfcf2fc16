"""The event types the catalogue lacks: created in Svix on their first event, once per instance.

Customers pick event types in Svix's App Portal, so a type Svix does not know is one nobody can
subscribe to by name. `python -m relay event-types sync` creates the catalogue's types with
descriptions and schemas; a new platform type reaches the relay before anyone adds it there, so
the relay creates it, bare, when it first delivers one.

Strategy: only after the event is delivered, never before, so that it costs the event nothing
(and nothing at all while Svix is failing). It asks before it creates, because creating an
archived type unarchives it, and archiving is the operator's decision. A failure is a WARNING and
is tried again after `retry_after_seconds`, not on every event.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from relay.core.errors import SendFailure
from relay.delivery.ports import EventTypeRegistry, EventTypeState
from relay.logs import fields, log

RETRY_AFTER_SECONDS = 300.0


def description_for(name: str) -> str:
    """What the App Portal shows for a type the catalogue does not describe yet."""
    return f"Gigs {name} event. Not described yet: see the Gigs event documentation."


def group_for(name: str) -> str | None:
    """The resource, as the catalogue groups types: `user` for `user.address.created`."""
    head = name.split(".", 1)[0]
    return head or None


class UnknownEventTypes:
    """Remembers, per instance, which event types are settled: in the catalogue, or looked up
    (and created if missing) in Svix. Thread-safe; a type in progress is skipped, not waited for."""

    def __init__(
        self,
        registry: EventTypeRegistry,
        *,
        catalogue: frozenset[str],
        retry_after_seconds: float = RETRY_AFTER_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._registry = registry
        self._settled: set[str] = set(catalogue)
        self._busy: set[str] = set()
        self._failed_at: dict[str, float] = {}
        self._retry_after = retry_after_seconds
        self._clock = clock
        self._lock = threading.Lock()

    def delivered(self, event_type: str) -> None:
        """Called after an event of this type was delivered: settles its type, at most once."""
        if event_type in self._settled:  # the common case, without the lock
            return
        with self._lock:
            if event_type in self._settled or event_type in self._busy:
                return
            failed_at = self._failed_at.get(event_type)
            if failed_at is not None and self._clock() - failed_at < self._retry_after:
                return
            self._busy.add(event_type)
        try:
            settled = self._settle(event_type)
        finally:
            with self._lock:
                self._busy.discard(event_type)
                if settled:
                    self._settled.add(event_type)
                    self._failed_at.pop(event_type, None)
                else:
                    self._failed_at[event_type] = self._clock()

    def _settle(self, event_type: str) -> bool:
        try:
            state = self._registry.event_type_state(event_type)
            if state is EventTypeState.MISSING:
                self._registry.create_event_type(
                    event_type, description=description_for(event_type), group=group_for(event_type)
                )
                log.info(
                    "created Svix event type %s: it is not in the catalogue "
                    "(catalogue/event-types.toml) yet",
                    event_type,
                    extra=fields(event_type=event_type),
                )
            elif state is EventTypeState.ARCHIVED:
                # Not unarchived: archiving is the operator's call (and would be undone by a
                # create). This event got through, so Svix took it regardless: say so.
                log.warning(
                    "Svix event type %s is archived but took an event of it; the relay leaves "
                    "it archived",
                    event_type,
                    extra=fields(event_type=event_type),
                )
        except Exception as exc:  # noqa: BLE001 - whatever it is, it must not touch delivery
            reason = exc.reason if isinstance(exc, SendFailure) else f"{type(exc).__name__}: {exc}"
            log.warning(
                "could not create Svix event type %s (%s); delivery goes on, and the relay "
                "tries again in %.0f s",
                event_type,
                reason,
                self._retry_after,
                extra=fields(event_type=event_type),
            )
            return False
        return True
