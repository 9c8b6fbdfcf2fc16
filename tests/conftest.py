"""Shared fixtures: the local Svix emulator, the relay loaded as the platform loads it, events."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import settings as hypothesis_settings

from tests.support import ROOT

if TYPE_CHECKING:
    from svix_emulator.testing import RunningEmulator

# CI runs the same examples every time: a new failure there must come from a change, not a draw.
hypothesis_settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


@pytest.fixture(scope="session")
def svix_server() -> Iterator[RunningEmulator]:
    from svix_emulator.testing import start_emulator

    with start_emulator(seed=1234) as emulator:
        yield emulator


@pytest.fixture
def svix(svix_server: RunningEmulator) -> RunningEmulator:
    """The emulator, emptied and without faults for this test."""
    svix_server.reset()
    return svix_server


@pytest.fixture
def relay_env(svix: RunningEmulator) -> dict[str, str]:
    """Settings for a relay that talks to the emulator, with budgets small enough for tests."""
    return {
        "SVIX_AUTH_TOKEN": svix.token,
        "SVIX_SERVER_URL": svix.url,
        "RELAY_TIME_BUDGET_SECONDS": "3",
        "RELAY_SVIX_TIMEOUT_SECONDS": "1",
        "RELAY_BACKOFF_INITIAL_SECONDS": "0.02",
        "RELAY_BACKOFF_MAX_SECONDS": "0.2",
        "RELAY_MAX_IN_FLIGHT": "8",
        "GOOGLE_CLOUD_PROJECT": "test-project",
    }


RelayFactory = Callable[..., Any]


@pytest.fixture
def make_relay(
    monkeypatch: pytest.MonkeyPatch, relay_env: dict[str, str]
) -> Iterator[RelayFactory]:
    """Load main.py the way functions-framework does, with the given settings on top of
    `relay_env`, and return a Flask test client for the `relay` function."""
    import functions_framework

    loaded: list[Any] = []

    def make(target: str = "relay", **overrides: str) -> Any:
        for name in list(relay_env) + list(overrides):
            monkeypatch.delenv(name, raising=False)
        for name, value in {**relay_env, **overrides}.items():
            monkeypatch.setenv(name, value)
        app = functions_framework.create_app(target, str(ROOT / "main.py"))
        loaded.append(sys.modules["main"].APP)
        client = app.test_client()
        client.application_state = sys.modules["main"].APP
        return client

    yield make
    for application in loaded:
        application.relay.close()


@pytest.fixture
def relay(make_relay: RelayFactory) -> Any:
    return make_relay()


@pytest.fixture(scope="session")
def pubsub() -> Iterator[Any]:
    """The Pub/Sub emulator for the session, or a skip that says why it is not there."""
    from tests.support.pubsub_emulator import PubSubEmulator, emulator_unavailable_reason

    reason = emulator_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    with PubSubEmulator() as emulator:
        yield emulator
