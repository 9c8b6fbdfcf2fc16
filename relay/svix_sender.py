"""Sending one message to Svix, one attempt at a time, and saying what the answer means.

Two senders share the svix SDK's wire format (`MessageIn` out, `MessageOut` back) as the contract:

- `DirectSvixSender` (the default) posts the serialised `MessageIn` over a plain keep-alive
  HTTP connection per thread, and reads the answer with a mirror of `MessageOut`, without
  importing the SDK (some 260 pydantic models: about a quarter of a second of cold start). The
  benchmark showed the SDK's HTTP layer (httpx) costing more CPU per event than the whole rest
  of the relay; see NOTES.md for the figures. tests/test_sender_contract.py holds it to the SDK.
- `SdkSvixSender` calls `svix.message.create` itself (RELAY_SVIX_CLIENT=sdk), for a deployment
  that needs what only the SDK's HTTP layer has (proxy support), at the price of that CPU.

Both judge a failed answer from its status and raw body (`failure_for`), so they agree on it.
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
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, NoReturn, Protocol, TypeGuard

import pydantic
from pydantic.alias_generators import to_camel

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


class NotSvixAnswer(ServiceRefused):
    """Svix's address answered as Svix never does: a redirect, or an error that is not in one of
    Svix's shapes (an HTML page, some other JSON). SVIX_SERVER_URL points somewhere else, and no
    retry of the message can fix that: kept (503), never parked, the reason names the setting."""


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


def failure_for(status: int, body: bytes, headers: Mapping[str, str]) -> NoReturn:
    """What a non-2xx answer means; it always raises (Conflict for a 409). `headers` has
    lower-case names. Only an error in Svix's own shape can blame the message."""
    detail, from_svix = read_error(status, body)
    if status == 409:
        raise Conflict(detail)
    if status == 429:
        retry_after = retry_after_seconds(headers.get("retry-after"))
        raise RateLimited(f"Svix rate limit (429): {detail}", retry_after=retry_after)
    if status in TRANSIENT_STATUSES or status >= 500:
        raise TransientFailure(f"Svix answered {status}: {detail}", status=status)
    if from_svix and status in (401, 403):
        raise ServiceRefused(
            f"Svix refused the relay's credentials ({status}): check SVIX_AUTH_TOKEN",
            status=status,
        )
    if from_svix and status == 404:
        raise ServiceRefused(
            f"Svix does not know the application (404): {detail}; check SVIX_APP_ID",
            status=status,
        )
    if from_svix and status == 422:
        raise PermanentFailure(f"Svix rejected the message as invalid (422): {detail}", status=422)
    if from_svix and status in (400, 413):
        raise PermanentFailure(f"Svix rejected the message ({status}): {detail}", status=status)
    if 300 <= status < 400:
        location = headers.get("location", "")[:200] or "nowhere"
        raise NotSvixAnswer(
            f"Svix's address answered {status}, a redirect to {location}, which the relay does "
            "not follow: set SVIX_SERVER_URL to Svix's API address itself",
            status=status,
        )
    raise NotSvixAnswer(
        f"Svix's address answered {status} with {detail}, an answer Svix never gives: "
        "check SVIX_SERVER_URL",
        status=status,
    )


def read_error(status: int, body: bytes) -> tuple[str, bool]:
    """An error body in a line, and whether it is in Svix's shape for the status: 422
    `{"detail": [{"loc", "msg", "type"}, ...]}`, any other `{"code": str, "detail": ...}`."""
    try:
        document = json.loads(body)
    except ValueError:  # UnicodeDecodeError included
        return "a body that is not JSON", False
    if not isinstance(document, dict):
        return "a JSON body that is not a Svix error", False
    detail = document.get("detail")
    if status == 422:
        if not (isinstance(detail, list) and detail and all(map(_validation_item, detail))):
            return "a JSON body that is not a Svix validation error", False
        return "; ".join(f"{'.'.join(map(str, i['loc']))}: {i['msg']}" for i in detail[:3]), True
    code = document.get("code")
    if not (isinstance(code, str) and code and "detail" in document):
        return "a JSON body that is not a Svix error", False
    return f"{code}: {str(detail)[:200]}", True


