"""relay.pubsub.push_auth: OIDC push-token verification against a local certificate server."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import socket
import threading
import time
import traceback
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from google.auth import crypt as google_crypt
from google.auth import exceptions as google_exceptions
from google.auth import jwt as google_jwt
from google.auth.crypt import es
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay.core.errors import PushAuthError, PushAuthUnavailable
from relay.pubsub.push_auth import (
    DEFAULT_ISSUERS,
    FETCH_FAILURE_BACKOFF_SECONDS,
    GOOGLE_CERTS_URL,
    STALE_IF_ERROR_SECONDS,
    UNKNOWN_KID_REFETCH_SECONDS,
    Claims,
    PushAuthenticator,
)
from tests.support.fakes import private_key_pem, self_signed_certificate

AUDIENCE = "https://relay.example.test/push"
ACCOUNT = "pubsub-push@project.iam.gserviceaccount.com"
KID = "kid1"


# ---- keys, certificates and tokens --------------------------------------------------------------


def _rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _private_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return private_key_pem(key)


def _cert_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return self_signed_certificate(key, common_name="relay-test")


class KeyPair:
    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        self.cert_pem = _cert_pem(key)
        self._key = key

    def signer(self, kid: str = KID) -> google_crypt.RSASigner:
        # Built from the key object: parsing the PEM again costs tens of ms per token.
        return google_crypt.RSASigner(self._key, key_id=kid)


@pytest.fixture(scope="module")
def keys() -> KeyPair:
    return KeyPair(_rsa_key())


@pytest.fixture(scope="module")
def other_keys() -> KeyPair:
    return KeyPair(_rsa_key())


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": "https://accounts.google.com",
        "aud": AUDIENCE,
        "azp": "1234567890",
        "sub": "1234567890",
        "email": ACCOUNT,
        "email_verified": True,
        "iat": now,
        "exp": now + 3600,
    }
    for name, value in overrides.items():
        if value is _DROP:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


_DROP = object()


def _sign(keys: KeyPair, kid: str = KID, **overrides: Any) -> str:
    signer = keys.signer(kid)
    token: bytes = google_jwt.encode(signer, _claims(**overrides), key_id=kid)
    return token.decode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(document: object) -> str:
    return _b64(json.dumps(document).encode())


def _hand_built(header: object, payload: object, signature: bytes = b"") -> str:
    return f"{_segment(header)}.{_segment(payload)}.{_b64(signature)}"


# ---- the certificate server ---------------------------------------------------------------------


class CertServer:
    """Serves a certificate document on a free loopback port and counts requests."""

    def __init__(self, certs: dict[str, str]) -> None:
        self.certs = certs
        self.status = 200
        self.cache_control: str | None = "public, max-age=3600, must-revalidate, no-transform"
        self.age: str | None = None
        self.body: bytes | None = None
        self._count = 0
        self._count_lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with server._count_lock:
                    server._count += 1
                body = server.body if server.body is not None else json.dumps(server.certs).encode()
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                if server.cache_control is not None:
                    self.send_header("Cache-Control", server.cache_control)
                if server.age is not None:
                    self.send_header("Age", server.age)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/oauth2/v1/certs"

    @property
    def requests(self) -> int:
        with self._count_lock:
            return self._count

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def server(keys: KeyPair) -> Iterator[CertServer]:
    srv = CertServer({KID: keys.cert_pem})
    try:
        yield srv
    finally:
        srv.close()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_auth(server: CertServer, clock: FakeClock) -> Iterator[Any]:
    made: list[PushAuthenticator] = []

    def make(**kwargs: Any) -> PushAuthenticator:
        kwargs.setdefault("audience", AUDIENCE)
        kwargs.setdefault("allowed_service_accounts", frozenset({ACCOUNT}))
        kwargs.setdefault("certs_url", server.url)
        kwargs.setdefault("clock", clock)
        kwargs.setdefault("http_timeout", 2.0)
        auth = PushAuthenticator(**kwargs)
        made.append(auth)
        return auth

    yield make
    for auth in made:
        auth.close()


@pytest.fixture
def auth(make_auth: Any) -> PushAuthenticator:
    authenticator: PushAuthenticator = make_auth()
    return authenticator


def _rejected(auth: PushAuthenticator, header: str | None, message: str, token: str = "") -> None:
    with pytest.raises(PushAuthError) as info:
        auth.verify(header)
    assert str(info.value) == message
    if token:
        rendered = "".join(traceback.format_exception(info.value))
        for part in token.split("."):
            if len(part) >= 8:
                assert part not in rendered
        assert token not in repr(info.value)


# ---- valid tokens -------------------------------------------------------------------------------


def test_valid_token_returns_claims(auth: PushAuthenticator, keys: KeyPair) -> None:
    exp = int(time.time()) + 1800
    claims = auth.verify(f"Bearer {_sign(keys, exp=exp)}")
    assert claims == Claims(
        email=ACCOUNT,
        subject="1234567890",
        audience=AUDIENCE,
        expires_at=dt.datetime.fromtimestamp(exp, tz=dt.UTC),
    )
    with pytest.raises(AttributeError):
        claims.email = "x"  # type: ignore[misc]


@pytest.mark.parametrize("issuer", sorted(DEFAULT_ISSUERS))
def test_both_google_issuers_accepted(auth: PushAuthenticator, keys: KeyPair, issuer: str) -> None:
    assert auth.verify(f"Bearer {_sign(keys, iss=issuer)}").email == ACCOUNT


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer"])
def test_scheme_is_case_insensitive_and_whitespace_tolerated(
    auth: PushAuthenticator, keys: KeyPair, scheme: str
) -> None:
    assert auth.verify(f"  {scheme}   {_sign(keys)}  ").email == ACCOUNT


def test_star_accepts_any_verified_account(make_auth: Any, keys: KeyPair) -> None:
    auth = make_auth(allowed_service_accounts=frozenset({"*"}))
    claims = auth.verify(f"Bearer {_sign(keys, email='someone-else@x.iam.gserviceaccount.com')}")
    assert claims.email == "someone-else@x.iam.gserviceaccount.com"


def test_allowed_accounts_compare_case_insensitively(make_auth: Any, keys: KeyPair) -> None:
    auth = make_auth(allowed_service_accounts=frozenset({ACCOUNT.upper()}))
    assert auth.verify(f"Bearer {_sign(keys)}").email == ACCOUNT


def test_expiry_within_clock_skew_is_accepted(auth: PushAuthenticator, keys: KeyPair) -> None:
    now = int(time.time())
    assert auth.verify(f"Bearer {_sign(keys, iat=now - 3600, exp=now - 3)}").email == ACCOUNT


# ---- rejected claims ----------------------------------------------------------------------------


def test_wrong_audience(auth: PushAuthenticator, keys: KeyPair) -> None:
    token = _sign(keys, aud="https://elsewhere.example.test/")
    _rejected(auth, f"Bearer {token}", "token audience does not match", token)


def test_audience_list_is_not_accepted(auth: PushAuthenticator, keys: KeyPair) -> None:
    token = _sign(keys, aud=[AUDIENCE])
    _rejected(auth, f"Bearer {token}", "token audience does not match", token)


def test_wrong_issuer(auth: PushAuthenticator, keys: KeyPair) -> None:
    token = _sign(keys, iss="https://evil.example.test")
    _rejected(auth, f"Bearer {token}", "token issuer not accepted", token)


def test_account_not_in_allowed_set(auth: PushAuthenticator, keys: KeyPair) -> None:
    token = _sign(keys, email="intruder@other.iam.gserviceaccount.com")
    _rejected(auth, f"Bearer {token}", "service account not allowed", token)


@pytest.mark.parametrize("verified", [False, _DROP, "true", 1, None])
def test_email_not_verified(auth: PushAuthenticator, keys: KeyPair, verified: object) -> None:
    token = _sign(keys, email_verified=verified)
    _rejected(auth, f"Bearer {token}", "email not verified", token)


@pytest.mark.parametrize("email", [_DROP, "", 42])
def test_missing_email(make_auth: Any, keys: KeyPair, email: object) -> None:
    auth = make_auth(allowed_service_accounts=frozenset({"*"}))
    token = _sign(keys, email=email)
    _rejected(auth, f"Bearer {token}", "token has no email", token)


def test_expired(auth: PushAuthenticator, keys: KeyPair) -> None:
    now = int(time.time())
    token = _sign(keys, iat=now - 7200, exp=now - 3600)
    _rejected(auth, f"Bearer {token}", "token expired", token)


def test_expired_just_beyond_skew(auth: PushAuthenticator, keys: KeyPair) -> None:
    now = int(time.time())
    token = _sign(keys, iat=now - 3600, exp=now - 30)
    _rejected(auth, f"Bearer {token}", "token expired", token)


def test_issued_in_the_future(auth: PushAuthenticator, keys: KeyPair) -> None:
    now = int(time.time())
    token = _sign(keys, iat=now + 3600, exp=now + 7200)
    _rejected(auth, f"Bearer {token}", "token used before issued", token)


@pytest.mark.parametrize(
    ("claim", "value", "message"),
    [
        ("exp", _DROP, "token has no exp claim"),
        ("iat", _DROP, "token has no iat claim"),
        ("exp", "soon", "token exp claim is not a valid time"),
        ("exp", True, "token exp claim is not a valid time"),
        ("exp", 10**30, "token exp claim is not a valid time"),
        ("iat", -5, "token iat claim is not a valid time"),
    ],
)
def test_bad_time_claims(
    auth: PushAuthenticator, keys: KeyPair, claim: str, value: object, message: str
) -> None:
    overrides: dict[str, Any] = {claim: value}
    token = _sign(keys, **overrides)
    _rejected(auth, f"Bearer {token}", message, token)


# ---- signatures and algorithms ------------------------------------------------------------------


def test_signed_with_another_key_same_kid(
    auth: PushAuthenticator, other_keys: KeyPair, server: CertServer
) -> None:
    token = _sign(other_keys)
    _rejected(auth, f"Bearer {token}", "token signature invalid", token)
    assert server.requests == 1


def test_tampered_payload(auth: PushAuthenticator, keys: KeyPair) -> None:
    header, _, signature = _sign(keys).split(".")
    forged = f"{header}.{_segment(_claims(email='intruder@x.iam.gserviceaccount.com'))}.{signature}"
    _rejected(auth, f"Bearer {forged}", "token signature invalid", forged)


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none_rejected_without_fetching(
    auth: PushAuthenticator, server: CertServer, keys: KeyPair, alg: str
) -> None:
    header = {"alg": alg, "typ": "JWT", "kid": KID}
    for token in (_hand_built(header, _claims()), _hand_built(header, _claims(), b"sig")):
        _rejected(auth, f"Bearer {token}", f"unsupported algorithm {alg}", token)
    assert server.requests == 0


def test_google_auth_itself_refuses_unsigned_tokens(keys: KeyPair) -> None:
    token = _hand_built({"alg": "none", "kid": KID}, _claims(), b"x")
    with pytest.raises(google_exceptions.GoogleAuthError):
        google_jwt.decode(token, certs={KID: keys.cert_pem}, audience=AUDIENCE)


def test_hs256_with_the_public_cert_as_secret_rejected(
    auth: PushAuthenticator, keys: KeyPair, server: CertServer
) -> None:
    signing_input = f"{_segment({'alg': 'HS256', 'typ': 'JWT', 'kid': KID})}.{_segment(_claims())}"
    mac = hmac.new(keys.cert_pem.encode(), signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{_b64(mac)}"
    _rejected(auth, f"Bearer {token}", "unsupported algorithm HS256", token)
    assert server.requests == 0


def test_es256_rejected(auth: PushAuthenticator) -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    signer = es.EsSigner.from_string(_private_pem(ec_key), key_id=KID)
    token = google_jwt.encode(signer, _claims(), key_id=KID).decode()
    _rejected(auth, f"Bearer {token}", "unsupported algorithm ES256", token)


# ---- malformed headers --------------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "", "   ", "Bearer", "Bearer    "])
def test_missing_bearer_token(auth: PushAuthenticator, header: str | None) -> None:
    _rejected(auth, header, "missing bearer token")


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Token abc.def.ghi", "Bearer_x"])
def test_other_scheme(auth: PushAuthenticator, header: str) -> None:
    _rejected(auth, header, "authorization scheme is not Bearer")


_RS256 = {"alg": "RS256", "typ": "JWT", "kid": KID}
_NOT_UTF8 = _b64(b"\xff\xfe{")


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("abc", "malformed token"),
        ("a.b", "malformed token"),
        ("a.b.c.d", "malformed token"),
        ("!!!.???.###", "malformed token"),
        ("a b c", "malformed token"),
        ("eyJ=.e30.e30", "malformed token"),
        ("a.b.c", "malformed token"),
        (_NOT_UTF8 + ".e30.e30", "malformed token"),
        ("x" * 20000, "token too large"),
        ("e30.e30.e30", "unsupported algorithm"),
        (_hand_built({"alg": 256}, {}, b"s"), "unsupported algorithm"),
        (_hand_built({"alg": "<script>" * 3}, {}, b"s"), "unsupported algorithm"),
        (_hand_built([], {}, b"s"), "malformed token"),
        (_hand_built({"alg": "RS256"}, {}, b"s"), "token has no key id"),
        (_hand_built({"alg": "RS256", "kid": 7}, {}, b"s"), "token has no key id"),
        (_hand_built({**_RS256, "crit": ["b64"]}, {}, b"s"), "unsupported token header"),
        (_hand_built(_RS256, [1, 2], b"s"), "malformed token"),
        (_hand_built(_RS256, {}, b""), "malformed token"),
        (f"{_segment(_RS256)}.{_b64(b'[' * 5000)}.c2ln", "malformed token"),
        (f"{_segment(_RS256)}.{_b64(b'1' * 5000)}.c2ln", "malformed token"),
    ],
)
def test_garbage_tokens(
    auth: PushAuthenticator, server: CertServer, token: str, message: str
) -> None:
    _rejected(auth, f"Bearer {token}", message, token)
    assert server.requests == 0


# ---- certificate cache --------------------------------------------------------------------------


def test_certificates_fetched_once_across_many_verifications(
    auth: PushAuthenticator, keys: KeyPair, server: CertServer, clock: FakeClock
) -> None:
    for _ in range(50):
        auth.verify(f"Bearer {_sign(keys)}")
        clock.advance(60)
    assert server.requests == 1


def test_certificates_fetched_once_across_threads(
    auth: PushAuthenticator, keys: KeyPair, server: CertServer
) -> None:
    header = f"Bearer {_sign(keys)}"
    barrier = threading.Barrier(8)

    def work(_: int) -> int:
        barrier.wait(timeout=5)
        return sum(auth.verify(header).email == ACCOUNT for _ in range(25))

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert sum(pool.map(work, range(8))) == 200
    assert server.requests == 1


def test_certificates_refetched_after_max_age(
    auth: PushAuthenticator, keys: KeyPair, server: CertServer, clock: FakeClock
) -> None:
    server.cache_control = "public, max-age=300"
    header = f"Bearer {_sign(keys)}"
    auth.verify(header)
    clock.advance(299)
    auth.verify(header)
    assert server.requests == 1
    clock.advance(1)
    auth.verify(header)
    assert server.requests == 2


@pytest.mark.parametrize(
    ("cache_control", "age", "ttl"),
    [
        (None, None, 3600),
        ("no-transform", None, 3600),
        ("public, max-age=1000", "900", 100),
        ('max-age="500"', None, 500),
        ("max-age=0", None, 60),
        ("max-age=999999999", None, 86400),
    ],
)
def test_cache_lifetime_from_headers(
    auth: PushAuthenticator,
    keys: KeyPair,
    server: CertServer,
    clock: FakeClock,
    cache_control: str | None,
    age: str | None,
    ttl: int,
) -> None:
    server.cache_control = cache_control
    server.age = age
    header = f"Bearer {_sign(keys)}"
    auth.verify(header)
    clock.advance(ttl - 0.5)
    auth.verify(header)
    assert server.requests == 1
    clock.advance(1)
    auth.verify(header)
    assert server.requests == 2


def test_unknown_kid_triggers_one_refetch_then_error(
    auth: PushAuthenticator, keys: KeyPair, server: CertServer, clock: FakeClock
) -> None:
    auth.verify(f"Bearer {_sign(keys)}")
    assert server.requests == 1
    unknown = _sign(keys, kid="kid-unknown")
    _rejected(auth, f"Bearer {unknown}", "token key id unknown", unknown)
    assert server.requests == 2
    for _ in range(20):  # garbage kids cannot make us hammer the endpoint
        _rejected(auth, f"Bearer {_sign(keys, kid='another-unknown')}", "token key id unknown")
    assert server.requests == 2
    clock.advance(UNKNOWN_KID_REFETCH_SECONDS)
    _rejected(auth, f"Bearer {unknown}", "token key id unknown", unknown)
    assert server.requests == 3
    auth.verify(f"Bearer {_sign(keys)}")  # known kid still served from the cache
    assert server.requests == 3


def test_unknown_kid_on_cold_cache_fetches_once(
    auth: PushAuthenticator, keys: KeyPair, server: CertServer
) -> None:
    _rejected(auth, f"Bearer {_sign(keys, kid='kid-unknown')}", "token key id unknown")
    assert server.requests == 1


def test_key_rotation_picked_up_via_unknown_kid(
    auth: PushAuthenticator, keys: KeyPair, other_keys: KeyPair, server: CertServer
) -> None:
    auth.verify(f"Bearer {_sign(keys)}")
    server.certs = {KID: keys.cert_pem, "kid2": other_keys.cert_pem}
    assert auth.verify(f"Bearer {_sign(other_keys, kid='kid2')}").email == ACCOUNT
    assert server.requests == 2


# ---- certificate endpoint failures --------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, None),
        (404, None),
        (200, b"<html>oops</html>"),
        (200, b"[]"),
        (200, b"{}"),
        (200, b'{"kid1": "not a certificate"}'),
        (200, b'{"kid1": 42}'),
        (200, b"x" * (300 * 1024)),
    ],
)
def test_certs_endpoint_failure_is_unavailable(
    auth: PushAuthenticator, keys: KeyPair, server: CertServer, status: int, body: bytes | None
) -> None:
    server.status = status
    server.body = body
    with pytest.raises(PushAuthUnavailable):
        auth.verify(f"Bearer {_sign(keys)}")
    assert server.requests == 1


def test_ec_certificate_ignored(auth: PushAuthenticator, keys: KeyPair, server: CertServer) -> None:
    server.certs = {"ec": _cert_pem(ec.generate_private_key(ec.SECP256R1())), KID: keys.cert_pem}
    assert auth.verify(f"Bearer {_sign(keys)}").email == ACCOUNT
    _rejected(auth, f"Bearer {_sign(keys, kid='ec')}", "token key id unknown")


def test_certs_endpoint_refusing_connections(keys: KeyPair) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        port = sock.getsockname()[1]
        auth = PushAuthenticator(
            audience=AUDIENCE,
            allowed_service_accounts=frozenset({"*"}),
            certs_url=f"http://127.0.0.1:{port}/certs",
        )
        with pytest.raises(PushAuthUnavailable, match="ConnectionError"):
            auth.verify(f"Bearer {_sign(keys)}")
        auth.close()


def test_certs_endpoint_timing_out(keys: KeyPair) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)  # the kernel accepts the connection, nobody answers
        port = sock.getsockname()[1]
        auth = PushAuthenticator(
            audience=AUDIENCE,
            allowed_service_accounts=frozenset({"*"}),
            certs_url=f"http://127.0.0.1:{port}/certs",
            http_timeout=0.2,
        )
        with pytest.raises(PushAuthUnavailable, match="Timeout"):
            auth.verify(f"Bearer {_sign(keys)}")
        auth.close()


def test_failed_fetch_backs_off_then_recovers(
    auth: PushAuthenticator, keys: KeyPair, server: CertServer, clock: FakeClock
) -> None:
    header = f"Bearer {_sign(keys)}"
    server.status = 503
    for _ in range(10):
        with pytest.raises(PushAuthUnavailable):
            auth.verify(header)
    assert server.requests == 1
    server.status = 200
    clock.advance(FETCH_FAILURE_BACKOFF_SECONDS)
    assert auth.verify(header).email == ACCOUNT
    assert server.requests == 2


def test_expired_certificates_used_while_refresh_fails(
    auth: PushAuthenticator, keys: KeyPair, server: CertServer, clock: FakeClock
) -> None:
    server.cache_control = "max-age=100"
    header = f"Bearer {_sign(keys)}"
    auth.verify(header)
    server.status = 500
    clock.advance(100)
    assert auth.verify(header).email == ACCOUNT  # refresh failed, stale certificates used
    assert server.requests == 2
    assert auth.verify(header).email == ACCOUNT  # within the backoff: no new attempt
    assert server.requests == 2
    clock.advance(STALE_IF_ERROR_SECONDS - 1)
    assert auth.verify(header).email == ACCOUNT
    assert server.requests == 3
    clock.advance(FETCH_FAILURE_BACKOFF_SECONDS)  # now beyond the stale grace period
    with pytest.raises(PushAuthUnavailable):
        auth.verify(header)
    assert server.requests == 4
    server.status = 200
    clock.advance(FETCH_FAILURE_BACKOFF_SECONDS)
    assert auth.verify(header).email == ACCOUNT
    assert server.requests == 5


def test_unknown_kid_refetch_failure_is_unavailable(
    auth: PushAuthenticator, keys: KeyPair, server: CertServer
) -> None:
    auth.verify(f"Bearer {_sign(keys)}")
    server.status = 500
    with pytest.raises(PushAuthUnavailable):
        auth.verify(f"Bearer {_sign(keys, kid='kid-new')}")
    assert auth.verify(f"Bearer {_sign(keys)}").email == ACCOUNT  # cached key unaffected


# ---- construction -------------------------------------------------------------------------------


def test_defaults() -> None:
    auth = PushAuthenticator(audience=AUDIENCE, allowed_service_accounts=frozenset({"*"}))
    assert GOOGLE_CERTS_URL == "https://www.googleapis.com/oauth2/v1/certs"
    assert frozenset({"https://accounts.google.com", "accounts.google.com"}) == DEFAULT_ISSUERS
    assert auth.audience == AUDIENCE
    auth.close()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"audience": ""},
        {"audience": "  "},
        {"issuers": frozenset()},
        {"clock_skew_seconds": -1},
        {"http_timeout": 0},
    ],
)
def test_invalid_configuration(kwargs: dict[str, Any]) -> None:
    arguments: dict[str, Any] = {"audience": AUDIENCE, "allowed_service_accounts": {ACCOUNT}}
    with pytest.raises(ValueError):  # noqa: PT011 - several distinct messages
        PushAuthenticator(**(arguments | kwargs))


# ---- property: nothing but the two error classes escapes ----------------------------------------


@pytest.fixture(scope="module")
def shared_auth(keys: KeyPair) -> Iterator[PushAuthenticator]:
    srv = CertServer({KID: keys.cert_pem})
    auth = PushAuthenticator(
        audience=AUDIENCE, allowed_service_accounts=frozenset({ACCOUNT}), certs_url=srv.url
    )
    try:
        yield auth
    finally:
        auth.close()
        srv.close()


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
_segments = st.one_of(
    st.text(max_size=40),
    _json.map(_segment),
    st.fixed_dictionaries(
        {"alg": st.sampled_from(["RS256", "none", "HS256"]), "kid": st.sampled_from([KID, "x"])},
        optional={"crit": _json, "typ": _json},
    ).map(_segment),
    st.dictionaries(
        st.sampled_from(["iss", "aud", "email", "email_verified", "iat", "exp", "sub"]), _json
    ).map(_segment),
    st.binary(max_size=300).map(_b64),
)
_headers = st.one_of(
    st.text(),
    st.text().map(lambda text: f"Bearer {text}"),
    st.lists(_segments, min_size=1, max_size=4).map(lambda parts: "Bearer " + ".".join(parts)),
)


_MESSAGES = frozenset(
    {
        "missing bearer token",
        "authorization scheme is not Bearer",
        "token too large",
        "malformed token",
        "unsupported algorithm",
        "unsupported token header",
        "token has no key id",
        "token has no iat claim",
        "token has no exp claim",
        "token iat claim is not a valid time",
        "token exp claim is not a valid time",
        "token key id unknown",
        "token signature invalid",
        "token used before issued",
        "token expired",
        "token audience does not match",
        "token invalid",
        "token issuer not accepted",
        "email not verified",
        "token has no email",
        "service account not allowed",
    }
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(header=_headers)
def test_arbitrary_headers_raise_only_push_auth_errors(
    shared_auth: PushAuthenticator, header: str
) -> None:
    try:
        shared_auth.verify(header)
    except PushAuthError as exc:
        message = str(exc)  # a fixed vocabulary: nothing from the token but an algorithm name
        assert message in _MESSAGES or message.startswith("unsupported algorithm ")
    except PushAuthUnavailable:
        pass
