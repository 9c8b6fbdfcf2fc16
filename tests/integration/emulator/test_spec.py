"""Conformance with Svix's OpenAPI spec (../shared/svix/openapi.json): a scripted set of
requests checked with jsonschema, then schemathesis fuzzing of the implemented operations."""

from __future__ import annotations

import itertools
import os
from typing import Any

import httpx
import pytest
import requests
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from svix_emulator.spec import IMPLEMENTED, SPEC_PATH, SpecChecker
from svix_emulator.testing import RunningEmulator
from tests.support.emulator import SPEC_ABSENT_REASON, Exchange, spec_problems

pytestmark = [
    pytest.mark.shared,
    pytest.mark.skipif(not SPEC_PATH.exists(), reason=SPEC_ABSENT_REASON),
]

KNOWN_APP = "known-app"
KNOWN_EVENT_ID = "known-event"
# A deeper, random (not derandomized) run: EMULATOR_FUZZ_EXAMPLES=1000 pytest tests/emulator.
DEEP_EXAMPLES = int(os.environ.get("EMULATOR_FUZZ_EXAMPLES", "0"))
EXAMPLES_PER_OPERATION = DEEP_EXAMPLES or 50


@pytest.fixture
def checker(spec_checker: SpecChecker | None) -> SpecChecker:
    assert spec_checker is not None
    return spec_checker


def test_implemented_operations_are_in_the_spec(checker: SpecChecker) -> None:
    for (method, path), operation_id in IMPLEMENTED.items():
        assert checker.spec["paths"][path][method.lower()]["operationId"] == operation_id


# (method, path, JSON body or None, whether the request is valid per the spec)
SCENARIO: list[tuple[str, str, Any, bool]] = [
    ("GET", "/api/v1/health", None, True),
    ("POST", "/api/v1/app", {"name": "Shop", "uid": "shop"}, True),
    ("POST", "/api/v1/app?get_if_exists=true", {"name": "Shop", "uid": "shop"}, True),
    ("POST", "/api/v1/app", {"name": "Shop", "uid": "shop"}, True),  # 409
    ("POST", "/api/v1/app", {"name": "", "uid": "bad uid"}, False),
    ("POST", "/api/v1/app", {"uid": "nameless"}, False),
    ("GET", "/api/v1/app/shop", None, True),
    ("GET", "/api/v1/app/missing", None, True),  # 404
    ("GET", "/api/v1/app/bad%20id", None, False),
    ("POST", "/api/v1/app/shop/msg", {"eventType": "a.b", "eventId": "e1", "payload": {}}, True),
    (
        "POST",
        "/api/v1/app/shop/msg?with_content=false",
        {
            "eventType": "a.b",
            "eventId": "e2",
            "payload": {"id": "x", "nested": [1, {"k": None}]},
            "channels": ["c1", "c:2"],
            "tags": ["t/1"],
            "payloadRetentionPeriod": 90,
            "payloadRetentionHours": 24,
            "deliverAt": "2030-01-01T00:00:00+02:00",
            "transformationsParams": {},
        },
        True,
    ),
    ("POST", "/api/v1/app/shop/msg", {"eventType": "a.b", "eventId": "e1", "payload": {}}, True),
    ("POST", "/api/v1/app/shop/msg", {"eventType": "a.b", "eventId": "e:1", "payload": {}}, False),
    ("POST", "/api/v1/app/shop/msg", {"payload": {}}, False),
    ("POST", "/api/v1/app/shop/msg", {"eventType": "a.b", "payload": "text"}, False),
    ("POST", "/api/v1/app/shop/msg", {"eventType": "a.b", "payload": {}, "tags": [1]}, False),
    ("POST", "/api/v1/app/shop/msg", {"eventType": "a", "payload": {"b": "x" * 2**20}}, True),
    ("POST", "/api/v1/app/missing/msg", {"eventType": "a", "payload": {}}, True),  # 404
    (
        "POST",
        "/api/v1/app/auto/msg",
        {"eventType": "a", "payload": {}, "application": {"name": "Auto", "uid": "auto"}},
        True,
    ),
    ("GET", "/api/v1/app/shop/msg", None, True),
    ("GET", "/api/v1/app/shop/msg?limit=1&event_types=a.b&channel=c1&tag=t%2F1", None, True),
    ("GET", "/api/v1/app/shop/msg?after=2020-01-01T00:00:00Z&with_content=false", None, True),
    ("GET", "/api/v1/app/shop/msg?limit=1000", None, False),
    ("GET", "/api/v1/app/shop/msg?before=yesterday", None, False),
    ("GET", "/api/v1/app/missing/msg", None, True),  # 404
    ("GET", "/api/v1/app/shop/msg/e1", None, True),
    ("GET", "/api/v1/app/shop/msg/e1?with_content=false", None, True),
    ("GET", "/api/v1/app/shop/msg/nope", None, True),  # 404
    ("GET", "/api/v1/app/shop/msg/e1?with_content=2", None, False),
]


