"""Redeliveries and replays after Svix's dedup windows, on the emulator's clock: past 12 hours the
idempotency key is forgotten, past 24 the eventId too. Each test ends with exactly one Svix
message per event."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support import own_events, push_envelope, run_python, unique_name
from tests.support.servers import LookupsFail

EVENTS = own_events()
USER = EVENTS["user-created"]
PAYMENT = EVENTS["payment-succeeded-with-previous"]
SUBSCRIPTION = EVENTS["subscription-activated-prefixed"]
HOUR = 3600
FIXED_APP = "gigs-all-projects"


def run_replay(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_python(["-m", "relay", "replay", *args], env)


def replay_file(
    tmp_path: Path, env: dict[str, str], *lines: object, dry_run: bool = False
) -> tuple[int, dict[str, Any]]:
    events_file = tmp_path / "events.jsonl"
    events_file.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = run_replay(["--file", str(events_file), *(["--dry-run"] if dry_run else [])], env)
    assert result.stdout, result.stderr
    return result.returncode, json.loads(result.stdout)


def one_message_per_event(svix: Any, *events: dict[str, Any], app: str | None = None) -> None:
    stored = svix.messages(app)
    assert sorted(m["payload"]["id"] for m in stored) == sorted(e["id"] for e in events)
    assert svix.stats()["duplicate_source_events"] == 0


@pytest.mark.parametrize("client", ["direct", "sdk"])
def test_a_redelivery_after_13_hours_is_a_duplicate(make_relay: Any, svix: Any, client: str):
    relay = make_relay(RELAY_SVIX_CLIENT=client)
    envelope = json.dumps(push_envelope(USER))
    first = relay.post("/", data=envelope).get_json()["events"][0]
    svix.advance_clock(13 * HOUR)

    # The key is forgotten, so Svix takes the request as new; the eventId still refuses it (409),
    # and the relay looks the message up.
    again = relay.post("/", data=envelope)
    assert again.status_code == 200, again.get_json()
    (event,) = again.get_json()["events"]
    assert event["outcome"] == "duplicate"
    assert event["svix_message_id"] == first["svix_message_id"]
    assert svix.stats()["conflicts"] == 1
    one_message_per_event(svix, USER)


@pytest.mark.parametrize("hours", [13, 25])
def test_a_replay_after_the_windows_finds_the_message_and_sends_nothing(
    relay_env: dict[str, str], relay: Any, svix: Any, tmp_path: Path, hours: int
):
    assert relay.post("/", data=json.dumps(push_envelope(USER))).status_code == 200
    svix.advance_clock(hours * HOUR)
    status, summary = replay_file(tmp_path, relay_env, USER)
    assert status == 0, summary
    assert summary["outcomes"] == {"found": 1}
    assert svix.stats()["conflicts"] == 0  # not even tried
    one_message_per_event(svix, USER)


def test_a_replay_after_25_hours_of_an_array_whose_first_event_was_delivered(
    relay_env: dict[str, str], relay: Any, svix: Any, tmp_path: Path
):
    assert relay.post("/", data=json.dumps(USER)).status_code == 200
    svix.advance_clock(25 * HOUR)
    status, summary = replay_file(tmp_path, relay_env, [USER, PAYMENT])
    assert status == 0, summary
    assert summary["outcomes"] == {"found": 1, "delivered": 1}
    one_message_per_event(svix, USER, PAYMENT)


def test_with_one_fixed_application_the_look_up_uses_the_projects_event_id(
    make_relay: Any, relay_env: dict[str, str], svix: Any, tmp_path: Path
):
    from svix.api import ApplicationIn, Svix, SvixOptions

    client = Svix(svix.token, SvixOptions(server_url=svix.url))
    client.application.create(ApplicationIn(name="All projects", uid=FIXED_APP))
    relay = make_relay(SVIX_APP_ID=FIXED_APP)
    assert relay.post("/", data=json.dumps(USER)).status_code == 200
    svix.advance_clock(25 * HOUR)
    status, summary = replay_file(tmp_path, {**relay_env, "SVIX_APP_ID": FIXED_APP}, [USER])
    assert status == 0, summary
    assert summary["outcomes"] == {"found": 1}
    one_message_per_event(svix, USER, app=FIXED_APP)


def test_a_replay_costs_one_look_up_per_event(
    relay_env: dict[str, str], relay: Any, svix: Any, tmp_path: Path
):
    held = [USER, PAYMENT]
    fresh = [SUBSCRIPTION, {**USER, "id": "evt_fresh_1"}, {**USER, "id": "evt_fresh_2"}]
    assert relay.post("/", data=json.dumps(held)).status_code == 200
    svix.advance_clock(25 * HOUR)
    before = svix.stats()["requests"]
    status, summary = replay_file(tmp_path, relay_env, *held, fresh)
    assert status == 0, summary
    assert summary["outcomes"] == {"found": 2, "delivered": 3}
    # One GET for each of the five events, one POST for each of the three Svix lacked.
    assert svix.stats()["requests"] - before == 5 + 3
    one_message_per_event(svix, *held, *fresh)


def test_a_dry_run_looks_up_too_and_sends_nothing(
    relay_env: dict[str, str], relay: Any, svix: Any, tmp_path: Path
):
    assert relay.post("/", data=json.dumps(USER)).status_code == 200
    svix.advance_clock(25 * HOUR)
    status, summary = replay_file(tmp_path, relay_env, [USER, PAYMENT], dry_run=True)
    assert status == 0, summary
    assert summary["outcomes"] == {"found": 1, "would_send": 1}
    one_message_per_event(svix, USER)


def test_when_svix_cannot_be_asked_nothing_is_sent(
    relay_env: dict[str, str],
    relay: Any,
    svix: Any,
    lookups_fail: LookupsFail,
    tmp_path: Path,
):
    assert relay.post("/", data=json.dumps(USER)).status_code == 200
    svix.advance_clock(25 * HOUR)
    env = {**relay_env, "SVIX_SERVER_URL": lookups_fail.url}
    status, summary = replay_file(tmp_path, env, [USER, PAYMENT])
    assert status == 1
    assert summary["outcomes"] == {"failed": 2}
    assert lookups_fail.look_ups >= 1
    assert "could not be asked" in summary["failures"][0]
    one_message_per_event(svix, USER)


def test_replay_reads_jsonl_with_a_bom_crlf_blank_lines_and_line_separators(
    relay_env: dict[str, str], svix: Any, tmp_path: Path
):
    # U+2028 and U+0085 are legal unescaped inside JSON strings: not ends of JSONL lines.
    odd = {**PAYMENT, "data": {**PAYMENT["data"], "note": "one\u2028two\x85three"}}
    lines = [json.dumps(USER), "", "  ", json.dumps(odd, ensure_ascii=False), ""]
    events_file = tmp_path / "events.jsonl"
    events_file.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode())
    result = run_replay(["--file", str(events_file)], relay_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["outcomes"] == {"delivered": 2}
    one_message_per_event(svix, USER, odd)
    assert svix.messages()[1]["payload"]["data"]["note"] == "one\u2028two\x85three"

    # As PowerShell writes a file: UTF-16 with a byte order mark.
    events_file.write_bytes("\r\n".join([json.dumps(SUBSCRIPTION), ""]).encode("utf-16"))
    result = run_replay(["--file", str(events_file)], relay_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["outcomes"] == {"delivered": 1}


def test_replay_names_the_line_it_cannot_read(relay_env: dict[str, str], svix: Any, tmp_path: Path):
    events_file = tmp_path / "events.jsonl"
    events_file.write_bytes(json.dumps(USER).encode() + b"\n\n{oops\n")
    result = run_replay(["--file", str(events_file)], relay_env)
    assert result.returncode == 1
    summary = json.loads(result.stdout)
    assert summary["outcomes"] == {"delivered": 1, "unreadable": 1}
    assert summary["failures"][0].startswith("line 3: ")

    missing = run_replay(["--file", str(tmp_path / "nope.jsonl")], relay_env)
    assert missing.returncode == 2
    assert "nope.jsonl" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_a_replay_from_the_dead_letter_subscription_after_25_hours(
    relay_env: dict[str, str], relay: Any, svix: Any, pubsub: Any
):
    assert relay.post("/", data=json.dumps(USER)).status_code == 200
    topic = pubsub.create_topic(unique_name("dead-letter"))
    subscription = pubsub.create_pull_subscription(unique_name("dead-letter-sub"), topic)
    pubsub.publish(topic, [(json.dumps(USER).encode(), {}), (json.dumps([PAYMENT]).encode(), {})])
    svix.advance_clock(25 * HOUR)
    result = run_replay(["--subscription", subscription], {**relay_env, **pubsub.env()})
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["outcomes"] == {"found": 1, "delivered": 1}
    assert (summary["acknowledged"], summary["left_in_subscription"]) == (2, 0)
    assert pubsub.pull(subscription) == []
    one_message_per_event(svix, USER, PAYMENT)
