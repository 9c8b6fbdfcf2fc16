"""Verification of the OIDC token Pub/Sub attaches to push requests.

In production the platform checks the token (``--no-allow-unauthenticated``). Deployments that
cannot do that set ``RELAY_PUSH_AUDIENCE`` and the relay checks the token itself with
:class:`PushAuthenticator`.

A push request carries ``Authorization: Bearer <JWT>``: an RS256-signed Google ID token with
``iss`` ``https://accounts.google.com``, ``aud`` the push endpoint (or the configured audience)
and ``email`` the push service account.

Two error classes, deliberately unrelated so that one ``except`` cannot swallow the other:

* :class:`PushAuthError`: the caller's token is not acceptable (answer 401/403). The message
  names the failed check and is safe to return to the caller: it never contains the token.
* :class:`PushAuthUnavailable`: we could not check the token because Google's signing
  certificates could not be fetched (answer 503 so Pub/Sub retries).

Google's certificates are cached for the ``Cache-Control: max-age`` of the certificate response,
refetched when they expire or when a token names an unknown key id (at most once per
``UNKNOWN_KID_REFETCH_SECONDS``), and kept for ``STALE_IF_ERROR_SECONDS`` past their expiry when
a refresh fails. The signature and the ``iat``/``exp``/``aud`` checks are google-auth's
(:func:`google.auth.jwt.decode`); the header is checked before that, so only RS256 is accepted.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import crypt as google_crypt
from google.auth import exceptions as google_exceptions
from google.auth import jwt as google_jwt

from relay.core.errors import PushAuthError, PushAuthUnavailable
from relay.settings import ANY_ACCOUNT

__all__ = [
    "DEFAULT_ISSUERS",
    "GOOGLE_CERTS_URL",
    "Claims",
    "PushAuthError",
    "PushAuthUnavailable",
    "PushAuthenticator",
]

logger = logging.getLogger(__name__)

GOOGLE_CERTS_URL: Final = "https://www.googleapis.com/oauth2/v1/certs"
DEFAULT_ISSUERS: Final = frozenset({"https://accounts.google.com", "accounts.google.com"})

#: Lifetime of the certificates when the response has no usable ``max-age``.
DEFAULT_CERTS_TTL_SECONDS: Final = 3600.0
#: Bounds applied to ``max-age``: a tiny or zero max-age must not turn into a fetch per request.
MIN_CERTS_TTL_SECONDS: Final = 60.0
MAX_CERTS_TTL_SECONDS: Final = 86400.0
#: A token with an unknown ``kid`` triggers a refetch at most this often.
UNKNOWN_KID_REFETCH_SECONDS: Final = 30.0
#: After a failed fetch, no new attempt for this long (requests fail fast instead of queueing
#: behind a fetch that will probably time out again).
FETCH_FAILURE_BACKOFF_SECONDS: Final = 5.0
#: Expired certificates stay usable this long when refreshing them fails.
STALE_IF_ERROR_SECONDS: Final = 3600.0
#: Google ID tokens are about 1 KiB; anything far larger is not one.
MAX_TOKEN_LENGTH: Final = 16 * 1024
#: The certificate document is a few KiB.
MAX_CERTS_RESPONSE_BYTES: Final = 256 * 1024

_ACCEPTED_ALGORITHM: Final = "RS256"
_B64URL_SEGMENT = re.compile(r"[A-Za-z0-9_-]+", re.ASCII)
_PRINTABLE_ALG = re.compile(r"[A-Za-z0-9+_.-]{1,32}", re.ASCII)
_MAX_AGE = re.compile(r"\s*max-age\s*=\s*\"?(\d{1,12})\"?\s*", re.ASCII | re.IGNORECASE)
# JSON numbers for iat/exp must be plausible Unix times (up to 9999-12-31).
_MAX_TIMESTAMP: Final = 253402300799


@dataclass(frozen=True, slots=True)
class Claims:
    """The verified identity of a push request, for logging."""

    email: str
    subject: str
    audience: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class _SigningKey:
    pem: str
    verifier: google_crypt.RSAVerifier


@dataclass(frozen=True, slots=True)
class _CertCache:
    keys: Mapping[str, _SigningKey]
    fresh_until: float


class _FetchError(Exception):
    """Fetching or parsing the certificate document failed (message: a short, safe reason)."""


@dataclass(frozen=True, slots=True)
class _ParsedToken:
    kid: str
    payload: Mapping[str, Any]
    signed_section: bytes
    signature: bytes
    issued_at: float
    expires_at: float


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
        issuers: frozenset[str] = DEFAULT_ISSUERS,
        clock_skew_seconds: int = 10,
        http_timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Configure the checks.

        ``allowed_service_accounts``: the push service accounts let in, or ``{"*"}`` for any
        verified Google-signed account. Empty is refused: anyone can get a Google ID token for
        any audience, so letting every account in must be said on purpose. ``clock`` is a
        monotonic clock for the certificate cache only (token times use the wall clock); tests
        replace it.
        """
        if not isinstance(audience, str) or not audience.strip():
            raise ValueError("audience must be a non-empty string")
        if not allowed_service_accounts:
            raise ValueError(
                f"allowed_service_accounts must name accounts, or be {{{ANY_ACCOUNT!r}}} for any"
            )
        if not issuers:
            raise ValueError("issuers must not be empty")
        if clock_skew_seconds < 0:
            raise ValueError("clock_skew_seconds must be >= 0")
        if not http_timeout > 0:
            raise ValueError("http_timeout must be > 0")
        self._audience = audience
        allowed = frozenset(account.strip().lower() for account in allowed_service_accounts)
        # None: any account.
        self._allowed: frozenset[str] | None = None if ANY_ACCOUNT in allowed else allowed
        self._certs_url = certs_url
        self._issuers = frozenset(issuers)
        self._skew = clock_skew_seconds
        self._http_timeout = http_timeout
        self._clock = clock

        self._lock = threading.Lock()
        self._session = requests.Session()
        self._session.headers["Accept"] = "application/json"
        # Written only under the lock; read without it (a single attribute read is atomic).
        self._cache: _CertCache | None = None
        self._last_failure_at: float | None = None
        self._last_kid_refetch_at: float | None = None

    @property
    def audience(self) -> str:
        return self._audience

    def close(self) -> None:
        """Release the HTTP session used to fetch certificates."""
        self._session.close()

    def verify(self, authorization: str | None) -> Claims:
        """Verify an ``Authorization`` header value and return the token's claims.

        Raises :class:`PushAuthError` when the token is not acceptable and
        :class:`PushAuthUnavailable` when Google's certificates cannot be fetched.
        """
        token = _bearer_token(authorization)
        parsed = _parse_token(token)
        key = self._signing_key(parsed.kid)
        try:
            payload = google_jwt.decode(  # type: ignore[no-untyped-call]
                token,
                certs={parsed.kid: key.pem},
                verify=True,
                audience=self._audience,
                clock_skew_in_seconds=self._skew,
            )
        except (google_exceptions.GoogleAuthError, ValueError, TypeError, KeyError):
            # google-auth's messages may quote the token: never chain or repeat them.
            raise PushAuthError(self._explain_decode_failure(parsed, key)) from None
        return self._check_claims(payload, parsed)

    # ---- claims -------------------------------------------------------------------------------

    def _explain_decode_failure(self, parsed: _ParsedToken, key: _SigningKey) -> str:
        """Name the check google-auth's decode failed, re-doing the checks one by one."""
        if not key.verifier.verify(parsed.signed_section, parsed.signature):
            return "token signature invalid"
        now = time.time()
        if now < parsed.issued_at - self._skew:
            return "token used before issued"
        if parsed.expires_at + self._skew < now:
            return "token expired"
        if parsed.payload.get("aud") != self._audience:
            return "token audience does not match"
        return "token invalid"

    def _check_claims(self, payload: Mapping[str, Any], parsed: _ParsedToken) -> Claims:
        if payload.get("iss") not in self._issuers:
            raise PushAuthError("token issuer not accepted")
        if payload.get("aud") != self._audience:  # decode checked it already; keep it explicit
            raise PushAuthError("token audience does not match")
        if payload.get("email_verified") is not True:
            raise PushAuthError("email not verified")
        email = payload.get("email")
        if not isinstance(email, str) or not email:
            raise PushAuthError("token has no email")
        if self._allowed is not None and email.lower() not in self._allowed:
            raise PushAuthError("service account not allowed")
        subject = payload.get("sub")
        return Claims(
            email=email,
            subject=subject if isinstance(subject, str) else "",
            audience=self._audience,
            expires_at=datetime.fromtimestamp(parsed.expires_at, tz=UTC),
        )

    # ---- certificates -------------------------------------------------------------------------

    def _signing_key(self, kid: str) -> _SigningKey:
        cache = self._cache
        if cache is not None and self._clock() < cache.fresh_until:
            key = cache.keys.get(kid)
            if key is not None:
                return key
        with self._lock:
            now = self._clock()
            cache = self._cache
            refreshed = False
            if cache is None or now >= cache.fresh_until:
                cache = self._refresh_locked(now, allow_stale=True)
                refreshed = True  # a second fetch right now would not know more
            key = cache.keys.get(kid)
            if key is None and not refreshed and self._may_refetch_for_unknown_kid(now):
                self._last_kid_refetch_at = now
                cache = self._refresh_locked(now, allow_stale=False)
                key = cache.keys.get(kid)
        if key is None:
            raise PushAuthError("token key id unknown")
        return key

    def _may_refetch_for_unknown_kid(self, now: float) -> bool:
        last = self._last_kid_refetch_at
        return last is None or now - last >= UNKNOWN_KID_REFETCH_SECONDS

    def _refresh_locked(self, now: float, *, allow_stale: bool) -> _CertCache:
        """Fetch the certificates (lock held). Returns the cache to use or raises."""
        stale = self._cache
        usable_stale = (
            stale
            if allow_stale and stale and now < stale.fresh_until + STALE_IF_ERROR_SECONDS
            else None
        )
        last_failure = self._last_failure_at
        if last_failure is not None and now - last_failure < FETCH_FAILURE_BACKOFF_SECONDS:
            if usable_stale is not None:
                return usable_stale
            raise PushAuthUnavailable(
                "Google signing certificates unavailable (a recent fetch failed)"
            )

        try:
            keys, ttl = self._fetch()
        except _FetchError as exc:
            self._last_failure_at = now
            if usable_stale is not None:
                logger.warning(
                    "fetching Google signing certificates failed (%s); using the expired ones",
                    exc,
                )
                return usable_stale
            logger.warning("fetching Google signing certificates failed (%s)", exc)
            raise PushAuthUnavailable(
                f"could not fetch Google signing certificates ({exc})"
            ) from None
        self._last_failure_at = None
        cache = _CertCache(keys=keys, fresh_until=now + ttl)
        self._cache = cache
        logger.info("fetched %d Google signing certificate(s), cached for %.0f s", len(keys), ttl)
        return cache

    def _fetch(self) -> tuple[dict[str, _SigningKey], float]:
        try:
            with self._session.get(
                self._certs_url, timeout=self._http_timeout, stream=True
            ) as response:
                if response.status_code != 200:
                    raise _FetchError(f"HTTP {response.status_code}")
                body = bytearray()
                for chunk in response.iter_content(chunk_size=16 * 1024):
                    body += chunk
                    if len(body) > MAX_CERTS_RESPONSE_BYTES:
                        raise _FetchError("response too large")
                ttl = _certs_ttl(response.headers)
        except requests.RequestException as exc:
            raise _FetchError(type(exc).__name__) from None
        return _parse_certs(bytes(body)), ttl


