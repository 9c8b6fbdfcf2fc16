"""Fixtures the integration tests share: a Svix proxy whose look-ups fail, push-token keys, a
certificate server, and the settings and a Svix client for the event-types sync."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from svix import Svix, SvixOptions

from tests.support.event_types_sync import write_spec
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


@pytest.fixture
def env(relay_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The settings for `event-types sync`, with a small event spec of our own."""
    return {**relay_env, "RELAY_EVENT_SPEC": str(write_spec(tmp_path))}


@pytest.fixture
def sdk(svix: Any) -> Iterator[Svix]:
    """Svix as someone else sees it: to archive, create or change a type by hand."""
    client = Svix(svix.token, SvixOptions(server_url=svix.url, retry_schedule=[]))
    yield client
    client._httpx_client.close()
