"""Svix's event types through the svix SDK, for `event-types sync`: list them all, create one,
change some fields of one.

Strategy: the SDK retries 5xx and lost connections itself (three quick tries) but never a 429,
and hides the answer's headers; so a response hook keeps the last 429's Retry-After, and a 429
is tried again a few times, after Retry-After or an exponential backoff. No library in
requirements.txt retries a call by an answer's header (tenacity was taken out, NOTES.md §8;
httpx's transport retries only failed connects), and a sync makes a few dozen calls at most.
A Retry-After longer than the sync would wait stops it at once: asking sooner only meets the
limit again.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from relay.core.errors import SvixEventTypeError
from relay.svix.answers import retry_after_seconds

if TYPE_CHECKING:
    import httpx
    from svix.api import Svix
    from svix.models import EventTypeOut

Field = Literal["description", "group", "deprecated", "archived", "schemas"]
# In the order a diff names them.
FIELDS: tuple[Field, ...] = ("description", "group", "deprecated", "archived", "schemas")
# The SDK's model field for each.
_SDK_FIELDS: dict[Field, str] = {
    "description": "description",
    "group": "group_name",
    "deprecated": "deprecated",
    "archived": "archived",
    "schemas": "schemas",
}

# 429s in a row before giving up, and the waits between: about 8 s in all without Retry-After.
RATE_LIMIT_DELAYS = (0.5, 1.0, 2.0, 4.0)
# Retry-After is waited at least the floor (0 would only meet the limit again at once); one
# longer than the cap stops the sync, which an on-call would rather rerun than watch wait.
RETRY_AFTER_FLOOR_SECONDS = 0.1
RETRY_AFTER_CAP_SECONDS = 30.0
_T = TypeVar("_T")


@dataclass(frozen=True)
class SvixEventType:
    """An event type as Svix holds it, or as the catalogue wants it."""

    name: str
    description: str
    group: str | None
    deprecated: bool
    # Svix's state; in what the catalogue wants, None means "leave Svix's state as it is".
    archived: bool | None
    schemas: Mapping[str, Any] | None

    def value(self, field: Field) -> object:
        value: object = getattr(self, field)
        return value


class SvixEventTypes:
    """One svix SDK client for the environment's event types."""

    def __init__(self, *, token: str, server_url: str | None, timeout_seconds: float) -> None:
        from svix.api import Svix, SvixOptions

        self._svix: Svix = Svix(token, SvixOptions(server_url=server_url, timeout=timeout_seconds))
        self._retry_after: float | None = None  # the last 429's, set by the response hook
        client = self._svix._httpx_client
        client.event_hooks = {**client.event_hooks, "response": [self._note_retry_after]}

    def close(self) -> None:
        self._svix._httpx_client.close()

    def list_all(self) -> list[SvixEventType]:
        """Every event type, archived ones included, with their schemas, page by page."""
        from svix.api import EventTypeListOptions

        found: list[SvixEventType] = []
        iterator: str | None = None
        seen: set[str] = set()
        while True:
            options = EventTypeListOptions(
                limit=250, iterator=iterator, include_archived=True, with_content=True
            )
            try:
                page = self._call(
                    "list the event types", partial(self._svix.event_type.list, options)
                )
            except _Answered as answered:
                raise answered.refusal() from None
            found += [_from_sdk(out) for out in page.data]
            if page.done or not page.iterator:
                return found
            if page.iterator in seen:
                raise SvixEventTypeError("Svix's event type listing went round in a circle")
            seen.add(page.iterator)
            iterator = page.iterator

    def create(self, wanted: SvixEventType) -> SvixEventType | None:
        """Create it, and return it as Svix holds it; None when a type of that name exists (409)."""
        from svix.api import EventTypeIn

        fields: dict[str, Any] = {
            "name": wanted.name,
            "description": wanted.description,
            "deprecated": wanted.deprecated,
        }
        if wanted.group is not None:
            fields["group_name"] = wanted.group
        if wanted.schemas is not None:
            fields["schemas"] = dict(wanted.schemas)
        if wanted.archived is not None:
            fields["archived"] = wanted.archived
        body = EventTypeIn(**fields)
        what = f"create event type {wanted.name}"
        try:
            return _from_sdk(self._call(what, partial(self._svix.event_type.create, body)))
        except _Answered as answered:
            if answered.status == 409:
                return None
            raise answered.refusal() from None

    def update(self, name: str, changes: Mapping[Field, object]) -> SvixEventType | None:
        """PATCH the given fields only: feature flags and whatever else stays as it is. Returns
        the type as Svix holds it then; None when Svix has no such type (404: expunged)."""
        from svix.api import EventTypePatch

        # Only the fields given count as set, so only they are sent (and a None group clears it).
        patch = EventTypePatch.model_validate({_SDK_FIELDS[f]: v for f, v in changes.items()})
        what = f"update event type {name}"
        try:
            return _from_sdk(self._call(what, partial(self._svix.event_type.patch, name, patch)))
        except _Answered as answered:
            if answered.status == 404:
                return None
            raise answered.refusal() from None

    def _call(self, what: str, call: Callable[[], _T]) -> _T:
        from svix.exceptions import HttpError, HTTPValidationError

        for attempt in range(len(RATE_LIMIT_DELAYS) + 1):
            self._retry_after = None
            try:
                return call()
            except HttpError as exc:
                if exc.status_code in (404, 409):
                    raise _Answered(what, exc) from None
                if exc.status_code == 429 and attempt < len(RATE_LIMIT_DELAYS):
                    time.sleep(self._wait(attempt))
                    continue
                raise _refusal(what, exc) from None
            except HTTPValidationError as exc:
                raise SvixEventTypeError(
                    f"Svix refused to {what} as invalid (422): {_validation_detail(exc)}"
                ) from None
            except Exception as exc:  # noqa: BLE001 - httpx's, JSON's, pydantic's: all "failed"
                raise SvixEventTypeError(
                    f"could not {what} in Svix: {type(exc).__name__}: {exc}"
                ) from None
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _wait(self, attempt: int) -> float:
        if self._retry_after is not None:
            if self._retry_after > RETRY_AFTER_CAP_SECONDS:
                raise SvixEventTypeError(
                    f"Svix rate-limited the sync and asks to wait {self._retry_after:.0f} s "
                    "before the next call: run the sync again after that"
                )
            return max(self._retry_after, RETRY_AFTER_FLOOR_SECONDS)
        # Jitter, so that two syncs started together do not meet the limit together again.
        return RATE_LIMIT_DELAYS[attempt] * random.uniform(0.8, 1.2)

    def _note_retry_after(self, response: httpx.Response) -> None:
        if response.status_code == 429:
            self._retry_after = retry_after_seconds(response.headers.get("retry-after"))


class _Answered(Exception):
    """404 or 409 from Svix: what it means depends on the call (for a create, 409 is "it
    exists"; for an update, 404 is "it is gone")."""

    def __init__(self, what: str, exc: Any) -> None:
        super().__init__(what)
        self.status: int = exc.status_code
        self._refusal = _refusal(what, exc)

    def refusal(self) -> SvixEventTypeError:
        return self._refusal


def _refusal(what: str, exc: Any) -> SvixEventTypeError:
    return SvixEventTypeError(
        f"Svix refused to {what} ({exc.status_code}): {exc.code}: {exc.detail}"
    )


def _from_sdk(out: EventTypeOut) -> SvixEventType:
    return SvixEventType(
        name=out.name,
        description=out.description,
        group=out.group_name,
        deprecated=out.deprecated,
        archived=bool(out.archived),
        schemas=out.schemas,
    )


def _validation_detail(exc: Any) -> str:
    items = getattr(exc, "detail", None) or []
    parts = []
    for item in items:
        loc = ".".join(str(part) for part in (getattr(item, "loc", None) or []))
        parts.append(f"{loc}: {getattr(item, 'msg', item)}")
    return "; ".join(parts) or "no detail"
