"""Fixtures the integration tests share: a Svix proxy whose look-ups fail, push-token keys, and
a certificate server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.push_tokens import KID, CertServer, KeyPair
from tests.support.servers import LookupsFail


@pytest.fixture
def lookups_fail(svix: Any) -> Iterator[LookupsFail]:
    proxy = LookupsFail(svix.url)
    yield proxy
    proxy.close()


@pytest.fixture(scope="module")
def keys() -> KeyPair:
    return KeyPair()


@pytest.fixture(scope="module")
def other_keys() -> KeyPair:
    return KeyPair()


@pytest.fixture
def server(keys: KeyPair) -> Iterator[CertServer]:
    srv = CertServer({KID: keys.cert_pem})
    yield srv
    srv.close()
