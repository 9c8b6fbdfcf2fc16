"""Verification of the OIDC token Pub/Sub attaches to push requests.

In production the platform checks the token (``--no-allow-unauthenticated``). Deployments that
cannot do that set ``RELAY_PUSH_AUDIENCE`` and the relay checks the token itself with
:class:`PushAuthenticator`.

A push request carries ``Authorization: Bearer <JWT>``: an RS256-signed Google ID token with
``iss`` ``https://accounts.google.com``, ``aud`` the push endpoint (or the configured audience)
and ``email`` the push service account.

google-auth verifies the token (:func:`google.oauth2.id_token.verify_token`): the signature
against Google's certificate for the token's ``kid``, ``iat`` and ``exp`` within the clock skew,
and ``aud``. It takes the verifier from its own table (RS256, ES256, ES384), so ``alg: none`` and
HS256 keyed with the public certificate are refused, and Google's certificates are RSA only.
What it leaves to us: the issuer, ``email_verified`` and the push service account.

Google's certificates come through a CacheControl session: one fetch per ``Cache-Control:
max-age`` of Google's answer (hours). A token naming a key id the cached certificates lack (a key
rotation) fetches them again past the cache, at most once per ``UNKNOWN_KID_REFETCH_SECONDS``.

Two error classes, deliberately unrelated so that one ``except`` cannot swallow the other:

* :class:`PushAuthError`: the caller's token is not acceptable (answer 401). The message names
  the failed check from a fixed vocabulary and never contains the token.
* :class:`PushAuthUnavailable`: the token could not be checked because Google's signing
  certificates could not be fetched (answer 503 so Pub/Sub redelivers).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import cachecontrol
import requests
from google.auth import exceptions as google_exceptions
from google.auth import transport
from google.auth.transport import requests as google_requests
from google.oauth2 import id_token

from relay.core.errors import PushAuthError, PushAuthUnavailable
from relay.core.ids import ANY_ACCOUNT

__all__ = [
    "GOOGLE_CERTS_URL",
    "GOOGLE_ISSUERS",
    "UNKNOWN_KID_REFETCH_SECONDS",
    "Claims",
    "PushAuthenticator",
]

logger = logging.getLogger(__name__)

GOOGLE_CERTS_URL: Final = "https://www.googleapis.com/oauth2/v1/certs"
# A tuple: ``in`` compares with ==, so a list or object claim is refused instead of raising.
GOOGLE_ISSUERS: Final = ("https://accounts.google.com", "accounts.google.com")
#: A token with an unknown ``kid`` fetches the certificates past the cache at most this often.
UNKNOWN_KID_REFETCH_SECONDS: Final = 30.0
#: Google ID tokens are about 1 KiB; anything far larger is not one.
MAX_TOKEN_LENGTH: Final = 16 * 1024

# google-auth's messages quote the token and its claims, so only their opening words are read,
# to name the failed check; anything else is "token invalid".
_UNKNOWN_KID: Final = "Certificate for key id"
_REASONS: Final = (
    ("Token expired", "token expired"),
    ("Token used too early", "token used before issued"),
    ("Token has wrong audience", "token audience does not match"),
    ("Token does not contain required claim", "token has no iat or exp claim"),
    ("Could not verify token signature", "token signature invalid"),
    ("Unsupported signature algorithm", "unsupported algorithm"),
)


class _UnknownKeyId(PushAuthError):
    """The token names a key id that the certificates at hand do not hold."""


@dataclass(frozen=True, slots=True)
class Claims:
    """The verified identity of a push request, for logging."""

    email: str
    subject: str


class PushAuthenticator:
    """Checks the ``Authorization`` header of a Pub/Sub push request.

    Thread-safe: one instance serves all request threads and shares one certificate cache.
    """

    def __init__(
        self,
        *,
        audience: str,
        allowed_service_accounts: frozenset[str],
        certs_url: str = GOOGLE_CERTS_URL,
        clock_skew_seconds: int = 10,
        http_timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Configure the checks.

        ``allowed_service_accounts``: the push service accounts let in, or ``{"*"}`` for any
        verified Google-signed account. Empty is refused: anyone can get a Google ID token for
        any audience, so letting every account in must be said on purpose. ``clock`` paces the
        unknown-kid refetches only (token times use the wall clock).
        """
        if not allowed_service_accounts:
            raise ValueError(
                f"allowed_service_accounts must name accounts, or be {{{ANY_ACCOUNT!r}}} for any"
            )
        self._audience = audience
        allowed = frozenset(account.strip().lower() for account in allowed_service_accounts)
        self._allowed: frozenset[str] | None = None if ANY_ACCOUNT in allowed else allowed
        self._certs_url = certs_url
        self._skew = clock_skew_seconds
        self._clock = clock
        self._session = cachecontrol.CacheControl(requests.Session())
        google_transport = google_requests.Request(session=self._session)
        self._cached = _CertificateFetch(google_transport, http_timeout, {})
        # A no-cache request skips the cached answer and stores the new one in its place.
        self._past_cache = _CertificateFetch(
            google_transport, http_timeout, {"Cache-Control": "no-cache"}
        )
        self._refetch_lock = threading.Lock()
        self._last_refetch_at: float | None = None

    def close(self) -> None:
        """Release the HTTP session used to fetch certificates."""
        self._session.close()

    def verify(self, authorization: str | None) -> Claims:
        """Verify an ``Authorization`` header value and return the token's claims.

        Raises :class:`PushAuthError` when the token is not acceptable and
        :class:`PushAuthUnavailable` when Google's certificates cannot be fetched.
        """
        token = _bearer_token(authorization)
        try:
            payload = self._decode(token, self._cached)
        except _UnknownKeyId:
            # One refetch at a time; requests that wait here for it then find a rotated key in
            # the cache instead of being refused while it is under way.
            with self._refetch_lock:
                now = self._clock()
                last = self._last_refetch_at
                if last is not None and now - last < UNKNOWN_KID_REFETCH_SECONDS:
                    payload = self._decode(token, self._cached)
                else:
                    self._last_refetch_at = now
                    logger.info("a push token names an unknown key id: refetching certificates")
                    payload = self._decode(token, self._past_cache)
        return self._check_claims(payload)

    def _decode(self, token: str, fetch: _CertificateFetch) -> Mapping[str, Any]:
        try:
            return id_token.verify_token(
                token,
                fetch,
                audience=self._audience,
                certs_url=self._certs_url,
                clock_skew_in_seconds=self._skew,
            )
        except (google_exceptions.GoogleAuthError, ValueError, TypeError, RecursionError) as exc:
            # Never chained: the original message may quote the token.
            raise _refusal(exc) from None

    def _check_claims(self, payload: Mapping[str, Any]) -> Claims:
        if payload.get("iss") not in GOOGLE_ISSUERS:
            raise PushAuthError("token issuer not accepted")
        if payload.get("email_verified") is not True:
            raise PushAuthError("email not verified")
        email = payload.get("email")
        if not isinstance(email, str) or not email:
            raise PushAuthError("token has no email")
        if self._allowed is not None and email.lower() not in self._allowed:
            raise PushAuthError("service account not allowed")
        subject = payload.get("sub")
        return Claims(email=email, subject=subject if isinstance(subject, str) else "")


