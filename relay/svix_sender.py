"""Sending one message to Svix, one attempt at a time, and saying what the answer means.

Retrying is the delivery layer's job: the SDK's own retries are switched off, because they ignore
429 and Retry-After and would spend the time budget behind our back.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Protocol

import httpx

from relay.messages import OutgoingMessage

if TYPE_CHECKING:
    from svix.api import Svix


class SendFailure(Exception):
    """Svix did not take the message; `reason` is safe to log and to return to the caller."""

    def __init__(self, reason: str, *, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class RateLimited(SendFailure):
    def __init__(self, reason: str, *, retry_after: float | None) -> None:
        super().__init__(reason, status=429)
        self.retry_after = retry_after


class TransientFailure(SendFailure):
    """A failure a later attempt may not meet: 5xx, 423, timeouts, dropped connections."""


class ServiceRefused(SendFailure):
    """Svix refuses our token or our configuration (401, 403, 404): not the message's fault,
    so it is retried like a transient failure, and someone must fix the deployment."""


class PermanentFailure(SendFailure):
    """Svix refuses this message as it is: no retry can fix it."""


@dataclass(frozen=True)
class Accepted:
    # None when Svix already had the message (409) and did not say which it is.
    svix_message_id: str | None
    already_existed: bool = False


class MessageSender(Protocol):
    def send(self, message: OutgoingMessage) -> Accepted: ...


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP date; None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class SvixSender:
    """The svix SDK, configured for the relay: no SDK retries, one pooled HTTP client shared by
    every thread, and the Retry-After header the SDK hides recovered from the raw response."""

    def __init__(self, *, token: str, server_url: str | None, timeout_seconds: float) -> None:
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
        self._last_answer.status = response.status_code
        self._last_answer.retry_after = response.headers.get("retry-after")

    def send(self, message: OutgoingMessage) -> Accepted:
        from svix.api import ApplicationIn, MessageCreateOptions, MessageIn
        from svix.exceptions import HttpError, HTTPValidationError

        message_in = MessageIn(
            event_type=message.event_type,
            event_id=message.svix_event_id,
            payload=message.payload,
            application=(
                ApplicationIn(name=message.create_app_named, uid=message.create_app_named)
                if message.create_app_named
                else None
            ),
        )
        options = MessageCreateOptions(idempotency_key=message.idempotency_key, with_content=False)
        self._last_answer.status = None
        self._last_answer.retry_after = None
        try:
            created = self._svix.message.create(message.app_id, message_in, options)
        except HTTPValidationError as exc:
            raise PermanentFailure(
                f"Svix rejected the message as invalid (422): {_validation_detail(exc)}", status=422
            ) from None
        except HttpError as exc:
            return self._after_error(exc.status_code, f"{exc.code}: {exc.detail}")
        except json.JSONDecodeError:
            status = self._last_answer.status
            raise TransientFailure(
                f"Svix answered {status} with a body that is not JSON", status=status
            ) from None
        except httpx.TimeoutException as exc:
            raise TransientFailure(f"Svix did not answer in time ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise TransientFailure(f"connection to Svix failed ({type(exc).__name__})") from None
        except (KeyError, TypeError, ValueError):
            # A JSON error body of a shape the SDK does not expect, from Svix or a proxy before it.
            status = self._last_answer.status
            if status is None or 200 <= status < 300:
                raise TransientFailure("Svix answered with a body the SDK could not read") from None
            return self._after_error(status, "error body of an unexpected shape")
        return Accepted(svix_message_id=created.id)

    def _after_error(self, status: int, detail: str) -> Accepted:
        if status == 409:
            return Accepted(svix_message_id=None, already_existed=True)
        if status == 429:
            raise RateLimited(
                f"Svix rate limit (429): {detail}",
                retry_after=retry_after_seconds(self._last_answer.retry_after),
            )
        if status in (401, 403):
            raise ServiceRefused(
                f"Svix refused the relay's credentials ({status}): check SVIX_AUTH_TOKEN",
                status=status,
            )
        if status == 404:
            raise ServiceRefused(
                f"Svix does not know the application (404): {detail}; check SVIX_APP_ID",
                status=status,
            )
        if status in (408, 423, 425) or status >= 500:
            raise TransientFailure(f"Svix answered {status}: {detail}", status=status)
        raise PermanentFailure(f"Svix rejected the message ({status}): {detail}", status=status)


def _validation_detail(exc: Exception) -> str:
    detail = getattr(exc, "detail", None)
    if isinstance(detail, list):
        parts = []
        for item in detail[:3]:
            loc = ".".join(str(p) for p in getattr(item, "loc", []) or [])
            parts.append(f"{loc}: {getattr(item, 'msg', item)}")
        return "; ".join(parts)
    return str(detail)