# ---- helpers ----------------------------------------------------------------------------------


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


def _decode_segment(segment: str) -> object:
    """Decode one base64url JSON segment exactly as google-auth will (strict charset)."""
    if not _B64URL_SEGMENT.fullmatch(segment) or len(segment) % 4 == 1:
        raise PushAuthError("malformed token")
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        return json.loads(raw.decode("utf-8"))
    except (ValueError, binascii.Error, RecursionError):
        raise PushAuthError("malformed token") from None


def _timestamp_claim(payload: Mapping[str, Any], name: str) -> float:
    if name not in payload:
        raise PushAuthError(f"token has no {name} claim")
    value = payload[name]
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 <= value <= _MAX_TIMESTAMP
    ):
        raise PushAuthError(f"token {name} claim is not a valid time")
    return float(value)


def _parse_token(token: str) -> _ParsedToken:
    """Structural checks before any cryptography: three segments, JSON header, RS256, kid."""
    segments = token.split(".")
    if len(segments) != 3:
        raise PushAuthError("malformed token")
    encoded_header, encoded_payload, encoded_signature = segments

    header = _decode_segment(encoded_header)
    if not isinstance(header, dict):
        raise PushAuthError("malformed token")
    alg = header.get("alg")
    if alg != _ACCEPTED_ALGORITHM:
        if isinstance(alg, str) and _PRINTABLE_ALG.fullmatch(alg):
            raise PushAuthError(f"unsupported algorithm {alg}")
        raise PushAuthError("unsupported algorithm")
    if "crit" in header:
        raise PushAuthError("unsupported token header")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid or len(kid) > 256:
        raise PushAuthError("token has no key id")

    payload = _decode_segment(encoded_payload)
    if not isinstance(payload, dict):
        raise PushAuthError("malformed token")
    if not _B64URL_SEGMENT.fullmatch(encoded_signature) or len(encoded_signature) % 4 == 1:
        raise PushAuthError("malformed token")
    signature = base64.urlsafe_b64decode(encoded_signature + "=" * (-len(encoded_signature) % 4))

    return _ParsedToken(
        kid=kid,
        payload=payload,
        signed_section=f"{encoded_header}.{encoded_payload}".encode("ascii"),
        signature=signature,
        issued_at=_timestamp_claim(payload, "iat"),
        expires_at=_timestamp_claim(payload, "exp"),
    )


