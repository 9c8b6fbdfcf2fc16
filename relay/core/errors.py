"""The relay's own errors: one root, so that a caller can tell the relay's refusals from bugs.

    RelayError
    ├── InvalidEvent              an event no retry can deliver (answered 4xx, or parked)
    │   └── PayloadTooLarge       its message is over Svix's size limit (413)
    ├── MalformedRequest          a request the relay cannot read at all (400)
    ├── RequestTooLarge           a request over a size or count limit (413)
    ├── SettingsError             the environment holds no usable configuration (no start)
    ├── SendFailure               Svix did not take a message (`reason` is safe to log)
    │   ├── RateLimited           429, with Svix's Retry-After when it sent one
    │   ├── TransientFailure      5xx, 408/423/425, timeouts, lost connections: retry
    │   ├── ServiceRefused        401/403/404: the deployment, not the message (503)
    │   │   └── NotSvixAnswer     a redirect or an answer in no Svix shape: SVIX_SERVER_URL
    │   └── PermanentFailure      Svix refuses the message as it is
    ├── ParkingFailed             a poison event could not be parked (503, so it is kept)
    ├── LookupFailed              Svix could not say whether it holds a message
    ├── SvixListingError          Svix would not list an application's messages
    ├── SvixEventTypeError        Svix would not list, create or change an event type
    ├── PushAuthError             a push request's token is not acceptable (401)
    ├── PushAuthUnavailable       the token cannot be checked now (503)
    └── (private to their adapters: http11's ConnectionLost, ResponseTimeout and
         ProtocolError; the Svix answers' Conflict; the strict JSON decoder's NotJson and
         TooManyItems; the CloudEvent entry point's RedeliveryNeeded)

Strategy: the classes that cross a boundary live here, in the core, so that the delivery
service can catch a sender's failures without importing the Svix adapter that raises them.
"""

from __future__ import annotations


class RelayError(Exception):
    """The root of every error the relay raises on purpose."""


class InvalidEvent(RelayError):
    """An event that no retry can make deliverable; the message says why."""


class PayloadTooLarge(InvalidEvent):
    """The public payload is over Svix's size limit."""


class MalformedRequest(RelayError):
    """The request is not something the relay can read; answered 400."""


class RequestTooLarge(RelayError):
    """The request is over a size limit; answered 413."""


class SettingsError(RelayError):
    """The environment does not hold a usable configuration; the message names each bad variable."""


class SendFailure(RelayError):
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


class ParkingFailed(RelayError):
    """The event could not be parked; it must be nacked so that it is not lost."""


class LookupFailed(RelayError):
    """Svix could not say whether it holds a message (5xx, 401, a lost connection, an answer
    that is not Svix's): unknown, which is neither found nor missing."""


class SvixListingError(RelayError):
    """Svix would not list an application's messages; the message says why."""


class SvixEventTypeError(RelayError):
    """Svix would not list, create or change an event type (the sync); the message says why."""


class PushAuthError(RelayError):
    """The caller's token is not acceptable (401); the message names the failed check and never
    holds the token."""


class PushAuthUnavailable(RelayError):
    """The token could not be checked: Google's signing certificates are unreachable (503)."""
