"""Faults on demand: rate limits, gateway errors, lost connections, slow answers, latency."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from svix import Svix
from svix.api import MessageCreateOptions, MessageIn
from svix.exceptions import HttpError

from svix_emulator.cli import _parser, faults_from_args
from svix_emulator.faults import RETRY_AFTER_FORMS, FaultState, parse_faults
from svix_emulator.testing import RunningEmulator, start_emulator
from tests.support.emulator import Exchange, make_http, make_svix

BODY = {"eventType": "order.created", "eventId": "evt-1", "payload": {"id": "src-1"}}


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.01)


def post(http: httpx.Client, app: str, key: str | None = None, **body: Any) -> httpx.Response:
    headers = {} if key is None else {"idempotency-key": key}
    return http.post(f"/api/v1/app/{app}/msg", json={**BODY, **body}, headers=headers)


def test_rate_limit_answers_429_with_retry_after(
    http: httpx.Client, app_uid: str, emulator: RunningEmulator
) -> None:
    # One token per 100 s: the bucket cannot refill between these requests, however slow the host.
    emulator.set_faults(rate_limit={"per_second": 0.01, "burst": 2})
    statuses = [post(http, app_uid, eventId=f"e{n}").status_code for n in range(2)]
    limited = post(http, app_uid, eventId="e2")

    assert statuses == [202, 202]
    assert limited.status_code == 429
    assert limited.json()["code"] == "rate_limit"
    retry_after = limited.headers["retry-after"]
    assert retry_after.isdigit()
    assert int(retry_after) >= 1
    assert emulator.stats()["faults_injected"]["rate_limited"] == 1
    assert len(emulator.messages()) == 2
    # Only message creation is limited.
    assert http.get(f"/api/v1/app/{app_uid}/msg").status_code == 200


def test_rate_limit_without_retry_after(
    http: httpx.Client, app_uid: str, emulator: RunningEmulator
) -> None:
    emulator.set_faults(rate_limit={"per_second": 0.01, "burst": 1, "retry_after": False})
    assert post(http, app_uid, eventId="e0").status_code == 202
    limited = post(http, app_uid, eventId="e1")

    assert limited.status_code == 429
    assert "retry-after" not in limited.headers


def test_rate_limit_through_the_sdk(
    svix_client: Svix, app_uid: str, emulator: RunningEmulator
) -> None:
    emulator.set_faults(rate_limit={"per_second": 0.01, "burst": 1})
    svix_client.message.create(app_uid, MessageIn(event_type="a", payload={}))
    with pytest.raises(HttpError) as caught:
        svix_client.message.create(app_uid, MessageIn(event_type="a", payload={}))
    assert caught.value.status_code == 429


def test_rate_limit_refills(http: httpx.Client, app_uid: str, emulator: RunningEmulator) -> None:
    emulator.set_faults(rate_limit={"per_second": 20, "burst": 1})
    assert post(http, app_uid, eventId="e0").status_code == 202
    # The bucket refills at 20/s: within a few retries the next request gets through.
    deadline = time.monotonic() + 5
    status = 429
    while status == 429 and time.monotonic() < deadline:
        status = post(http, app_uid, eventId="e1").status_code
        if status == 429:
            time.sleep(0.02)
    assert status == 202


@pytest.mark.parametrize("status", [500, 503])
def test_next_n_json_errors(
    http: httpx.Client, app_uid: str, emulator: RunningEmulator, status: int
) -> None:
    emulator.set_faults(errors=[{"status": status, "next": 2}])
    failed = [post(http, app_uid, key="k") for _ in range(2)]
    succeeded = post(http, app_uid, key="k")

    assert [r.status_code for r in failed] == [status, status]
    assert all(r.headers["content-type"] == "application/json" for r in failed)
    assert all(set(r.json()) == {"code", "detail"} for r in failed)
    assert succeeded.status_code == 202
    assert emulator.stats()["faults_injected"][f"error_{status}"] == 2
    assert emulator.faults()["errors"] == [{"status": status, "next": 0}]
    assert len(emulator.messages()) == 1


def test_502_is_an_html_page(
    http: httpx.Client, svix_client: Svix, app_uid: str, emulator: RunningEmulator
) -> None:
    emulator.set_faults(errors=[{"status": 502, "next": 2}])
    response = post(http, app_uid)

    assert response.status_code == 502
    assert response.headers["content-type"] == "text/html"
    assert response.text == "<html><body>502 Bad Gateway</body></html>"
    # The SDK then fails to read the body as JSON, as FACTS.md says.
    with pytest.raises(json.JSONDecodeError):
        svix_client.message.create(app_uid, MessageIn(event_type="a", payload={}))
    assert emulator.messages() == []


def test_sdk_sees_500_as_http_error(
    svix_client: Svix, app_uid: str, emulator: RunningEmulator
) -> None:
    emulator.set_faults(errors=[{"status": 500, "next": 1}])
    with pytest.raises(HttpError) as caught:
        svix_client.message.create(app_uid, MessageIn(event_type="a", payload={}))
    assert caught.value.status_code == 500


def _statuses_with_probability(
    http: httpx.Client, app: str, emulator: RunningEmulator
) -> list[int]:
    emulator.set_faults(errors=[{"status": 503, "probability": 0.5}], seed=7)
    return [post(http, app, eventId=f"p{n}").status_code for n in range(20)]


def test_probability_errors_are_deterministic_under_a_seed(
    http: httpx.Client, app_uid: str, emulator: RunningEmulator
) -> None:
    first = _statuses_with_probability(http, app_uid, emulator)
    emulator.reset()
    http.post("/api/v1/app", json={"name": "Test app", "uid": app_uid})
    second = _statuses_with_probability(http, app_uid, emulator)

    assert first == second
    assert set(first) == {202, 503}
    assert emulator.stats()["faults_injected"]["error_503"] == first.count(503)


def test_drop_before_store(http: httpx.Client, app_uid: str, emulator: RunningEmulator) -> None:
    emulator.set_faults(drop_before_store={"next": 1})
    with pytest.raises(httpx.TransportError):
        post(http, app_uid, key="k")

    assert emulator.messages() == []
    assert emulator.stats()["faults_injected"]["dropped_before_store"] == 1
    # The client reconnects; with the same key the message is now created once.
    assert post(http, app_uid, key="k").status_code == 202
    assert len(emulator.messages()) == 1


def test_drop_after_store_then_retry_with_the_key(
    http: httpx.Client, app_uid: str, emulator: RunningEmulator
) -> None:
    emulator.set_faults(drop_after_store={"next": 1})
    with pytest.raises(httpx.TransportError):
        post(http, app_uid, key="k")

    stored = emulator.messages()
    assert len(stored) == 1
    retried = post(http, app_uid, key="k")
    assert retried.status_code == 202
    assert retried.json()["id"] == stored[0]["id"]
    stats = emulator.stats()
    assert stats["idempotent_replays"] == 1
    assert stats["faults_injected"]["dropped_after_store"] == 1


def test_drop_after_store_then_retry_without_the_key_conflicts(
    svix_client: Svix, app_uid: str, emulator: RunningEmulator
) -> None:
    emulator.set_faults(drop_after_store={"next": 1})
    message = MessageIn(event_type="a", event_id="evt-9", payload={"id": "src-9"})
    with pytest.raises(httpx.TransportError):
        svix_client.message.create(app_uid, message)
    with pytest.raises(HttpError) as caught:
        svix_client.message.create(app_uid, message)
    assert caught.value.status_code == 409


def test_slow_after_store_then_retry_gets_the_stored_answer(
    emulator: RunningEmulator, exchanges: list[Exchange], app_uid: str
) -> None:
    emulator.set_faults(slow_after_store={"seconds": 1.0, "next": 1})
    with make_http(emulator, exchanges, timeout=0.3) as impatient, pytest.raises(httpx.ReadTimeout):
        post(impatient, app_uid, key="k")
    wait_until(lambda: len(emulator.messages()) == 1)

    with make_http(emulator, exchanges, timeout=10) as patient:
        retried = post(patient, app_uid, key="k")
    assert retried.status_code == 202
    assert retried.json()["id"] == emulator.messages()[0]["id"]
    stats = emulator.stats()
    assert stats["faults_injected"]["slow_after_store"] == 1
    assert stats["idempotent_replays"] == 1
    assert stats["messages_created"] == 1


def test_slow_after_store_times_out_the_sdk(
    emulator: RunningEmulator, exchanges: list[Exchange], app_uid: str
) -> None:
    emulator.set_faults(slow_after_store={"seconds": 1.0, "next": 1})
    client = make_svix(emulator, exchanges, timeout=0.3)
    options = MessageCreateOptions(idempotency_key="k")
    message = MessageIn(event_type="a", payload={"id": "s"})
    with pytest.raises(httpx.ReadTimeout):
        client.message.create(app_uid, message, options)

    client = make_svix(emulator, exchanges, timeout=10)
    assert client.message.create(app_uid, message, options).id == emulator.messages()[0]["id"]


def test_concurrent_requests_with_one_key_make_one_message(
    emulator: RunningEmulator, exchanges: list[Exchange], app_uid: str
) -> None:
    # The first request stays in flight for 0.5 s after storing; the second arrives meanwhile.
    emulator.set_faults(slow_after_store={"seconds": 0.5, "next": 1})
    results: dict[str, httpx.Response] = {}

    def send(name: str) -> None:
        with make_http(emulator, exchanges, timeout=10) as client:
            results[name] = post(client, app_uid, key="shared-key")

    first = threading.Thread(target=send, args=("first",))
    first.start()
    wait_until(lambda: len(emulator.messages()) == 1)
    second = threading.Thread(target=send, args=("second",))
    second.start()
    first.join(10)
    second.join(10)

    assert results["first"].status_code == results["second"].status_code == 202
    assert results["first"].content == results["second"].content
    assert len(emulator.messages()) == 1
    assert emulator.stats()["idempotent_replays"] == 1


def test_latency_delays_every_api_call(
    http: httpx.Client, app_uid: str, emulator: RunningEmulator
) -> None:
    emulator.set_faults(latency_ms=200)
    for path in ("/api/v1/health", f"/api/v1/app/{app_uid}"):
        started = time.monotonic()
        http.get(path)
        assert time.monotonic() - started >= 0.2
    assert emulator.faults()["latency_ms"] == 200


def test_start_up_latency_survives_reset(exchanges: list[Exchange]) -> None:
    with start_emulator(latency_ms=150) as emulator:
        emulator.set_faults()
        assert emulator.faults()["latency_ms"] == 0
        emulator.reset()
        assert emulator.faults()["latency_ms"] == 150
        with make_http(emulator, exchanges) as http:
            started = time.monotonic()
            assert http.get("/api/v1/health").status_code == 204
            assert time.monotonic() - started >= 0.15


def test_faults_apply_only_to_message_creation(
    http: httpx.Client, app_uid: str, emulator: RunningEmulator
) -> None:
    emulator.set_faults(
        errors=[{"status": 500, "probability": 1.0}], drop_before_store={"probability": 1.0}
    )
    assert http.get(f"/api/v1/app/{app_uid}").status_code == 200
    assert http.get(f"/api/v1/app/{app_uid}/msg").status_code == 200
    assert http.post("/api/v1/app", json={"name": "n"}).status_code == 201
    assert post(http, app_uid).status_code == 500


def test_reset_clears_everything(
    http: httpx.Client, app_uid: str, emulator: RunningEmulator
) -> None:
    assert post(http, app_uid, key="k").status_code == 202
    emulator.set_faults(errors=[{"status": 500, "next": 5}])
    emulator.reset()

    assert emulator.messages() == []
    stats = emulator.stats()
    assert stats["requests"] == 0
    assert stats["messages_created"] == 0
    assert set(stats["faults_injected"].values()) == {0}
    assert emulator.faults()["errors"] == []
    assert http.get(f"/api/v1/app/{app_uid}").status_code == 404


def test_fault_config_round_trips(emulator: RunningEmulator) -> None:
    emulator.set_faults(
        latency_ms=5,
        rate_limit={"per_second": 100},
        errors=[{"status": 500, "probability": 0.2}, {"status": 502, "next": 3}],
        drop_before_store={"probability": 0.1},
        drop_after_store={"next": 2},
        slow_after_store={"seconds": 3.0, "probability": 0.05},
        seed=7,
    )
    assert emulator.faults() == {
        "latency_ms": 5.0,
        "rate_limit": {"per_second": 100.0, "burst": 100.0, "retry_after": True},
        "errors": [{"status": 500, "probability": 0.2}, {"status": 502, "next": 3}],
        "drop_before_store": {"probability": 0.1},
        "drop_after_store": {"next": 2},
        "slow_after_store": {"seconds": 3.0, "probability": 0.05},
        "seed": 7,
    }


@pytest.mark.parametrize(
    "config",
    [
        {"errors": [{"status": 404, "next": 1}]},
        {"errors": [{"status": 500}]},
        {"errors": [{"status": 500, "next": 1, "probability": 0.5}]},
        {"errors": {"status": 500}},
        {"drop_before_store": {"probability": 1.5}},
        {"slow_after_store": {"next": 1}},
        {"rate_limit": {"burst": 3}},
        {"rate_limit": {"per_second": "fast"}},
        {"rate_limit": {"per_second": 1, "retry_after": "tomorrow"}},
        {"rate_limit": {"per_second": 1, "retry_after": 1}},
        {"latency_ms": -1},
        {"unknown": 1},
    ],
)
def test_bad_fault_config_is_400(emulator: RunningEmulator, config: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="400"):
        emulator.set_faults(**config)
    assert emulator.faults()["errors"] == []


# Every shape a Svix 429's Retry-After might take (FACTS.md: its form is unconfirmed), for a
# wait of 0.25 s until the next token, at 2015-10-21T07:28:00.5Z.
RETRY_AFTER_SHAPES = {
    "seconds": "1",  # whole seconds, at least 1: the only form HTTP allows
    "fractional": "0.250",
    "zero": "0",
    "negative": "-1",
    "http-date": "Wed, 21 Oct 2015 07:28:01 GMT",  # the next whole second
    "garbage": "soon",
    "hours": "7200",
    "absent": None,
}


@pytest.mark.parametrize(("form", "header"), sorted(RETRY_AFTER_SHAPES.items()))
def test_every_retry_after_shape_can_be_asked_for(form: str, header: str | None) -> None:
    state = FaultState(parse_faults({"rate_limit": {"per_second": 4, "retry_after": form}}), 0)
    assert state.retry_after_header(0.25, wall_clock=1445412480.5) == header


def test_the_retry_after_forms_are_the_ones_documented() -> None:
    assert set(RETRY_AFTER_FORMS) == set(RETRY_AFTER_SHAPES)


@pytest.mark.parametrize(
    ("given", "shown"),
    [(True, True), (False, False), ("seconds", True), ("absent", False), ("hours", "hours")],
)
def test_retry_after_round_trips_as_a_boolean_for_the_two_original_forms(
    emulator: RunningEmulator, given: bool | str, shown: bool | str
) -> None:
    emulator.set_faults(rate_limit={"per_second": 10, "burst": 2, "retry_after": given})
    assert emulator.faults()["rate_limit"] == {
        "per_second": 10.0,
        "burst": 2.0,
        "retry_after": shown,
    }


def test_retry_after_form_and_bucket_from_the_command_line() -> None:
    args = _parser({}).parse_args(
        ["--rate-limit", "100/s", "--rate-limit-burst", "20", "--retry-after", "http-date"]
    )
    assert faults_from_args(args) == {
        "rate_limit": {"per_second": 100.0, "burst": 20.0, "retry_after": "http-date"}
    }
    env = {"SVIX_EMULATOR_RATE_LIMIT": "100", "SVIX_EMULATOR_RETRY_AFTER": "zero"}
    assert faults_from_args(_parser(env).parse_args([]))["rate_limit"]["retry_after"] == "zero"
    with pytest.raises(SystemExit):
        _parser({}).parse_args(["--retry-after", "tomorrow"])


@pytest.mark.parametrize(
    "form",
    RETRY_AFTER_SHAPES,
)
def test_a_429_carries_the_retry_after_shape_asked_for(
    http: httpx.Client, app_uid: str, emulator: RunningEmulator, form: str
) -> None:
    emulator.set_faults(rate_limit={"per_second": 4, "burst": 1, "retry_after": form})
    assert post(http, app_uid, eventId="e0").status_code == 202
    limited = post(http, app_uid, eventId="e1")
    assert limited.status_code == 429
    header = limited.headers.get("retry-after")
    if form == "fractional":
        assert header is not None and 0 < float(header) <= 0.25
    elif form == "http-date":
        assert header is not None and header.endswith(" GMT")
    else:
        assert header == RETRY_AFTER_SHAPES[form]
