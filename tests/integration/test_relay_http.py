"""The relay function run for real (loaded as functions-framework loads it) against the local
Svix emulator over HTTP, with the real svix SDK: deliveries, redeliveries and every failure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from relay.core.events import public_payload
from tests.support import own_events, push_envelope, shared_path

EVENTS = own_events()
USER = EVENTS["user-created"]
# One attempt only: the first backoff is longer than the whole budget.
ONE_ATTEMPT = {
    "RELAY_TIME_BUDGET_SECONDS": "0.2",
    "RELAY_BACKOFF_INITIAL_SECONDS": "1",
    "RELAY_BACKOFF_MAX_SECONDS": "1",
}


@pytest.fixture(params=["direct", "sdk"])
def relay_env(relay_env: dict[str, str], request: pytest.FixtureRequest) -> dict[str, str]:
    """Every test here runs with both senders: the SDK's models are the contract of both."""
    return {**relay_env, "RELAY_SVIX_CLIENT": request.param}


def post(client: Any, body: object, path: str = "/", headers: dict[str, str] | None = None) -> Any:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(path, data=data, headers=headers or {"Content-Type": "application/json"})


def outcomes(response: Any) -> list[str]:
    return [event["outcome"] for event in response.get_json()["events"]]


def test_the_fixture_events_each_become_one_message(relay: Any, svix: Any):
    folder = shared_path("fixtures", "gigs-events")
    events = [json.loads(p.read_text()) for p in sorted(Path(folder).glob("*.json"))]
    assert len(events) == 50
    for n, event in enumerate(events):
        response = post(relay, push_envelope(event, message_id=str(5000 + n)))
        assert response.status_code == 200, response.get_json()
        assert outcomes(response) == ["delivered"]
    stored = svix.messages()
    assert len(stored) == 50
    assert {m["eventId"] for m in stored} == {e["id"] for e in events}
    by_id = {m["eventId"]: m for m in stored}
    for event in events:
        assert by_id[event["id"]]["payload"] == public_payload(event)
        assert by_id[event["id"]]["eventType"] == event["type"]
    assert svix.stats()["duplicate_source_events"] == 0


def test_own_events_in_one_array_go_to_their_projects_applications(relay: Any, svix: Any):
    response = post(relay, push_envelope(list(EVENTS.values())))
    assert response.status_code == 200
    body = response.get_json()
    assert body["counts"] == {"delivered": 4}
    assert {e["app_id"] for e in body["events"]} == {"acme-mobile", "beta-telco"}
    assert svix.stats()["messages_per_app"] == {"acme-mobile": 3, "beta-telco": 1}
    prefixed = svix.messages("acme-mobile")
    assert "subscription.activated" in {m["eventType"] for m in prefixed}


def test_a_redelivered_push_creates_no_second_message(relay: Any, svix: Any):
    envelope = push_envelope([USER, EVENTS["porting-updated-no-id"]], message_id="7")
    first = post(relay, envelope)
    again = post(relay, envelope)
    assert first.status_code == again.status_code == 200
    assert len(svix.messages()) == 2
    stats = svix.stats()
    assert stats["idempotent_replays"] == 2
    assert stats["duplicate_source_events"] == 0
    assert [e["svix_message_id"] for e in first.get_json()["events"]] == [
        e["svix_message_id"] for e in again.get_json()["events"]
    ]


def test_the_same_event_posted_directly_and_pushed_is_one_message(relay: Any, svix: Any):
    assert post(relay, USER, path="/notifications").status_code == 200
    assert post(relay, push_envelope(USER)).status_code == 200
    assert len(svix.messages()) == 1


def test_one_transient_failure_answers_503_and_the_redelivery_completes_without_duplicates(
    make_relay: Any, svix: Any
):
    relay = make_relay(**ONE_ATTEMPT, RELAY_MAX_IN_FLIGHT="1")
    envelope = push_envelope(list(EVENTS.values()), message_id="8")
    svix.set_faults(errors=[{"status": 500, "next": 1}])
    first = post(relay, envelope)
    assert first.status_code == 503
    assert sorted(outcomes(first)) == ["delivered", "delivered", "delivered", "failed"]
    assert "Svix is unavailable" in first.get_json()["error"]
    second = post(relay, envelope)
    assert second.status_code == 200
    assert len(svix.messages()) == 4
    assert svix.stats()["duplicate_source_events"] == 0


def test_a_transient_failure_is_retried_within_the_budget(relay: Any, svix: Any):
    svix.set_faults(errors=[{"status": 503, "next": 2}])
    response = post(relay, push_envelope(USER))
    assert response.status_code == 200
    assert response.get_json()["events"][0]["outcome"] == "delivered"
    assert len(svix.messages()) == 1