class _CertificateFetch(transport.Request):
    """google-auth's certificate fetch with our timeout (google-auth's is 120 s) and headers.

    Any answer that is not a certificate document becomes :class:`PushAuthUnavailable`, which
    passes through google-auth untouched: a broken answer is ours to fix, not the caller's.
    """

    def __init__(
        self, google_transport: google_requests.Request, timeout: float, headers: dict[str, str]
    ) -> None:
        self._transport = google_transport
        self._timeout = timeout
        self._headers = headers

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> transport.Response:
        try:
            response: transport.Response = self._transport(
                url, method=method, headers=self._headers, timeout=self._timeout
            )
        except google_exceptions.TransportError as exc:
            reason = type(exc.__cause__ or exc).__name__
            raise PushAuthUnavailable(f"could not fetch Google's certificates ({reason})") from None
        if response.status != 200:
            raise PushAuthUnavailable(
                f"could not fetch Google's certificates (HTTP {response.status})"
            )
        if not _is_certificate_document(response.data):
            raise PushAuthUnavailable("Google's certificates answer is not a certificate document")
        return response


def _is_certificate_document(data: bytes) -> bool:
    """``{"kid": "<PEM certificate>", ...}``, Google's v1 format.

    A JWK set (``{"keys": [...]}``) is refused too: google-auth would hand it to PyJWT, which is
    not installed and would not apply the clock skew.
    """
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        return False
    return (
        isinstance(document, dict)
        and bool(document)
        and all(isinstance(pem, str) for pem in document.values())
    )


def _refusal(exc: Exception) -> PushAuthError:
    message = str(exc) if isinstance(exc, google_exceptions.GoogleAuthError) else ""
    if message.startswith(_UNKNOWN_KID):
        return _UnknownKeyId("token key id unknown")
    for opening, reason in _REASONS:
        if message.startswith(opening):
            return PushAuthError(reason)
    return PushAuthError("token invalid")


def _bearer_token(authorization: str | None) -> str:
    if authorization is None or not authorization.strip():
        raise PushAuthError("missing bearer token")
    parts = authorization.strip().split(None, 1)
    if parts[0].lower() != "bearer":
        raise PushAuthError("authorization scheme is not Bearer")
    if len(parts) < 2 or not parts[1].strip():
        raise PushAuthError("missing bearer token")
    token = parts[1].strip()
    if len(token) > MAX_TOKEN_LENGTH:
        raise PushAuthError("token too large")
    return token
