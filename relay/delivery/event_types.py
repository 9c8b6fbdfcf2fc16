"""The event types the catalogue lacks: created in Svix on their first event, once per instance.

Customers pick event types in Svix's App Portal, so a type Svix does not know is one nobody can
subscribe to by name. `python -m relay event-types sync` creates the catalogue's types with
descriptions and schemas; a new platform type reaches the relay before anyone adds it there, so
the relay creates it, bare, when it first delivers one.

Strategy: only after the event is delivered, never before (nothing at all while Svix is
failing), and never on the request's thread: `delivered` hands the type to one worker thread and
returns, so a slow or hanging event-type API (two calls of up to the Svix timeout each) holds up
neither the answer nor the other events of a batch. One worker at a time also keeps a burst of
new types to one event-type call in flight per instance. The worker ends when it has nothing
left, so an idle relay runs no thread of it. It asks before it creates, because creating an
archived type unarchives it, and archiving is the operator's decision. A failure is a WARNING and
is tried again after `retry_after_seconds`, not on every event.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from relay.core.errors import PermanentFailure, SendFailure
from relay.delivery.ports import EventTypeRegistry, EventTypeState
from relay.logs import fields, log

RETRY_AFTER_SECONDS = 300.0
# Types one instance creates at most: a producer that puts ids into event types would otherwise
# fill every customer's portal with them.
MAX_CREATED_PER_INSTANCE = 50
ARCHIVED_ADVICE = (
    "unarchive it, or set `archived = false` for it in catalogue/event-types.toml and run "
    "`python -m relay event-types sync`"
)


def archived_type_reason(svix_said: str) -> str:
    """Why an event of an archived type is parked, and what to do about it."""
    return (
        f"Svix refused the message because its event type is archived ({svix_said}): "
        f"{ARCHIVED_ADVICE}"
    )


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
        self._busy: set[str] = set()  # handed over: queued or being settled
        self._queue: deque[str] = deque()
        self._failed_at: dict[str, float] = {}
        self._retry_after = retry_after_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._worker: threading.Thread | None = None
        self._created = 0

    def delivered(self, event_type: str) -> None:
        """Called after an event of this type was delivered: hands its type over to be settled,
        at most once at a time, and returns at once."""
        if event_type in self._settled:  # the common case, without the lock
            return
        with self._lock:
            if event_type in self._settled or event_type in self._busy:
                return
            failed_at = self._failed_at.get(event_type)
            if failed_at is not None and self._clock() - failed_at < self._retry_after:
                return
            self._busy.add(event_type)
            self._queue.append(event_type)
            if self._worker is None:
                # A daemon: a Svix call in progress must not keep a stopping instance alive.
                self._worker = threading.Thread(
                    target=self._work, name="relay-event-types", daemon=True
                )
                self._worker.start()

    def explained(self, event_type: str, refused: PermanentFailure) -> str:
        """A refusal's reason. For a 400/422 whose words do not say the type is archived (Svix's
        words are unconfirmed), Svix is asked whether it is, so that the parked event says why:
        one call on the caller's thread, for refusals only; as it was when Svix cannot tell."""
        if refused.status not in (400, 422) or "archived" in refused.reason:
            return refused.reason
        try:
            state = self._registry.event_type_state(event_type)
        except Exception:  # noqa: BLE001 - the refusal stands as it is either way
            return refused.reason
        if state is EventTypeState.ARCHIVED:
            return archived_type_reason(refused.reason)
        return refused.reason

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Waits until every type handed over is settled or has failed; False on the timeout.
        For shutting down in order, and for tests."""
        with self._idle:
            return self._idle.wait_for(lambda: self._worker is None, timeout)

    def _work(self) -> None:
        try:
            while (event_type := self._next()) is not None:
                settled = False
                try:
                    settled = self._settle(event_type)
                finally:
                    self._done(event_type, settled=settled)
        finally:
            with self._lock:
                if self._worker is threading.current_thread():  # ended by an exception
                    self._busy.difference_update(self._queue)
                    self._queue.clear()
                    self._worker = None
                    self._idle.notify_all()

    def _next(self) -> str | None:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            # Under the lock that `delivered` takes: a type handed over from now on starts a
            # new worker, none is left in a queue nobody reads.
            self._worker = None
            self._idle.notify_all()
            return None

    def _done(self, event_type: str, *, settled: bool) -> None:
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
            if state is EventTypeState.MISSING and self._created >= MAX_CREATED_PER_INSTANCE:
                log.warning(
                    "not creating Svix event type %s: this instance has created %d already; "
                    "is a producer putting ids into event types?",
                    event_type,
                    self._created,
                    extra=fields(event_type=event_type),
                )
            elif state is EventTypeState.MISSING:
                self._created += 1  # counted when tried: a failing create still counts
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
