"""Reading what Svix holds, for reconcile and replay: an application's messages page by page,
and one message looked up by its eventId."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from relay.core.errors import LookupFailed, SvixListingError

if TYPE_CHECKING:
    from svix.api import Svix


@dataclass(frozen=True)
class SvixMessage:
    app_id: str
    svix_id: str
    event_id: str | None
    event_type: str
    timestamp: datetime


class SvixReader:
    """One svix SDK client for listing and look-ups. The SDK's retries stay on (5xx and lost
    connections, three quick tries): both calls are reads, and a blip should not turn a whole
    reconcile into "could not tell"."""

    def __init__(self, *, token: str, server_url: str | None, timeout_seconds: float) -> None:
        from svix.api import Svix, SvixOptions

        self._svix: Svix = Svix(token, SvixOptions(server_url=server_url, timeout=timeout_seconds))

    def close(self) -> None:
        self._svix._httpx_client.close()

    def list_messages(
        self, app_id: str, *, since: datetime, until: datetime
    ) -> Iterator[SvixMessage]:
        """The application's messages created in [since, until); none for an unknown one."""
        from svix.api import MessageListOptions
        from svix.exceptions import HttpError

        iterator: str | None = None
        while True:
            try:
                page = self._svix.message.list(
                    app_id,
                    MessageListOptions(limit=250, iterator=iterator, after=since, before=until),
                )
            except HttpError as exc:
                if exc.status_code == 404:
                    return  # no such application yet: no messages
                raise SvixListingError(
                    f"Svix refused to list messages of {app_id} ({exc.status_code}): {exc.detail}"
                ) from None
            except Exception as exc:  # noqa: BLE001 - httpx's, JSON's, pydantic's: all "unknown"
                raise SvixListingError(
                    f"listing the messages of {app_id} failed: {type(exc).__name__}: {exc}"
                ) from None
            for message in page.data:
                yield SvixMessage(
                    app_id=app_id,
                    svix_id=message.id,
                    event_id=message.event_id,
                    event_type=message.event_type,
                    timestamp=message.timestamp,
                )
            if page.done or not page.iterator:
                return
            iterator = page.iterator

    def find(self, app_id: str, svix_event_id: str) -> str | None:
        """The id of the message with this eventId in the application, or None when Svix holds
        none (404: no such message, or no such application). One GET."""
        from svix.exceptions import HttpError, HTTPValidationError

        try:
            found = self._svix.message.get(app_id, svix_event_id)
        except HttpError as exc:
            if exc.status_code == 404:
                return None
            raise LookupFailed(
                f"Svix answered {exc.status_code} to the look-up of {svix_event_id} in "
                f"{app_id}: {exc.code}: {exc.detail}"
            ) from None
        except HTTPValidationError:
            raise LookupFailed(
                f"Svix refused the look-up of {svix_event_id} in {app_id} as invalid (422)"
            ) from None
        except Exception as exc:  # noqa: BLE001 - httpx's, JSON's, pydantic's: all "unknown"
            raise LookupFailed(
                f"looking up {svix_event_id} in {app_id} failed: {type(exc).__name__}: {exc}"
            ) from None
        # Svix looks messages up by id or eventId alike: only the one with our eventId is ours.
        return found.id if found.event_id == svix_event_id else None
