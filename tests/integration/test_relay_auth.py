"""The relay checking Pub/Sub's push token itself (RELAY_PUSH_AUDIENCE set): strangers get 401
and nothing reaches Svix."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest

from relay.core.errors import SettingsError
from relay.pubsub.push_auth import PushAuthenticator
from tests.support import own_events, push_envelope
from tests.support.push_tokens import ACCOUNT, AUDIENCE, CertServer, KeyPair, _sign

USER = own_events()["user-created"]


@pytest.fixture
def guarded(make_relay: Any, server: CertServer) -> Any:
    return make_relay(
        RELAY_PUSH_AUDIENCE=AUDIENCE,
        RELAY_PUSH_SERVICE_ACCOUNTS=ACCOUNT,
        RELAY_PUSH_CERTS_URL=server.url,
    )


def post(client: Any, token: str | None) -> Any:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return client.post("/", data=json.dumps(push_envelope(USER)), headers=headers)


def test_a_valid_push_token_is_let_through(guarded: Any, keys: KeyPair, svix: Any):
    assert post(guarded, _sign(keys)).status_code == 200
    assert len(svix.messages()) == 1


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"aud": "https://elsewhere.example"}, "audience"),
        ({"iss": "https://evil.example"}, "issuer"),
        ({"email": "someone@else.iam.gserviceaccount.com"}, "service account not allowed"),
        ({"email_verified": False}, "email not verified"),
        ({"exp": 1_000_000_000, "iat": 999_999_000}, "expired"),
    ],
)
def test_a_bad_token_gets_401_and_nothing_is_sent(
    guarded: Any, keys: KeyPair, svix: Any, claims: dict[str, Any], reason: str
):
    response = post(guarded, _sign(keys, **claims))
    assert response.status_code == 401
    assert reason in response.get_json()["error"]
    assert svix.messages() == []


def test_no_token_garbage_and_a_foreign_signature_get_401(
    guarded: Any, other_keys: KeyPair, svix: Any
):
    assert post(guarded, None).status_code == 401
    assert post(guarded, "garbage").status_code == 401
    assert post(guarded, _sign(other_keys)).status_code == 401
    assert svix.messages() == []


def test_certificates_unreachable_answers_503(make_relay: Any, keys: KeyPair, svix: Any):
    with socket.socket() as sock:  # a port the OS just gave out and nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    relay = make_relay(
        RELAY_PUSH_AUDIENCE=AUDIENCE,
        RELAY_PUSH_SERVICE_ACCOUNTS=ACCOUNT,
        RELAY_PUSH_CERTS_URL=f"http://127.0.0.1:{closed}/certs",
    )
    assert post(relay, _sign(keys)).status_code == 503
    assert svix.messages() == []


def test_without_an_audience_there_is_no_check_and_start_up_says_so(make_relay: Any, capsys: Any):
    relay = make_relay()
    assert "push authentication is left to the platform" in capsys.readouterr().out
    assert post(relay, None).status_code == 200


def test_an_audience_without_accounts_does_not_start(make_relay: Any, server: CertServer):
    # Anyone can mint a Google ID token for our audience: that alone must not let them in.
    with pytest.raises(SettingsError, match="RELAY_PUSH_SERVICE_ACCOUNTS"):
        make_relay(RELAY_PUSH_AUDIENCE=AUDIENCE, RELAY_PUSH_CERTS_URL=server.url)


def test_a_star_lets_any_google_account_through_and_still_checks_the_token(
    make_relay: Any, server: CertServer, keys: KeyPair, other_keys: KeyPair, svix: Any
):
    relay = make_relay(
        RELAY_PUSH_AUDIENCE=AUDIENCE,
        RELAY_PUSH_SERVICE_ACCOUNTS="*",
        RELAY_PUSH_CERTS_URL=server.url,
    )
    stranger = "anyone@elsewhere.iam.gserviceaccount.com"
    assert post(relay, _sign(keys, email=stranger)).status_code == 200
    assert post(relay, _sign(keys, email=stranger, aud="https://other.example")).status_code == 401
    assert post(relay, _sign(other_keys, email=stranger)).status_code == 401
    assert len(svix.messages()) == 1


def test_the_authenticator_refuses_an_empty_account_list_instead_of_allowing_everyone():
    with pytest.raises(ValueError, match="'\\*'"):
        PushAuthenticator(audience=AUDIENCE, allowed_service_accounts=frozenset())
