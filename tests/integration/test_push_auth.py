"""Tests for relay.push_auth: OIDC push-token verification against a local certificate server."""

from __future__ import annotations

import hashlib
import hmac
import socket
import time
import traceback
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from google.auth import jwt as google_jwt
from google.auth.crypt import es
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay.core.errors import PushAuthError, PushAuthUnavailable
from relay.pubsub.push_auth import PushAuthenticator
from tests.support.fakes import FakeTime, private_key_pem
from tests.support.push_tokens import (
    _DROP,
    ACCOUNT,
    AUDIENCE,
    KID,
    CertServer,
    KeyPair,
    _b64,
    _claims,
    _segment,
    _sign,
)


@pytest.fixture
def clock() -> FakeTime:
    """The monotonic clock of the unknown-kid refetch limit; moves only when told."""
    return FakeTime(start=1000.0)


@pytest.fixture
def make_auth(server: CertServer, clock: FakeTime) -> Iterator[Any]:
    made: list[PushAuthenticator] = []

    def make(accounts: frozenset[str] = frozenset({ACCOUNT})) -> PushAuthenticator:
        options: dict[str, Any] = {"audience": AUDIENCE, "certs_url": server.url}
        made.append(
            PushAuthenticator(allowed_service_accounts=accounts, clock=clock.clock, **options)
        )
        return made[-1]

    yield make
    for authenticator in made:
        authenticator.close()


@pytest.fixture
def auth(make_auth: Any) -> Any:
    return make_auth()


def _rejected(auth: PushAuthenticator, token: str, message: str) -> None:
    """Refused with exactly `message`, and no part of the token in the error or its traceback."""
    with pytest.raises(PushAuthError) as info:
        auth.verify(f"Bearer {token}")
    assert str(info.value) == message
    rendered = "".join(traceback.format_exception(info.value))
    for part in token.split("."):
        assert len(part) < 8 or part not in rendered


@pytest.mark.parametrize(
    "claims",
    [
        {"iss": "https://accounts.google.com"},
        {"iss": "accounts.google.com"},
        {"iat": -3600, "exp": -3},  # seconds from now: expired, but within the clock skew
    ],
)
def test_a_valid_token_returns_its_claims(auth: Any, keys: KeyPair, claims: dict[str, Any]):
    # Times are taken when the test runs, not when it is collected (minutes earlier in a suite).
    now = int(time.time())
    claims = {k: now + v if k in ("iat", "exp") else v for k, v in claims.items()}
    verified = auth.verify(f"  bearer   {_sign(keys, **claims)} ")
    assert (verified.email, verified.subject) == (ACCOUNT, "1234567890")


def test_star_accepts_any_verified_account(make_auth: Any, keys: KeyPair):
    auth = make_auth(frozenset({"*"}))
    stranger = "someone-else@x.iam.gserviceaccount.com"
    assert auth.verify(f"Bearer {_sign(keys, email=stranger)}").email == stranger
    _rejected(auth, _sign(keys, email=stranger, email_verified=False), "email not verified")
    upper = make_auth(frozenset({ACCOUNT.upper()}))
    assert upper.verify(f"Bearer {_sign(keys)}").email == ACCOUNT  # case-insensitive


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"aud": "https://elsewhere.example.test/"}, "token audience does not match"),
        ({"aud": [AUDIENCE]}, "token audience does not match"),
        ({"iss": "https://evil.example.test"}, "token issuer not accepted"),
        ({"iss": ["https://accounts.google.com"]}, "token issuer not accepted"),
        ({"email": "intruder@other.iam.gserviceaccount.com"}, "service account not allowed"),
        ({"email": _DROP}, "token has no email"),
        ({"email": 42}, "token has no email"),
        ({"email": ""}, "token has no email"),
        ({"email_verified": False}, "email not verified"),
        ({"email_verified": _DROP}, "email not verified"),
        ({"email_verified": "true"}, "email not verified"),
        ({"iat": int(time.time()) - 7200, "exp": int(time.time()) - 30}, "token expired"),
        ({"iat": int(time.time()) + 3600}, "token used before issued"),
        ({"exp": _DROP}, "token has no iat or exp claim"),
        ({"iat": _DROP}, "token has no iat or exp claim"),
        ({"exp": "tomorrow"}, "token invalid"),
    ],
)
def test_a_signed_token_with_bad_claims_is_refused(auth: Any, keys: KeyPair, claims, message):
    _rejected(auth, _sign(keys, **claims), message)


