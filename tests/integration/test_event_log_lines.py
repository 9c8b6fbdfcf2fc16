"""The per-event log line through the function: the lag from publishing and from the event's
own time (the SLO signal), and our own sample events mapped and sent."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.support import own_events, push_envelope

USER = own_events()["user-created"]


def test_own_events_map_and_send(make_relay: Callable, svix) -> None:
    # Guard against the fakes drifting from the real wiring: the same body through the real one.
    client = make_relay()
    assert client.post("/", json=USER).status_code == 200


def _event_lines(capsys: pytest.CaptureFixture[str], event_id: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line[:1] == "{"]
    return [line for line in lines if line.get("event_id") == event_id and "outcome" in line]


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_a_delivered_event_logs_its_lag_from_publishing_and_from_its_own_time(
    relay: Any, svix: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    now = dt.datetime.now(dt.UTC)
    published = now - dt.timedelta(seconds=30)
    happened = now - dt.timedelta(seconds=90)
    # A time without a zone is UTC.
    event = {**USER, "time": happened.replace(tzinfo=None).isoformat()}
    envelope = push_envelope(event)
    envelope["message"]["publishTime"] = envelope["message"]["publish_time"] = _iso(published)
    capsys.readouterr()
    before = dt.datetime.now(dt.UTC)
    assert relay.post("/", json=envelope).status_code == 200
    after = dt.datetime.now(dt.UTC)
    (line,) = _event_lines(capsys, USER["id"])
    assert line["outcome"] == "delivered"
    ms = dt.timedelta(milliseconds=1)
    assert (before - published) / ms - 1 <= line["publish_lag_ms"] <= (after - published) / ms + 1
    assert (before - happened) / ms - 1 <= line["event_lag_ms"] <= (after - happened) / ms + 1
    # Delivered again: a duplicate is as late as when Svix took it this time.
    assert relay.post("/", json=envelope).status_code == 200
    (again,) = _event_lines(capsys, USER["id"])
    assert again["publish_lag_ms"] >= line["publish_lag_ms"]


@pytest.mark.parametrize("when", [None, "yesterday", "2026-13-45T99:00:00Z", "1700000000", ""])
def test_an_absent_or_unreadable_time_leaves_the_lag_out(
    relay: Any, svix: Any, capsys: pytest.CaptureFixture[str], when: str | None
) -> None:
    event = {k: v for k, v in USER.items() if k != "time"}
    if when is not None:
        event["time"] = when
    envelope = push_envelope(event)
    if when is None:
        del envelope["message"]["publishTime"], envelope["message"]["publish_time"]
    else:
        envelope["message"]["publishTime"] = envelope["message"]["publish_time"] = when
    capsys.readouterr()
    assert relay.post("/", json=envelope).status_code == 200
    (line,) = _event_lines(capsys, USER["id"])
    assert line["outcome"] == "delivered"
    assert "publish_lag_ms" not in line
    assert "event_lag_ms" not in line


def test_an_event_that_is_not_delivered_logs_no_lag(
    make_relay: Callable[..., Any], svix: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    relay = make_relay(RELAY_TIME_BUDGET_SECONDS="0.2")
    svix.set_faults(errors=[{"status": 503, "probability": 1.0}])
    capsys.readouterr()
    assert relay.post("/", json=push_envelope(USER)).status_code == 503
    (line,) = _event_lines(capsys, USER["id"])
    assert line["outcome"] == "failed"
    assert "publish_lag_ms" not in line
    assert "event_lag_ms" not in line
