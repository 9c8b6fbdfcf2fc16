"""Sending one message to Svix, one attempt at a time, and saying what the answer means.

Two senders share the svix SDK's models (`MessageIn` out, `MessageOut` back) as the contract:

- `DirectSvixSender` (the default) sends the SDK's serialised `MessageIn` over a plain keep-alive
  HTTP connection per thread. The benchmark showed the SDK's HTTP layer (httpx) costing more CPU
  per event than the whole rest of the relay; see NOTES.md for the figures.
- `SdkSvixSender` calls `svix.message.create` itself (RELAY_SVIX_CLIENT=sdk), for a deployment
  that needs what only the SDK's HTTP layer has (proxy support), at the price of that CPU.

Retrying is the delivery layer's job: the SDK's own retries are switched off, because they ignore
429 and Retry-After and would spend the time budget behind our back.
"""

from __future__ import annotations

import json
import random
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, NoReturn, Protocol

from relay.http11 import ConnectionLost, Http11Connection, ProtocolError, Response, ResponseTimeout
from relay.messages import OutgoingMessage

if TYPE_CHECKING:
    import httpx
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
    so the message is kept (503), and someone must fix the deployment."""


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


class Conflict(Exception):
    """Svix answered 409. Only the sender can tell whether it was about our eventId (the message
    is there: success) or something else, such as two requests creating the application."""


def failure_for(status: int, detail: str, retry_after: str | None) -> NoReturn:
    """What a non-2xx answer means; it always raises (Conflict for a 409)."""
    if status == 409:
        raise Conflict(detail)
    if status == 429:
        raise RateLimited(
            f"Svix rate limit (429): {detail}", retry_after=retry_after_seconds(retry_after)
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
    if status in TRANSIENT_STATUSES or status >= 500:
        raise TransientFailure(f"Svix answered {status}: {detail}", status=status)
    if status == 422:
        raise PermanentFailure(f"Svix rejected the message as invalid (422): {detail}", status=422)
    raise PermanentFailure(f"Svix rejected the message ({status}): {detail}", status=status)


def unconfirmed_conflict(conflict: str, svix_event_id: str, lookup_status: int) -> NoReturn:
    """A 409 whose message could not be found by its eventId: not a delivery, so a retry."""
    if lookup_status == 404:
        raise TransientFailure(
            f"Svix answered 409 ({conflict}) but holds no message with eventId "
            f"{svix_event_id}: retrying"
        )
    raise TransientFailure(
        f"Svix answered 409 ({conflict}); looking the message up answered {lookup_status}",
        status=lookup_status,
    )


TRANSIENT_STATUSES = frozenset({408, 423, 425})


def unreadable_answer(status: int | None, retry_after: str | None) -> NoReturn:
    """An answer whose body is not JSON: an HTML page from a proxy or load balancer, most often.
    The status still says what happened, except on a 2xx, which a retry will replay."""
    if status is None or status >= 500 or status in TRANSIENT_STATUSES or 200 <= status < 300:
        raise TransientFailure(
            f"Svix answered {status} with a body that is not JSON", status=status
        ) from None
    failure_for(status, "answer body is not JSON", retry_after)


def error_detail(body: bytes) -> str | None:
    """Svix's error body in a line: `code: detail`, or the 422 list; None when it is not JSON."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(document, dict):
        return str(document)[:200]
    detail = document.get("detail")
    if isinstance(detail, list):
        parts = []
        for item in detail[:3]:
            if isinstance(item, dict):
                loc = ".".join(str(p) for p in item.get("loc") or [])
                parts.append(f"{loc}: {item.get('msg', '')}")
        return "; ".join(parts)
    code = document.get("code")
    return f"{code}: {detail}" if code else str(detail)[:200]


def region_url(token: str) -> str:
    """Svix's API for the token's region, as the SDK picks it (tested against the SDK)."""
    region = token.rsplit(".", 1)[-1]
    if region in ("us", "eu", "in", "ca", "au"):
        return f"https://api.{region}.svix.com"
    return "https://api.svix.com"