def test_an_html_502_is_a_transient_failure(make_relay: Any, svix: Any):
    svix.set_faults(errors=[{"status": 502, "next": 1}])
    failing = make_relay(**ONE_ATTEMPT)
    response = post(failing, push_envelope(USER))
    assert response.status_code == 503
    assert "not JSON" in response.get_json()["events"][0]["reason"]
    svix.set_faults(errors=[{"status": 502, "next": 1}])
    retrying = make_relay()
    assert post(retrying, push_envelope(USER)).status_code == 200
    assert len(svix.messages()) == 1


@pytest.mark.parametrize("fault", ["drop_after_store", "slow_after_store"])
def test_a_message_stored_by_svix_whose_answer_was_lost_is_not_duplicated(
    relay: Any, svix: Any, fault: str
):
    spec: dict[str, Any] = {"next": 1}
    if fault == "slow_after_store":
        spec["seconds"] = 1.5  # past the relay's 1 s client timeout
    svix.set_faults(**{fault: spec})
    response = post(relay, push_envelope(USER))
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["events"][0]["outcome"] in ("delivered", "duplicate")
    assert len(svix.messages()) == 1
    assert (
        svix.stats()["faults_injected"][
            {"drop_after_store": "dropped_after_store"}.get(fault, fault)
        ]
        == 1
    )


def test_a_dropped_connection_before_storing_is_retried(relay: Any, svix: Any):
    svix.set_faults(drop_before_store={"next": 1})
    assert post(relay, push_envelope(USER)).status_code == 200
    assert len(svix.messages()) == 1


@pytest.mark.parametrize("retry_after", [True, False])
def test_rate_limits_are_waited_out_within_the_budget(relay: Any, svix: Any, retry_after: bool):
    svix.set_faults(rate_limit={"per_second": 4, "burst": 2, "retry_after": retry_after})
    response = post(relay, push_envelope(list(EVENTS.values())))
    assert response.status_code == 200, response.get_json()
    assert len(svix.messages()) == 4
    assert svix.stats()["faults_injected"]["rate_limited"] >= 1


def test_a_rate_limit_past_the_budget_answers_429_with_retry_after(make_relay: Any, svix: Any):
    relay = make_relay(RELAY_TIME_BUDGET_SECONDS="0.5")
    svix.set_faults(rate_limit={"per_second": 0.2, "burst": 1, "retry_after": True})
    response = post(relay, push_envelope([USER, EVENTS["payment-succeeded-with-previous"]]))
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) >= 1
    assert sorted(outcomes(response)) == ["delivered", "rate_limited"]


def test_a_409_for_our_event_id_means_already_delivered(relay: Any, svix: Any):
    from svix.api import ApplicationIn, MessageIn, Svix, SvixOptions

    Svix(svix.token, SvixOptions(server_url=svix.url, retry_schedule=[])).message.create(
        "acme-mobile",
        MessageIn(
            event_type="user.created",
            event_id=USER["id"],
            payload=public_payload(USER),
            application=ApplicationIn(name="acme-mobile", uid="acme-mobile"),
        ),
    )
    response = post(relay, push_envelope(USER))
    assert response.status_code == 200
    assert outcomes(response) == ["duplicate"]
    assert response.get_json()["events"][0]["svix_message_id"] == svix.messages()[0]["id"]
    assert svix.stats()["conflicts"] == 1
    assert len(svix.messages()) == 1


def test_a_409_about_something_else_is_retried_until_the_message_is_there(relay: Any, svix: Any):
    svix.set_faults(errors=[{"status": 409, "next": 1}])
    response = post(relay, push_envelope(USER))
    assert response.status_code == 200
    assert outcomes(response) == ["delivered"]
    assert len(svix.messages()) == 1


def test_a_422_from_svix_is_permanent_and_names_the_event(relay: Any, svix: Any):
    bad = {**USER, "id": "evt_long_type", "type": "t" * 300}
    response = post(relay, push_envelope([USER, bad]))
    assert response.status_code == 422
    body = response.get_json()
    assert "evt_long_type" in body["error"]
    assert body["events"][1]["outcome"] == "rejected"
    assert "422" in body["events"][1]["reason"]
    assert len(svix.messages()) == 1


def test_an_event_without_type_is_refused_with_4xx(relay: Any, svix: Any):
    response = post(relay, push_envelope({"object": "event", "id": "evt_typeless", "project": "p"}))
    assert response.status_code == 422
    assert "evt_typeless: event has no `type`" in response.get_json()["error"]
    assert svix.messages() == []


