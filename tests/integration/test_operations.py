"""Parking poison events, replay and reconcile, against the Pub/Sub and Svix emulators."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT, own_events, push_envelope, run_python, unique_name

EVENTS = own_events()
USER = EVENTS["user-created"]
PAYMENT = EVENTS["payment-succeeded-with-previous"]
TYPELESS = {"object": "event", "id": "evt_typeless_1", "project": "acme-mobile", "data": {}}


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_python(["-m", "relay", *args], env)


@pytest.fixture
def cli_env(relay_env: dict[str, str], pubsub: Any) -> dict[str, str]:
    return {**relay_env, **pubsub.env()}


@pytest.fixture
def parking(pubsub: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """A parking topic with a pull subscription, and the relay's clients pointed at the emulator."""
    for name, value in pubsub.env().items():
        monkeypatch.setenv(name, value)
    topic = pubsub.create_topic(unique_name("parking"))
    subscription = pubsub.create_pull_subscription(unique_name("parking-sub"), topic)
    return topic, subscription


def test_a_poison_event_is_parked_and_acked_while_the_rest_is_delivered(
    make_relay: Any, svix: Any, pubsub: Any, parking: tuple[str, str]
):
    topic, subscription = parking
    relay = make_relay(RELAY_PARKING_TOPIC=topic)
    envelope = push_envelope([USER, TYPELESS], attributes={"origin": "billing"})
    response = relay.post("/", data=json.dumps(envelope))
    assert response.status_code == 200, response.get_json()
    assert [e["outcome"] for e in response.get_json()["events"]] == ["delivered", "parked"]
    (parked,) = pubsub.pull_all(subscription, quiet_seconds=0.5, timeout=20, min_messages=1)
    assert json.loads(parked.data) == TYPELESS
    assert parked.attributes["relay_event_id"] == "evt_typeless_1"
    assert parked.attributes["relay_parked_reason"] == "event has no `type`"
    assert parked.attributes["origin"] == "billing"
    assert len(svix.messages()) == 1


def test_an_unreadable_message_is_parked_whole_with_its_original_bytes(
    make_relay: Any, pubsub: Any, parking: tuple[str, str], capsys: Any
):
    topic, subscription = parking
    relay = make_relay(RELAY_PARKING_TOPIC=topic)
    envelope = push_envelope(b"\x00 not json at all", message_id="555")
    response = relay.post("/", data=json.dumps(envelope))
    assert response.status_code == 200
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    (logged,) = [line for line in lines if line.get("pubsub_message_id") == "555"]
    assert (logged["severity"], logged["outcome"]) == ("ERROR", "parked")
    (parked,) = pubsub.pull_all(subscription, quiet_seconds=0.5, timeout=20, min_messages=1)
    assert parked.data == b"\x00 not json at all"
    assert "not JSON" in parked.attributes["relay_parked_reason"]


def test_when_parking_fails_the_message_is_nacked(make_relay: Any, svix: Any, parking: Any):
    relay = make_relay(RELAY_PARKING_TOPIC="projects/test-project/topics/no-such-topic")
    response = relay.post("/", data=json.dumps(push_envelope([USER, TYPELESS])))
    assert response.status_code == 503
    body = response.get_json()
    assert body["events"][1]["outcome"] == "failed"
    assert "parking it failed" in body["events"][1]["reason"]


def _dead_letter_with(pubsub: Any, messages: list[tuple[bytes, dict[str, str]]]) -> str:
    topic = pubsub.create_topic(unique_name("dead-letter"))
    subscription = pubsub.create_pull_subscription(unique_name("dead-letter-sub"), topic)
    pubsub.publish(topic, messages)
    return subscription


def test_replay_delivers_acks_only_what_reached_svix_and_is_idempotent(
    cli_env: dict[str, str], svix: Any, pubsub: Any
):
    subscription = _dead_letter_with(
        pubsub,
        [
            (json.dumps(USER).encode(), {}),
            (json.dumps([PAYMENT, EVENTS["porting-updated-no-id"]]).encode(), {}),
            (json.dumps(TYPELESS).encode(), {"relay_event_id": "evt_typeless_1"}),
        ],
    )
    dry = run_cli(["replay", "--subscription", subscription, "--dry-run"], cli_env)
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["outcomes"] == {"would_send": 3, "invalid": 1}
    assert svix.messages() == []

    first = run_cli(["replay", "--subscription", subscription], cli_env)
    assert first.returncode == 1  # the typeless event cannot be delivered
    summary = json.loads(first.stdout)
    assert summary["acknowledged"] == 2
    assert summary["left_in_subscription"] == 1
    assert summary["outcomes"] == {"delivered": 3, "rejected": 1}
    assert "replaying" in first.stderr  # the progress bar
    assert len(svix.messages()) == 3

    left = pubsub.pull_all(subscription, quiet_seconds=0.5, timeout=20, min_messages=1)
    assert [json.loads(m.data)["id"] for m in left] == ["evt_typeless_1"]