def test_scripted_requests_conform(
    checker: SpecChecker, http: httpx.Client, exchanges: list[Exchange]
) -> None:
    for method, target, body, valid in SCENARIO:
        response = http.request(method, target, json=body)
        assert response.status_code < 500, (method, target, response.text)
        ex = exchanges[-1]
        found = checker.operation(method, ex.raw_path)
        assert found is not None
        template, params = found
        problems = checker.request_problems(
            method, template, params, ex.query, body, body is not None
        )
        assert (not problems) == valid, (method, target, problems)
    statuses = [ex.status for ex in exchanges]
    assert {200, 201, 202, 204, 404, 409, 413, 422} <= set(statuses)
    assert spec_problems(checker, exchanges) == []


def test_unauthorized_and_rate_limited_answers_conform(
    checker: SpecChecker, http: httpx.Client, exchanges: list[Exchange], emulator: RunningEmulator
) -> None:
    http.post("/api/v1/app", json={"name": "n", "uid": "app"})
    emulator.set_faults(rate_limit={"per_second": 0.01, "burst": 1})
    http.post("/api/v1/app/app/msg", json={"eventType": "a", "payload": {}})
    http.post("/api/v1/app/app/msg", json={"eventType": "a", "payload": {}})
    http.headers["authorization"] = "Bearer wrong"
    for path in ("/api/v1/app/app", "/api/v1/app/app/msg", "/api/v1/app/app/msg/x"):
        http.get(path)

    assert [ex.status for ex in exchanges] == [201, 202, 429, 401, 401, 401]
    assert spec_problems(checker, exchanges) == []


@pytest.fixture(scope="module")
def fuzz_schema() -> Any:
    import schemathesis

    schema = schemathesis.openapi.from_path(str(SPEC_PATH))
    return schema.include(operation_id=list(IMPLEMENTED.values()))


# Health takes no input at all, so there is nothing to make invalid.
FUZZ_RUNS = [
    (operation_id, mode)
    for operation_id in sorted(IMPLEMENTED.values())
    for mode in ("positive", "negative")
    if (operation_id, mode) != ("v1.health.get", "negative")
]


@pytest.mark.parametrize(("operation_id", "mode"), FUZZ_RUNS)
def test_schemathesis_finds_nothing(
    fuzz_schema: Any, shared_emulator: RunningEmulator, operation_id: str, mode: str
) -> None:
    """Generated requests (valid ones, then invalid ones) never get a 5xx, an undocumented status
    or a body off the schema, and invalid ones are refused."""
    from schemathesis import GenerationMode
    from schemathesis.core.parameters import ParameterLocation
    from schemathesis.specs.openapi.checks import negative_data_rejection

    emulator = shared_emulator
    emulator.reset()
    session = requests.Session()
    session.trust_env = False
    auth = {"Authorization": f"Bearer {emulator.token}"}
    session.post(
        f"{emulator.url}/api/v1/app", json={"name": "Known", "uid": KNOWN_APP}, headers=auth
    )
    known_message = session.post(
        f"{emulator.url}/api/v1/app/{KNOWN_APP}/msg",
        json={"eventType": "known", "eventId": KNOWN_EVENT_ID, "payload": {"id": 1}},
        headers=auth,
    ).json()["id"]
    keys = itertools.count()
    requests_before = emulator.stats()["requests"]
    operation = fuzz_schema.find_operation_by_id(operation_id)
    strategy = operation.as_strategy(generation_mode=GenerationMode(mode))

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=not DEEP_EXAMPLES,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy, aim=st.sampled_from([None, KNOWN_EVENT_ID, known_message]))
    def run(case: Any, aim: str | None) -> None:
        negative_path = case.meta.is_negative_at(ParameterLocation.PATH)
        negative_headers = case.meta.is_negative_at(ParameterLocation.HEADER)
        # Random app ids almost never exist; send most valid ones to a real app and message so
        # the 2xx answers get checked too.
        if aim is not None and not negative_path:
            if "app_id" in case.path_parameters:
                case.path_parameters["app_id"] = KNOWN_APP
            if "msg_id" in case.path_parameters:
                case.path_parameters["msg_id"] = aim
        # Svix refuses to create an app from `application` unless its uid is the path's app id,
        # a rule the spec cannot express: keep generated valid bodies within it.
        body = case.body if isinstance(case.body, dict) else {}
        if not case.meta.is_negative_at(ParameterLocation.BODY) and isinstance(
            body.get("application"), dict
        ):
            body["application"]["uid"] = case.path_parameters["app_id"]
        # A key reused by chance would replay an earlier answer to a different body.
        if not negative_headers and case.headers and "idempotency-key" in case.headers:
            case.headers["idempotency-key"] = f"fuzz-{next(keys)}"
        mutations = getattr(case.meta.phase.data, "mutations", ())
        # Svix ignores query parameters it does not know, and so does the emulator.
        only_unknown_query = bool(mutations) and all(
            m.parameter_location == ParameterLocation.QUERY
            and m.keywords == ("additionalProperties",)
            for m in mutations
        )
        case.call_and_validate(
            base_url=emulator.url,
            session=session,
            # Negated headers may have dropped or mangled the token: keep what was generated.
            headers=None if negative_headers else auth,
            excluded_checks=[negative_data_rejection] if only_unknown_query else None,
        )

    try:
        run()
    finally:
        session.close()
    assert emulator.stats()["requests"] > requests_before