def test_a_payload_over_one_mebibyte_answers_413(relay: Any, svix: Any):
    big = {**USER, "id": "evt_big", "data": {"blob": "x" * (1024 * 1024)}}
    response = post(relay, push_envelope(big))
    assert response.status_code == 413
    assert "evt_big" in response.get_json()["error"]
    assert svix.messages() == []


def test_invalid_credentials_answer_503_and_log_an_error(make_relay: Any, svix: Any, capsys: Any):
    relay = make_relay(SVIX_AUTH_TOKEN="sk_wrong_token_for_test")
    response = post(relay, push_envelope(USER))
    assert response.status_code == 503
    assert svix.stats()["unauthorized"] == 1  # not retried: a token does not fix itself in seconds
    assert "credentials" in response.get_json()["events"][0]["reason"]
    assert "sk_wrong_token_for_test" not in response.get_data(as_text=True)
    lines = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")
    ]
    errors = [line for line in lines if line["severity"] == "ERROR"]
    assert any("SVIX_AUTH_TOKEN" in line["message"] for line in errors)
    assert all("sk_wrong_token_for_test" not in json.dumps(line) for line in lines)


def test_an_unknown_fixed_application_answers_503(make_relay: Any, svix: Any):
    relay = make_relay(**ONE_ATTEMPT, SVIX_APP_ID="app_that_does_not_exist")
    response = post(relay, push_envelope(USER))
    assert response.status_code == 503
    assert "SVIX_APP_ID" in response.get_json()["events"][0]["reason"]


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b"", 400, "empty"),
        (b"{oops", 400, "not JSON"),
        (b"[1, 2", 400, "not JSON"),
        (b"42", 400, "got a number"),
        (json.dumps({"subscription": "projects/p/subscriptions/s"}).encode(), 400, "no `message`"),
        (json.dumps({"message": {"data": "!!!", "messageId": "1"}}).encode(), 400, "base64"),
        (json.dumps({"message": {"messageId": "1"}}).encode(), 400, "no data"),
    ],
)
def test_malformed_requests_get_400_with_a_reason(
    relay: Any, svix: Any, body: bytes, status: int, error: str
):
    response = post(relay, body)
    assert response.status_code == status
    assert error in response.get_json()["error"]
    assert svix.messages() == []


def test_a_request_over_the_size_limit_gets_413(make_relay: Any):
    relay = make_relay(RELAY_MAX_REQUEST_BYTES="2048")
    response = post(relay, push_envelope([USER, USER, USER]))
    assert response.status_code == 413
    assert "over the limit of 2048 bytes" in response.get_json()["error"]


def test_methods_and_paths(relay: Any):
    assert relay.get("/").get_json()["status"] == "ok"
    put = relay.put("/", data=b"{}")
    assert put.status_code == 405 and put.headers["Allow"] == "POST"
    assert relay.post("/elsewhere", data=b"{}").status_code == 404


def test_an_empty_array_is_nothing_to_do(relay: Any):
    response = post(relay, [])
    assert response.status_code == 200
    assert response.get_json()["counts"] == {}


def test_unwrapped_push_with_form_content_type(relay: Any, svix: Any):
    response = relay.post(
        "/",
        data=json.dumps(USER).encode(),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "x-goog-pubsub-message-id": "31",
            "x-goog-pubsub-subscription-name": "projects/p/subscriptions/s",
        },
    )
    assert response.status_code == 200
    assert len(svix.messages()) == 1


def test_one_log_line_per_event_with_ids_and_never_personal_data(
    relay: Any, svix: Any, capsys: Any
):
    capsys.readouterr()
    headers = {"Content-Type": "application/json", "X-Cloud-Trace-Context": "abc123def/1;o=1"}
    post(relay, push_envelope(USER, message_id="99", delivery_attempt=2), headers=headers)
    output = capsys.readouterr().out
    lines = [json.loads(line) for line in output.splitlines()]
    (line,) = [entry for entry in lines if entry.get("event_id") == USER["id"]]
    assert line["severity"] == "INFO"
    assert line["outcome"] == "delivered"
    assert line["event_type"] == "user.created"
    assert line["app_id"] == "acme-mobile"
    assert line["pubsub_message_id"] == "99"
    assert line["delivery_attempt"] == 2
    assert line["svix_message_id"].startswith("msg_")
    assert line["attempts"] == 1
    assert "latency_ms" in line
    assert line["logging.googleapis.com/trace"] == "projects/test-project/traces/abc123def"
    assert USER["data"]["email"] not in output
    assert USER["data"]["fullName"] not in output
    assert svix.token not in output


def test_text_logs_for_people(make_relay: Any, capsys: Any):
    relay = make_relay(RELAY_LOG_FORMAT="text")
    post(relay, push_envelope(USER))
    output = capsys.readouterr().out
    assert f"INFO    event {USER['id']} delivered" in output
