"""Fixtures for the emulator's own tests: one shared emulator, reset before each test, and
clients that record every exchange so it can be checked against Svix's OpenAPI spec."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from svix import Svix

from svix_emulator.spec import SPEC_PATH, SpecChecker
from svix_emulator.testing import RunningEmulator, start_emulator
from tests.support.emulator import Exchange, make_http, make_svix, spec_problems


@pytest.fixture(scope="session")
def spec_checker() -> SpecChecker | None:
    return SpecChecker.load() if SPEC_PATH.exists() else None


@pytest.fixture(scope="session")
def shared_emulator() -> Iterator[RunningEmulator]:
    with start_emulator(seed=1) as emulator:
        yield emulator


@pytest.fixture
def exchanges(spec_checker: SpecChecker | None) -> Iterator[list[Exchange]]:
    """What the test's clients sent and got; checked against the spec when the test ends."""
    recorded: list[Exchange] = []
    yield recorded
    if spec_checker is not None:
        problems = spec_problems(spec_checker, recorded)
        assert not problems, "\n".join(problems)


@pytest.fixture
def emulator(shared_emulator: RunningEmulator) -> RunningEmulator:
    shared_emulator.reset()
    return shared_emulator


@pytest.fixture
def svix_client(emulator: RunningEmulator, exchanges: list[Exchange]) -> Iterator[Svix]:
    client = make_svix(emulator, exchanges)
    yield client
    client._httpx_client.close()


@pytest.fixture
def http(emulator: RunningEmulator, exchanges: list[Exchange]) -> Iterator[httpx.Client]:
    """A raw client with the emulator's token, for what the SDK hides (headers, bodies)."""
    with make_http(emulator, exchanges) as client:
        yield client


@pytest.fixture
def app_uid(http: httpx.Client) -> str:
    response = http.post("/api/v1/app", json={"name": "Test app", "uid": "test-app"})
    assert response.status_code == 201
    return "test-app"