def _validation_item(item: object) -> bool:
    return (
        isinstance(item, dict)
        and isinstance(item.get("loc"), list)
        and isinstance(item.get("msg"), str)
        and isinstance(item.get("type"), str)
    )


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

# The SDK whose wire format the direct sender speaks, for its User-Agent (a test pins it to the
# installed SDK; asking importlib.metadata costs milliseconds of cold start).
SVIX_SDK_VERSION = "2.9.1"


class MessageOutFields(pydantic.BaseModel):
    """svix.api.MessageOut's fields and config, so that the direct sender reads an answer as the
    SDK does without importing it (tests/test_sender_contract.py checks the two agree)."""

    model_config = pydantic.ConfigDict(alias_generator=to_camel, populate_by_name=True)

    event_id: str | None = None
    event_type: str
    payload: dict[str, Any]
    channels: list[str] | None = None
    id: str
    timestamp: datetime
    tags: list[str] | None = None
    deliver_at: datetime | None = None


def created_message_id(body: bytes) -> str | None:
    """The message id in a 2xx answer, read as the SDK's MessageOut reads it; None when the body
    is not a message, or names none (an empty id)."""
    try:
        return MessageOutFields.model_validate_json(body).id or None
    except ValueError:
        return None


def not_a_message(status: int) -> NoReturn:
    # Svix took it (or something at its address said so); a retry with the same key replays it.
    raise TransientFailure(
        f"Svix answered {status} with a body that is not a message", status=status
    ) from None


def region_url(token: str) -> str:
    """Svix's API for the token's region, as the SDK picks it (tested against the SDK)."""
    region = token.rsplit(".", 1)[-1]
    if region in ("us", "eu", "in", "ca", "au"):
        return f"https://api.{region}.svix.com"
    return "https://api.svix.com"


class DirectSvixSender:
    """POST /api/v1/app/{app}/msg with the serialised MessageIn, over one keep-alive connection
    per thread (relay/http11.py), following no redirect; the answer is read as MessageOut."""

    def __init__(
        self,
        *,
        token: str,
        server_url: str | None,
        timeout_seconds: float,
        tls: ssl.SSLContext | None = None,
    ) -> None:
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
            "User-Agent": f"gigs-svix-relay svix-libs/{SVIX_SDK_VERSION}/python",
        }
        self._local = threading.local()

    def send(self, message: OutgoingMessage) -> Accepted:
        app = urllib.parse.quote(message.app_id, safe="")
        target = f"{self._prefix}/api/v1/app/{app}/msg?with_content=false"
        headers = {
            **self._headers,
            "idempotency-key": message.idempotency_key,
            "svix-req-id": str(random.getrandbits(64)),
        }
        answer = self._exchange("POST", target, headers, message.body)
        if 200 <= answer.status < 300:
            created = created_message_id(answer.body)
            if created is None:
                not_a_message(answer.status)
            return Accepted(svix_message_id=created)
        try:
            failure_for(answer.status, answer.body, answer.headers)
        except Conflict as conflict:
            return self._existing(message, str(conflict))

    def _existing(self, message: OutgoingMessage, conflict: str) -> Accepted:
        """After a 409: the message with our eventId, or a retry if Svix does not hold one."""
        app = urllib.parse.quote(message.app_id, safe="")
        event = urllib.parse.quote(message.svix_event_id, safe="")
        # Without the payload: Svix stores payloads nested deeper than its answers can be read.
        target = f"{self._prefix}/api/v1/app/{app}/msg/{event}?with_content=false"
        answer = self._exchange("GET", target, {**self._headers}, b"")
        found = created_message_id(answer.body) if 200 <= answer.status < 300 else None
        if found is None:
            unconfirmed_conflict(conflict, message.svix_event_id, answer.status)
        return Accepted(found, already_existed=True)

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
                if _judged_by_status(exc.head):
                    return exc.head
                raise TransientFailure(f"connection to Svix failed ({exc})") from None
            except ResponseTimeout as exc:
                if _judged_by_status(exc.head):
                    return exc.head
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


def _judged_by_status(head: Response | None) -> TypeGuard[Response]:
    """A failed answer whose body never came whole still says what it is by its status (a
    redirect, a 429, a 503); only a 2xx needs its body."""
    return head is not None and not 200 <= head.status < 300


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
        return Accepted(found.id, already_existed=True)