def _certs_ttl(headers: Mapping[str, str]) -> float:
    """Freshness lifetime from ``Cache-Control: max-age`` minus ``Age``, clamped."""
    max_age: float | None = None
    for directive in headers.get("Cache-Control", "").split(","):
        match = _MAX_AGE.fullmatch(directive)
        if match:
            max_age = float(match.group(1))
            break
    if max_age is None:
        return DEFAULT_CERTS_TTL_SECONDS
    age_header = headers.get("Age", "").strip()
    if age_header.isdigit() and len(age_header) <= 12:
        max_age -= float(age_header)
    return min(max(max_age, MIN_CERTS_TTL_SECONDS), MAX_CERTS_TTL_SECONDS)


def _parse_certs(body: bytes) -> dict[str, _SigningKey]:
    """Parse ``{"kid": "<PEM certificate>"}``; keep the RSA ones, fail if none is usable."""
    try:
        document = json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError):
        raise _FetchError("response is not JSON") from None
    if not isinstance(document, dict):
        raise _FetchError("response is not a JSON object")
    keys: dict[str, _SigningKey] = {}
    for kid, pem in document.items():
        if not isinstance(pem, str) or not _is_rsa_pem(pem):
            logger.warning("ignoring an unusable Google signing certificate (kid %r)", kid[:64])
            continue
        verifier = google_crypt.RSAVerifier.from_string(pem)  # type: ignore[no-untyped-call]
        keys[kid] = _SigningKey(pem=pem, verifier=verifier)
    if not keys:
        raise _FetchError("response holds no usable RSA certificate")
    return keys


def _is_rsa_pem(pem: str) -> bool:
    data = pem.encode("utf-8")
    public_key: object
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            public_key = x509.load_pem_x509_certificate(data).public_key()
        else:
            public_key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        return False
    return isinstance(public_key, rsa.RSAPublicKey)