def test_a_bad_signature_is_refused(auth: Any, keys: KeyPair, other_keys: KeyPair):
    header, _, signature = _sign(keys).split(".")
    tampered = _segment(_claims(email="intruder@x.iam.gserviceaccount.com"))
    _rejected(auth, f"{header}.{tampered}.{signature}", "token signature invalid")
    _rejected(auth, _sign(other_keys), "token signature invalid")  # another key, a known kid


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
@pytest.mark.parametrize("signature", [b"", b"sig"])
def test_an_unsigned_token_is_refused(auth: Any, alg: str, signature: bytes):
    token = f"{_segment({'alg': alg, 'typ': 'JWT', 'kid': KID})}.{_segment(_claims())}"
    _rejected(auth, f"{token}.{_b64(signature)}", "unsupported algorithm")


@pytest.mark.parametrize("secret", ["certificate", "public key"])
def test_hs256_keyed_with_the_public_key_is_refused(auth: Any, keys: KeyPair, secret: str):
    # The classic confusion: a verifier that takes `alg` from the token would check this HMAC
    # with the public key's bytes, which anyone can download, as the secret.
    hmac_key = keys.cert_pem.encode() if secret == "certificate" else keys.public_pem
    signing_input = f"{_segment({'alg': 'HS256', 'typ': 'JWT', 'kid': KID})}.{_segment(_claims())}"
    mac = hmac.new(hmac_key, signing_input.encode(), hashlib.sha256).digest()
    _rejected(auth, f"{signing_input}.{_b64(mac)}", "unsupported algorithm")


def test_es256_under_an_rsa_certificate_is_refused(auth: Any):
    signer = es.EsSigner.from_string(private_key_pem(ec.generate_private_key(ec.SECP256R1())))
    _rejected(auth, google_jwt.encode(signer, _claims(), key_id=KID).decode(), "token invalid")


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "missing bearer token"),
        ("Bearer   ", "missing bearer token"),
        ("Basic dXNlcjpwYXNz", "authorization scheme is not Bearer"),
        ("Bearer " + "x" * 20000, "token too large"),
        ("Bearer a.b", "token invalid"),
        ("Bearer !!!.???.###", "token invalid"),
        (f"Bearer e30.{_b64(b'[' * 5000)}.c2ln", "token invalid"),
    ],
)
def test_a_malformed_header_is_refused(auth: Any, header: str | None, message: str):
    with pytest.raises(PushAuthError, match=f"^{message}$"):
        auth.verify(header)


@pytest.mark.parametrize(
    ("cache_control", "fetches"), [("public, max-age=3600, must-revalidate", 1), ("max-age=0", 5)]
)
def test_certificates_are_fetched_once_per_max_age(
    auth: Any, keys: KeyPair, server: CertServer, cache_control: str, fetches: int
):
    server.cache_control = cache_control
    for _ in range(5):
        auth.verify(f"Bearer {_sign(keys)}")
    assert server.requests == fetches


def test_an_unknown_kid_refetches_past_the_cache_at_most_every_30_seconds(
    auth: Any, keys: KeyPair, server: CertServer, clock: FakeTime
):
    auth.verify(f"Bearer {_sign(keys)}")
    _rejected(auth, _sign(keys, kid="kid-unknown"), "token key id unknown")
    assert server.requests == 2
    for _ in range(20):  # made-up kids cannot make us hammer Google
        _rejected(auth, _sign(keys, kid="another-unknown"), "token key id unknown")
    assert server.requests == 2
    clock.now += 30
    _rejected(auth, _sign(keys, kid="kid-unknown"), "token key id unknown")
    assert server.requests == 3


