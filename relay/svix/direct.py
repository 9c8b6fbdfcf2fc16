"""The default sender: Svix's wire format over a plain keep-alive HTTP connection per thread.

It posts the serialised `MessageIn` and reads the answer with a mirror of `MessageOut`, without
importing the SDK (some 260 pydantic models: about a quarter of a second of cold start). The
benchmark showed the SDK's HTTP layer (httpx) costing more CPU per event than the whole rest of
the relay; see NOTES.md for the figures. tests/test_sender_contract.py holds it to the SDK.
"""

from __future__ import annotations

import json
import random
import ssl
import threading
import urllib.parse
from typing import TypeGuard

from relay.core.errors import TransientFailure
from relay.core.messages import OutgoingMessage
from relay.delivery.ports import Accepted, EventTypeState
from relay.svix.answers import (
    SVIX_SDK_VERSION,
    Conflict,
    created_message_id,
    event_type_created,
    event_type_state,
    failure_for,
    found_message_id,
    look_up_failure,
    not_a_message,
    read_error,
    region_url,
    unconfirmed_conflict,
)
from relay.svix.http11 import Http11Connection
from relay.svix.wire import ConnectionLost, ProtocolError, Response, ResponseTimeout


class DirectSvixSender:
    """POST /api/v1/app/{app}/msg with the serialised MessageIn, over one keep-alive connection
    per thread (relay/svix/http11.py), following no redirect; the answer is read as MessageOut."""

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

    def find(self, message: OutgoingMessage) -> Accepted | None:
        """Looks the message up by its eventId before creating it (an event that may be older
        than Svix's dedup windows). A 404 in Svix's shape is "not there"; any other failure
        means what it means for a create (429, 5xx, a deployment problem), never the message's
        fault."""
        answer = self._look_up(message)
        if 200 <= answer.status < 300:
            found = found_message_id(answer.body, message.svix_event_id)
            if found is None:
                not_a_message(answer.status)
            return Accepted(found, already_existed=True)
        if answer.status == 404 and read_error(404, answer.body)[1]:
            return None
        look_up_failure(answer.status, answer.body, answer.headers)

    def event_type_state(self, name: str) -> EventTypeState:
        target = f"{self._prefix}/api/v1/event-type/{urllib.parse.quote(name, safe='')}"
        answer = self._exchange("GET", target, {**self._headers}, b"")
        return event_type_state(answer.status, answer.body, answer.headers)

    def create_event_type(self, name: str, *, description: str, group: str | None) -> None:
        fields = {"name": name, "description": description}
        if group:
            fields["groupName"] = group
        body = json.dumps(fields).encode()
        target = f"{self._prefix}/api/v1/event-type"
        answer = self._exchange("POST", target, {**self._headers}, body)
        event_type_created(answer.status, answer.body, answer.headers)

    def _existing(self, message: OutgoingMessage, conflict: str) -> Accepted:
        """After a 409: the message with our eventId, or a retry if Svix does not hold one."""
        answer = self._look_up(message)
        ok = 200 <= answer.status < 300
        found = found_message_id(answer.body, message.svix_event_id) if ok else None
        if found is None:
            unconfirmed_conflict(conflict, message.svix_event_id, answer.status)
        return Accepted(found, already_existed=True)

    def _look_up(self, message: OutgoingMessage) -> Response:
        app = urllib.parse.quote(message.app_id, safe="")
        event = urllib.parse.quote(message.svix_event_id, safe="")
        # Without the payload: Svix stores payloads nested deeper than its answers can be read.
        target = f"{self._prefix}/api/v1/app/{app}/msg/{event}?with_content=false"
        return self._exchange("GET", target, {**self._headers}, b"")

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
