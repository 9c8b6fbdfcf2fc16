"""The svix SDK's own `message.create` (RELAY_SVIX_CLIENT=sdk), for a deployment that needs what
only the SDK's HTTP layer has (proxy support), at the price of its CPU.

Retrying is the delivery layer's job: the SDK's own retries are switched off, because they ignore
429 and Retry-After and would spend the time budget behind our back.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from relay.core.errors import TransientFailure
from relay.core.messages import OutgoingMessage
from relay.delivery.ports import Accepted, EventTypeState
from relay.svix.answers import (
    Conflict,
    event_type_created,
    event_type_state,
    failure_for,
    look_up_failure,
    not_a_message,
    read_error,
    unconfirmed_conflict,
)

if TYPE_CHECKING:
    import httpx
    from svix.api import Svix


class SdkSvixSender:
    """The svix SDK's own `message.create`: no SDK retries, one pooled HTTP client shared by
    every thread, and the Retry-After header the SDK hides recovered from the raw response."""

    def __init__(self, *, token: str, server_url: str | None, timeout_seconds: float) -> None:
        import httpx
        from svix.api import Svix, SvixOptions

        self._last_answer = threading.local()
        self._svix: Svix = Svix(
            token, SvixOptions(server_url=server_url, retry_schedule=[], timeout=timeout_seconds)
        )
        # The SDK neither exposes response headers nor accepts a client of ours: replacing its
        # pooled client is the one way to see Retry-After. Pinned SDK; tested against the emulator.
        self._svix._httpx_client = httpx.Client(
            event_hooks={"response": [self._remember]},
            limits=httpx.Limits(max_connections=512, max_keepalive_connections=128),
        )

    def _remember(self, response: httpx.Response) -> None:
        # Called once the head is in, before the body is read: kept for judging the answer.
        self._last_answer.response = response

    def send(self, message: OutgoingMessage) -> Accepted:
        try:
            return self._create(message)
        except Conflict as conflict:
            return self._existing(message, str(conflict))

    def _create(self, message: OutgoingMessage) -> Accepted:
        import httpx
        from svix.api import MessageCreateOptions, MessageIn
        from svix.exceptions import HttpError, HTTPValidationError

        options = MessageCreateOptions(idempotency_key=message.idempotency_key, with_content=False)
        self._last_answer.response = None
        try:
            # Through json.loads: pydantic's JSON parser stops at about 200 levels of nesting,
            # short of what the mapping (and Svix) take.
            message_in = MessageIn.model_validate(json.loads(message.body))
        except ValueError as exc:
            raise TransientFailure(f"the SDK's MessageIn refused the message: {exc}") from None
        try:
            created = self._svix.message.create(message.app_id, message_in, options)
        except httpx.TransportError as exc:
            self._judge(whole=False)  # the head may have come before the body broke off
            if isinstance(exc, httpx.TimeoutException):
                raise TransientFailure("Svix did not answer in time") from None
            raise TransientFailure(f"connection to Svix failed ({type(exc).__name__})") from None
        except (HttpError, HTTPValidationError, ValueError, KeyError, TypeError, AttributeError):
            # The SDK could not read the answer as a message, or as an error of the shape it
            # expects (an HTML page, other JSON): judged from the raw answer, as the direct
            # sender judges it.
            if self._last_answer.response is None:
                raise
            self._judge(whole=True)
            raise
        if not created.id:
            not_a_message(self._last_answer.response.status_code)
        return Accepted(svix_message_id=created.id)

    def _judge(self, *, whole: bool) -> None:
        """Raises what the last answer means, unless it was a 2xx whose body broke off."""
        response: httpx.Response | None = self._last_answer.response
        if response is None:
            return
        status = response.status_code
        if 200 <= status < 300:
            if whole:
                not_a_message(status)
            return
        failure_for(status, response.content if whole else b"", response.headers)

    def find(self, message: OutgoingMessage) -> Accepted | None:
        """As DirectSvixSender.find, through the SDK's message.get."""
        import httpx
        from svix.api import MessageGetOptions

        self._last_answer.response = None
        try:
            found = self._svix.message.get(
                message.app_id, message.svix_event_id, MessageGetOptions(with_content=False)
            )
        except httpx.TransportError as exc:
            self._judge(whole=False)
            if isinstance(exc, httpx.TimeoutException):
                raise TransientFailure("Svix did not answer in time") from None
            raise TransientFailure(f"connection to Svix failed ({type(exc).__name__})") from None
        except Exception:
            response = self._last_answer.response
            if response is None:
                raise
            status = response.status_code
            if status == 404 and read_error(404, response.content)[1]:
                return None
            if 200 <= status < 300:
                not_a_message(status)
            look_up_failure(status, response.content, response.headers)
        if not found.id or found.event_id != message.svix_event_id:
            not_a_message(200)  # Svix looks up by id or eventId alike: only ours is ours
        return Accepted(found.id, already_existed=True)

    def event_type_state(self, name: str) -> EventTypeState:
        """Svix's answer to the SDK's event_type.get, judged from the raw answer as the direct
        sender judges it."""
        self._call(lambda: self._svix.event_type.get(name))
        response: httpx.Response = self._last_answer.response
        return event_type_state(response.status_code, response.content, response.headers)

    def create_event_type(self, name: str, *, description: str, group: str | None) -> None:
        from svix.api import EventTypeIn

        event_type = EventTypeIn(name=name, description=description, group_name=group)
        self._call(lambda: self._svix.event_type.create(event_type))
        response: httpx.Response = self._last_answer.response
        event_type_created(response.status_code, response.content, response.headers)

    def _call(self, call: Callable[[], object]) -> None:
        """Makes an SDK call whose answer is judged from the raw response afterwards; only a
        call that got no answer at all is a failure here."""
        import httpx

        self._last_answer.response = None
        try:
            call()
        except httpx.TransportError as exc:
            raise TransientFailure(f"connection to Svix failed ({type(exc).__name__})") from None
        except Exception:
            if self._last_answer.response is None:
                raise

    def _existing(self, message: OutgoingMessage, conflict: str) -> Accepted:
        """After a 409: the message with our eventId, or a retry if Svix does not hold one."""
        import httpx
        from svix.api import MessageGetOptions
        from svix.exceptions import HttpError

        try:
            # Without the payload, as the direct sender asks.
            found = self._svix.message.get(
                message.app_id, message.svix_event_id, MessageGetOptions(with_content=False)
            )
        except HttpError as exc:
            unconfirmed_conflict(conflict, message.svix_event_id, exc.status_code)
        except (httpx.HTTPError, ValueError) as exc:
            raise TransientFailure(
                f"Svix answered 409 ({conflict}); looking the message up failed: "
                f"{type(exc).__name__}"
            ) from None
        if found.event_id != message.svix_event_id:
            # Svix looks up by id or eventId alike: a message with another eventId is not ours.
            unconfirmed_conflict(conflict, message.svix_event_id, 404)
        return Accepted(found.id, already_existed=True)
