"""Listing the messages Svix holds for an application, page by page, for reconcile."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from relay.operations import SvixMessage


class SvixListingError(Exception):
    """Svix would not list an application's messages; the message says why."""


def list_messages(
    *, token: str, server_url: str | None, app_id: str, since: datetime, until: datetime
) -> Iterator[SvixMessage]:
    from svix.api import MessageListOptions, Svix, SvixOptions
    from svix.exceptions import HttpError

    svix = Svix(token, SvixOptions(server_url=server_url))
    iterator: str | None = None
    while True:
        try:
            page = svix.message.list(
                app_id,
                MessageListOptions(limit=250, iterator=iterator, after=since, before=until),
            )
        except HttpError as exc:
            if exc.status_code == 404:
                return  # no such application yet: no messages, so all its events are missing
            raise SvixListingError(
                f"Svix refused to list messages of {app_id} ({exc.status_code}): {exc.detail}"
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