def test_replay_from_a_file_sends_only_what_svix_lacks(
    cli_env: dict[str, str], relay: Any, svix: Any, tmp_path: Path
):
    assert relay.post("/", data=json.dumps(push_envelope(USER))).status_code == 200
    events_file = tmp_path / "events.jsonl"
    events_file.write_text(json.dumps(USER) + "\n\n" + json.dumps(PAYMENT) + "\n")
    result = run_cli(["replay", "--file", str(events_file)], cli_env)
    assert result.returncode == 0, result.stderr
    # The user event was already there: found by its eventId first, and not sent again.
    assert json.loads(result.stdout)["outcomes"] == {"found": 1, "delivered": 1}
    assert len(svix.messages()) == 2
    assert svix.stats()["idempotent_replays"] == 0


def test_reconcile_reports_missing_events_and_messages_without_source(
    cli_env: dict[str, str], relay: Any, svix: Any, tmp_path: Path
):
    from svix.api import MessageIn, Svix, SvixOptions

    assert relay.post("/", data=json.dumps([USER, PAYMENT])).status_code == 200
    Svix(svix.token, SvixOptions(server_url=svix.url)).message.create(
        "acme-mobile", MessageIn(event_type="user.deleted", event_id="evt_stranger", payload={})
    )
    never_sent = {**USER, "id": "evt_never_sent"}
    events_file = tmp_path / "source.jsonl"
    events_file.write_text("\n".join(json.dumps(e) for e in [USER, PAYMENT, never_sent]))
    report_file = tmp_path / "report.json"
    args = ["reconcile", "--events-file", str(events_file), "--since", "2026-01-01T00:00:00Z"]
    result = run_cli([*args, "--json", str(report_file)], cli_env)
    assert result.returncode == 1, result.stderr
    assert "MISSING IN SVIX" in result.stdout
    report = json.loads(report_file.read_text())
    assert report["expected_events"] == 3
    assert report["found_in_svix"] == 2
    assert [e["event_id"] for e in report["missing_in_svix"]] == ["evt_never_sent"]
    assert [m["event_id"] for m in report["messages_without_source_event"]] == ["evt_stranger"]

    other_app = {**PAYMENT, "id": "evt_app_never_used", "project": "project-without-messages"}
    events_file.write_text(json.dumps(other_app))
    result = run_cli([*args, "--json", str(report_file)], cli_env)
    assert result.returncode == 1, result.stderr  # an application Svix does not know: all missing
    assert [e["event_id"] for e in json.loads(report_file.read_text())["missing_in_svix"]] == [
        "evt_app_never_used"
    ]

    complete = tmp_path / "complete.jsonl"
    complete.write_text("\n".join(json.dumps(e) for e in [USER, PAYMENT]))
    ok = run_cli(
        ["reconcile", "--events-file", str(complete), "--since", "2026-01-01T00:00:00Z"], cli_env
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr


def test_reconcile_reads_a_subscription_without_consuming_it(
    cli_env: dict[str, str], relay: Any, svix: Any, pubsub: Any
):
    assert relay.post("/", data=json.dumps(USER)).status_code == 200
    subscription = _dead_letter_with(pubsub, [(json.dumps(USER).encode(), {})])
    args = ["reconcile", "--subscription", subscription, "--since", "2026-01-01T00:00:00Z"]
    result = run_cli(args, cli_env)
    assert result.returncode == 0, result.stdout + result.stderr
    still_there = pubsub.pull_all(subscription, quiet_seconds=0.5, timeout=20, min_messages=1)
    assert len(still_there) == 1


def test_the_cli_names_a_missing_setting(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SVIX_", "RELAY_"))}
    result = subprocess.run(
        [sys.executable, "-m", "relay", "replay", "--file", str(tmp_path / "x.jsonl")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "SVIX_AUTH_TOKEN is required" in result.stderr


def test_replay_from_a_subscription_that_does_not_exist_says_so(cli_env: dict[str, str]):
    result = run_cli(
        ["replay", "--subscription", "projects/test-project/subscriptions/nope"], cli_env
    )
    assert result.returncode == 2
    assert "Pub/Sub pull on projects/test-project/subscriptions/nope failed" in result.stderr
    assert "Traceback" not in result.stderr


def test_draining_holds_what_it_pulled_and_never_yields_a_message_twice(pubsub: Any):
    from relay.pubsub.pull import SubscriptionReader

    subscription = _dead_letter_with(pubsub, [(f"m{n}".encode(), {}) for n in range(12)])
    with pytest.MonkeyPatch.context() as env:
        for name, value in pubsub.env().items():
            env.setenv(name, value)
        reader = SubscriptionReader(subscription)
        drained = list(reader.drain(batch=5))
        assert sorted(m.data for m in drained) == sorted(f"m{n}".encode() for n in range(12))
        assert pubsub.pull(subscription) == []  # held, not handed to anyone else meanwhile
        reader.release([m.ack_id for m in drained])
        reader.close()
    assert len(pubsub.pull_all(subscription, quiet_seconds=0.5, timeout=20, min_messages=12)) == 12