class DirectSvixSender:
    """POST /api/v1/app/{app}/msg with the SDK's serialised MessageIn, over one keep-alive
    connection per thread (relay/http11.py); the answer is read back as the SDK's MessageOut."""

    def __init__(
        self,
        *,
        token: str,
        server_url: str | None,
        timeout_seconds: float,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        from svix import __version__ as svix_version

        base = urllib.parse.urlsplit(server_url or region_url(token))
        if base.scheme not in ("http", "https") or not base.hostname:
            raise ValueError(f"Svix server URL must be http(s)://host[:port], got {base.geturl()}")
        https = base.scheme == "https"
        self._host = base.hostname
        self._port = base.port or (443 if https else 80)
        self._prefix = base.path.rstrip("/")
        self._timeout = timeout_seconds
        self._tls = (tls or ssl.create_default_context(cafile=_ca_bundle())) if https else None
        self._headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"gigs-svix-relay svix-libs/{svix_version}/python",
        }
        self._local = threading.local()

    def send(self, message: OutgoingMessage) -> Accepted:
        from svix.api import MessageOut

        app = urllib.parse.quote(message.app_id, safe="")
        target = f"{self._prefix}/api/v1/app/{app}/msg?with_content=false"
        headers = {
            **self._headers,
            "idempotency-key": message.idempotency_key,
            "svix-req-id": str(random.getrandbits(64)),
        }
        answer = self._exchange("POST", target, headers, message.body)
        status = answer.status
        if 200 <= status < 300:
            try:
                created = MessageOut.model_validate_json(answer.body)
            except ValueError:
                # Svix took it; the retry with the same key replays the answer.
                raise TransientFailure(
                    f"Svix answered {status} with a body that is not a message", status=status
                ) from None
            return Accepted(svix_message_id=created.id)
        try:
            retry_after = answer.headers.get("retry-after")
            detail = error_detail(answer.body)
            if detail is None:
                unreadable_answer(status, retry_after)
            failure_for(status, detail, retry_after)
        except Conflict as conflict:
            return self._existing(message, str(conflict))

    def _existing(self, message: OutgoingMessage, conflict: str) -> Accepted:
        """After a 409: the message with our eventId, or a retry if Svix does not hold one."""
        from svix.api import MessageOut

        app = urllib.parse.quote(message.app_id, safe="")
        event = urllib.parse.quote(message.svix_event_id, safe="")
        answer = self._exchange(
            "GET", f"{self._prefix}/api/v1/app/{app}/msg/{event}", {**self._headers}, b""
        )
        if 200 <= answer.status < 300:
            try:
                return Accepted(
                    MessageOut.model_validate_json(answer.body).id, already_existed=True
                )
            except ValueError:
                pass
        unconfirmed_conflict(conflict, message.svix_event_id, answer.status)

    def _exchange(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Response:
        connection = self._connection()
        for first_try in (True, False):
            reused = connection.is_open
            try:
                return connection.request(method, target, headers, body)
            except ConnectionLost as exc:
                # A keep-alive connection the server had already closed: one fresh try at once
                # (the idempotency key makes a second send harmless even if the first arrived).
                if first_try and reused and exc.before_response:
                    continue
                raise TransientFailure(f"connection to Svix failed ({exc})") from None
            except ResponseTimeout:
                raise TransientFailure("Svix did not answer in time") from None
            except ProtocolError as exc:
                raise TransientFailure(f"Svix's answer could not be read ({exc})") from None
        raise AssertionError("unreachable: the second try returns or raises")

    def _connection(self) -> Http11Connection:
        connection: Http11Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = Http11Connection(
                self._host, self._port, timeout=self._timeout, tls=self._tls
            )
            self._local.connection = connection
        return connection


def _ca_bundle() -> str | None:
    try:
        import certifi
    except ImportError:
        return None
    return str(certifi.where())


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
        self._last_answer.status = response.status_code
        self._last_answer.retry_after = response.headers.get("retry-after")

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
        self._last_answer.status = None
        self._last_answer.retry_after = None
        try:
            # The same MessageIn the mapping serialised, read back into the SDK's model.
            message_in = MessageIn.model_validate_json(message.body)
            created = self._svix.message.create(message.app_id, message_in, options)
        except HTTPValidationError as exc:
            failure_for(422, _validation_detail(exc), None)
        except HttpError as exc:
            failure_for(exc.status_code, f"{exc.code}: {exc.detail}", self._last_answer.retry_after)
        except json.JSONDecodeError:
            unreadable_answer(self._last_answer.status, self._last_answer.retry_after)
        except httpx.TimeoutException:
            raise TransientFailure("Svix did not answer in time") from None
        except httpx.TransportError as exc:
            raise TransientFailure(f"connection to Svix failed ({type(exc).__name__})") from None
        except (KeyError, TypeError, ValueError):
            # A JSON error body of a shape the SDK does not expect, from Svix or a proxy before it.
            status = self._last_answer.status
            if status is None or 200 <= status < 300:
                raise TransientFailure("Svix answered with a body the SDK could not read") from None
            failure_for(status, "error body of an unexpected shape", None)
        return Accepted(svix_message_id=created.id)

    def _existing(self, message: OutgoingMessage, conflict: str) -> Accepted:
        """After a 409: the message with our eventId, or a retry if Svix does not hold one."""
        import httpx
        from svix.exceptions import HttpError

        try:
            found = self._svix.message.get(message.app_id, message.svix_event_id)
        except HttpError as exc:
            unconfirmed_conflict(conflict, message.svix_event_id, exc.status_code)
        except (httpx.HTTPError, ValueError) as exc:
            raise TransientFailure(
                f"Svix answered 409 ({conflict}); looking the message up failed: "
                f"{type(exc).__name__}"
            ) from None
        return Accepted(found.id, already_existed=True)


def _validation_detail(exc: Exception) -> str:
    detail = getattr(exc, "detail", None)
    if isinstance(detail, list):
        parts = []
        for item in detail[:3]:
            loc = ".".join(str(p) for p in getattr(item, "loc", []) or [])
            parts.append(f"{loc}: {getattr(item, 'msg', item)}")
        return "; ".join(parts)
    return str(detail)