def test_a_rotated_key_is_picked_up_once_by_all_requests_waiting_for_it(
    auth: Any, keys: KeyPair, other_keys: KeyPair, server: CertServer
):
    auth.verify(f"Bearer {_sign(keys)}")
    server.certs = {KID: keys.cert_pem, "kid2": other_keys.cert_pem}
    server.delay = 0.3  # the other requests name the new kid while the refetch is under way
    header = f"Bearer {_sign(other_keys, kid='kid2')}"
    with ThreadPoolExecutor(max_workers=8) as pool:
        emails = list(pool.map(lambda _: auth.verify(header).email, range(8)))
    assert emails == [ACCOUNT] * 8
    assert auth.verify(f"Bearer {_sign(keys)}").email == ACCOUNT
    assert server.requests == 2  # the first fetch and one refetch; the rest from the cache


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (500, None, "HTTP 500"),
        (404, None, "HTTP 404"),
        (200, b"<html>oops</html>", "not a certificate document"),
        (200, b"[]", "not a certificate document"),
        (200, b"{}", "not a certificate document"),
        (200, b'{"keys": [{"kid": "k"}]}', "not a certificate document"),
    ],
)
def test_a_failed_certificate_fetch_is_unavailable(auth: Any, keys, server, status, body, reason):
    server.status, server.body = status, body
    with pytest.raises(PushAuthUnavailable, match=reason):
        auth.verify(f"Bearer {_sign(keys)}")


def test_a_failed_rotation_refetch_is_unavailable_and_keeps_the_cache(auth: Any, keys, server):
    auth.verify(f"Bearer {_sign(keys)}")
    server.status = 500
    with pytest.raises(PushAuthUnavailable):
        auth.verify(f"Bearer {_sign(keys, kid='kid-new')}")
    assert auth.verify(f"Bearer {_sign(keys)}").email == ACCOUNT
    assert server.requests == 2


@pytest.mark.parametrize("listening", [False, True])
def test_an_unreachable_certificate_server_is_unavailable(keys: KeyPair, listening: bool):
    token = _sign(keys)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        if listening:
            sock.listen(1)  # the kernel accepts the connection, nobody ever answers
        auth = PushAuthenticator(
            audience=AUDIENCE,
            allowed_service_accounts=frozenset({"*"}),
            certs_url=f"http://127.0.0.1:{sock.getsockname()[1]}/certs",
            http_timeout=0.2,
        )
        started = time.monotonic()
        with pytest.raises(PushAuthUnavailable, match="Timeout" if listening else "Connection"):
            auth.verify(f"Bearer {token}")
        auth.close()
    assert time.monotonic() - started < 10  # our timeout, far from google-auth's 120 s


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)
_segments = st.one_of(
    st.text(max_size=40),
    _json.map(_segment),
    st.fixed_dictionaries(
        {"alg": st.sampled_from(["RS256", "none", "HS256", "ES256"]), "kid": _json}
    ).map(_segment),
    st.binary(max_size=300).map(_b64),
)
_headers = st.one_of(
    st.text(),
    st.text().map(lambda text: f"Bearer {text}"),
    st.lists(_segments, min_size=1, max_size=4).map(lambda parts: "Bearer " + ".".join(parts)),
)
_claim_names = st.sampled_from(["iss", "aud", "email", "email_verified", "iat", "exp", "sub"])
_VOCABULARY = (  # noqa: SIM905 - one line per few messages
    "missing bearer token|authorization scheme is not Bearer|token too large|token invalid|"
    "unsupported algorithm|token key id unknown|token signature invalid|token expired|"
    "token used before issued|token has no iat or exp claim|token audience does not match|"
    "token issuer not accepted|email not verified|token has no email|service account not allowed"
).split("|")


# Nothing but the two error classes escapes, with messages from a fixed vocabulary. One
# authenticator and certificate server serve all examples, as in production.
@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(header=_headers, claims=st.dictionaries(_claim_names, _json | st.just(_DROP)))
def test_arbitrary_headers_and_claims_raise_only_push_auth_errors(
    auth: PushAuthenticator, keys: KeyPair, header: str, claims: dict[str, Any]
):
    # Garbage headers, and tokens with our valid signature over arbitrary claims.
    refusals: list[Exception] = []
    for candidate in (header, f"Bearer {_sign(keys, **claims)}"):
        try:
            auth.verify(candidate)
        except (PushAuthError, PushAuthUnavailable) as exc:
            refusals.append(exc)
    messages = {str(exc) for exc in refusals if isinstance(exc, PushAuthError)}
    assert messages <= set(_VOCABULARY)
