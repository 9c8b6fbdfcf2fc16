"""reconcile tells the truth: an event is missing only when Svix holds no message with its
eventId, whenever that message was created; exit 0 all found, 1 some missing, 2 could not tell.

Late deliveries are made with the emulator's clock: the events' `time` is inside the window, and
their messages are created hours after the window and its grace."""

from __future__ import annotations

import json
import re
import socket
import subprocess
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support import own_events, run_python
from tests.support.servers import LookupsFail

EVENTS = own_events()
USER = EVENTS["user-created"]
PAYMENT = EVENTS["payment-succeeded-with-previous"]


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_python(["-m", "relay", "--log-format", "json", *args], env)


def log_lines(stderr: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def finished_line(stderr: str) -> dict[str, Any]:
    (line,) = [entry for entry in log_lines(stderr) if entry["message"] == "reconcile finished"]
    return line


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@pytest.fixture
def refused_url() -> Iterator[str]:
    """An address where nothing listens: a bound socket that never listens refuses every
    connection, and holds the port so that nothing else takes it meanwhile."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{held.getsockname()[1]}"


def late_window(svix: Any) -> tuple[datetime, datetime, list[dict[str, Any]]]:
    """A one-hour window ending now (on the emulator's clock) and two events of that window."""
    until = svix.clock().replace(microsecond=0)
    since = until - timedelta(hours=1)
    inside = iso(until - timedelta(minutes=30))
    return since, until, [{**USER, "time": inside}, {**PAYMENT, "time": inside}]


def deliver_late(relay: Any, svix: Any, events: list[dict[str, Any]]) -> None:
    """Deliver through the function three hours on: after the window and its 60 minutes of
    grace, as after an outage or a replay from the dead-letter topic."""
    svix.advance_clock(3 * 3600)
    response = relay.post("/", data=json.dumps(events))
    assert response.status_code == 200, response.get_json()


def write_events(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(event) + "\n" for event in events))
    return path


def test_times_without_a_zone_are_utc(relay_env: dict[str, str], relay: Any, tmp_path: Path):
    naive = [{**USER, "time": "2026-11-27T10:00:00"}, {**PAYMENT, "time": "2026-11-27T11:00:00"}]
    assert relay.post("/", data=json.dumps(naive)).status_code == 200
    events_file = write_events(tmp_path / "events.jsonl", naive)
    window = ["--since", "2026-11-27T00:00:00", "--until", "2026-11-28T00:00:00"]
    result = run_cli(["reconcile", "--events-file", str(events_file), *window], relay_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "window            2026-11-27T00:00:00+00:00 .. 2026-11-28T00:00:00+00:00" in (
        result.stdout
    )
    assert "expected events   2" in result.stdout
    # An hour with a zone of its own is compared as the instant it names.
    outside = [{**USER, "time": "2026-11-28T00:30:00+01:00"}]
    write_events(events_file, outside)
    result = run_cli(["reconcile", "--events-file", str(events_file), *window], relay_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "expected events   1" in result.stdout


def test_late_deliveries_are_found_by_look_up(
    relay_env: dict[str, str], relay: Any, svix: Any, tmp_path: Path
):
    since, until, events = late_window(svix)
    deliver_late(relay, svix, events)
    events_file = write_events(tmp_path / "events.jsonl", events)
    report_file = tmp_path / "report.json"
    args = ["--events-file", str(events_file), "--since", iso(since), "--until", iso(until)]
    result = run_cli(["reconcile", *args, "--json", str(report_file)], relay_env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "found by look-up  2" in result.stdout
    report = json.loads(report_file.read_text())
    assert (report["expected_events"], report["found_in_svix"]) == (2, 2)
    assert (report["found_by_lookup"], report["missing_in_svix"], report["ok"]) == (2, [], True)
    line = finished_line(result.stderr)
    assert line["severity"] == "INFO"
    counts = {k: v for k, v in line.items() if k.startswith("reconcile_")}
    assert counts == {
        "reconcile_expected": 2,
        "reconcile_found": 2,
        "reconcile_missing": 0,
        "reconcile_errors": 0,
    }


def test_a_truly_absent_event_is_the_one_missing(
    relay_env: dict[str, str], relay: Any, svix: Any, tmp_path: Path
):
    since, until, events = late_window(svix)
    deliver_late(relay, svix, events)
    absent = {**events[0], "id": "evt_never_delivered"}
    events_file = write_events(tmp_path / "events.jsonl", [*events, absent])
    report_file = tmp_path / "report.json"
    args = ["--events-file", str(events_file), "--since", iso(since), "--until", iso(until)]
    result = run_cli(["reconcile", *args, "--json", str(report_file)], relay_env)

    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(report_file.read_text())
    assert [e["event_id"] for e in report["missing_in_svix"]] == ["evt_never_delivered"]
    assert (report["expected_events"], report["found_in_svix"]) == (3, 2)
    line = finished_line(result.stderr)
    assert line["severity"] == "ERROR"
    assert (line["reconcile_missing"], line["reconcile_errors"]) == (1, 0)


def test_with_one_fixed_application_events_are_looked_up_by_their_projects_event_id(
    make_relay: Any, relay_env: dict[str, str], svix: Any, tmp_path: Path
):
    from svix.api import ApplicationIn, Svix, SvixOptions

    client = Svix(svix.token, SvixOptions(server_url=svix.url))
    client.application.create(ApplicationIn(name="All projects", uid="gigs-all-projects"))
    relay = make_relay(SVIX_APP_ID="gigs-all-projects")
    since, until, events = late_window(svix)
    deliver_late(relay, svix, events)
    events_file = write_events(tmp_path / "events.jsonl", events)
    args = ["--events-file", str(events_file), "--since", iso(since), "--until", iso(until)]
    result = run_cli(["reconcile", *args], {**relay_env, "SVIX_APP_ID": "gigs-all-projects"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "found by look-up  2" in result.stdout


def test_svix_failing_the_look_ups_means_it_could_not_tell(
    relay_env: dict[str, str], relay: Any, svix: Any, lookups_fail: LookupsFail, tmp_path: Path
):
    since, until, events = late_window(svix)
    deliver_late(relay, svix, events)
    events_file = write_events(tmp_path / "events.jsonl", events)
    report_file = tmp_path / "report.json"
    args = ["--events-file", str(events_file), "--since", iso(since), "--until", iso(until)]
    env = {**relay_env, "SVIX_SERVER_URL": lookups_fail.url}
    result = run_cli(["reconcile", *args, "--json", str(report_file)], env)

    assert result.returncode == 2, result.stdout + result.stderr
    assert lookups_fail.look_ups >= 1
    assert "Traceback" not in result.stderr
    report = json.loads(report_file.read_text())
    assert report["missing_in_svix"] == []  # not known to be missing: not reported so
    assert len(report["not_checked"]) == 2
    assert "500" in report["errors"][0]
    line = finished_line(result.stderr)
    assert line["reconcile_errors"] >= 1
    assert line["reconcile_missing"] == 0


@pytest.mark.parametrize("failure", ["connection refused", "wrong token"])
def test_an_error_is_exit_2_never_1(
    relay_env: dict[str, str], refused_url: str, tmp_path: Path, failure: str
):
    env = dict(relay_env)
    if failure == "connection refused":
        env["SVIX_SERVER_URL"] = refused_url
    else:
        env["SVIX_AUTH_TOKEN"] = "testsk_not_the_emulators"
    events_file = write_events(tmp_path / "events.jsonl", [USER])
    result = run_cli(
        ["reconcile", "--events-file", str(events_file), "--since", "2026-01-01T00:00:00Z"], env
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert finished_line(result.stderr)["reconcile_errors"] >= 1


def test_jsonl_with_a_bom_crlf_blank_lines_and_line_separators_inside_strings(
    relay_env: dict[str, str], relay: Any, tmp_path: Path
):
    # U+2028 is legal unescaped inside a JSON string; it is not the end of a JSONL line.
    odd = {**PAYMENT, "data": {**PAYMENT["data"], "note": "one\u2028two\x85three"}}
    assert relay.post("/", data=json.dumps([USER, odd])).status_code == 200
    lines = [json.dumps(USER), "", "   ", json.dumps(odd, ensure_ascii=False), ""]
    events_file = tmp_path / "events.jsonl"
    events_file.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode())
    args = ["reconcile", "--events-file", str(events_file), "--since", "2026-01-01T00:00:00Z"]
    result = run_cli(args, relay_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "expected events   2" in result.stdout
    assert "unreadable source 0" in result.stdout


def test_unreadable_lines_are_reported_not_skipped_silently(
    relay_env: dict[str, str], relay: Any, tmp_path: Path
):
    assert relay.post("/", data=json.dumps(USER)).status_code == 200
    events_file = tmp_path / "events.jsonl"
    events_file.write_bytes(json.dumps(USER).encode() + b"\n{not json\n\xff\xfe\n")
    report_file = tmp_path / "report.json"
    args = ["reconcile", "--events-file", str(events_file), "--since", "2026-01-01T00:00:00Z"]
    result = run_cli([*args, "--json", str(report_file)], relay_env)
    # The relay could not have delivered those lines either: reported, not counted missing.
    assert result.returncode == 0, result.stdout + result.stderr
    assert "unreadable source 2" in result.stdout
    unreadable = json.loads(report_file.read_text())["unreadable_source"]
    assert [u.split(":")[0] for u in unreadable] == ["line 2", "line 3"]


def test_a_line_with_more_events_than_the_limit_is_an_error(
    relay_env: dict[str, str], svix: Any, tmp_path: Path
):
    from relay.operations.sources import MAX_EVENTS_PER_DOCUMENT

    many = [{**USER, "id": f"evt_many_{n}"} for n in range(MAX_EVENTS_PER_DOCUMENT + 1)]
    events_file = write_events(tmp_path / "events.jsonl", [many])  # type: ignore[list-item]
    args = ["reconcile", "--events-file", str(events_file), "--since", "2026-01-01T00:00:00Z"]
    result = run_cli(args, relay_env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert re.search(r"^line 1: .*10000.*not counted$", result.stdout, re.MULTILINE)


def test_usage_errors_are_exit_2_with_the_finished_line(relay_env: dict[str, str], tmp_path: Path):
    absent = run_cli(["reconcile", "--events-file", str(tmp_path / "nope.jsonl")], relay_env)
    assert absent.returncode == 2
    assert "nope.jsonl" in absent.stderr
    assert finished_line(absent.stderr)["reconcile_errors"] == 1

    events_file = write_events(tmp_path / "events.jsonl", [USER])
    backwards = ["--since", "2026-11-28T00:00:00Z", "--until", "2026-11-27T00:00:00Z"]
    result = run_cli(["reconcile", "--events-file", str(events_file), *backwards], relay_env)
    assert result.returncode == 2
    assert "--since must be before --until" in result.stderr
    assert "Traceback" not in absent.stderr + result.stderr


def test_a_subscription_that_does_not_exist_is_exit_2(relay_env: dict[str, str], pubsub: Any):
    result = run_cli(
        ["reconcile", "--subscription", "projects/test-project/subscriptions/nope"],
        {**relay_env, **pubsub.env()},
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Pub/Sub pull on projects/test-project/subscriptions/nope failed" in result.stderr
    assert "Traceback" not in result.stderr
    assert finished_line(result.stderr)["reconcile_errors"] == 1
