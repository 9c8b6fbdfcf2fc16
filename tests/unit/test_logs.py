"""Log lines: Cloud Logging's fields, the trace, text for people, and secrets never leaving."""

from __future__ import annotations

import json
from typing import Any

import pytest

from relay.delivery.ports import ParkedEvent
from relay.logs import configure_logging, fields, log, trace_of
from relay.pubsub.parking import publish_attributes

SECRET = "sk_live_secret.eu"


@pytest.fixture
def json_lines(capsys: Any):
    configure_logging(fmt="json", level="INFO", secrets=[SECRET])

    def read() -> list[dict[str, Any]]:
        return [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    return read


def test_a_line_has_cloud_loggings_fields(json_lines):
    log.info(
        "event evt_1 delivered", extra=fields(event_id="evt_1", outcome="delivered", gone=None)
    )
    (line,) = json_lines()
    assert line["severity"] == "INFO"
    assert line["message"] == "event evt_1 delivered"
    assert line["event_id"] == "evt_1"
    assert "gone" not in line
    assert line["time"].endswith("Z")


def test_the_secret_never_leaves_whatever_field_carries_it(json_lines):
    log.warning("token %s in the message", SECRET, extra=fields(detail=f"and {SECRET} in a field"))
    try:
        raise RuntimeError(f"and in an exception: {SECRET}")
    except RuntimeError:
        log.exception("failed")
    lines = json_lines()
    assert all(SECRET not in json.dumps(line) for line in lines)
    assert "[redacted]" in lines[0]["message"]
    assert "[redacted]" in lines[1]["stack_trace"]


def test_a_lone_surrogate_does_not_stop_a_line(json_lines, capsys: Any):
    log.info("event evt_\ud800 rejected", extra=fields(event_id="evt_\ud800"))
    (line,) = json_lines()
    assert line["event_id"] == "evt_\ud800"
    configure_logging(fmt="text", level="INFO", secrets=[SECRET])
    log.info("event evt_\ud800 rejected")
    assert "evt_\\ud800" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("header", "project", "trace"),
    [
        (
            "105445aa7843bc8bf206b12000100000/1;o=1",
            "gigs",
            "projects/gigs/traces/105445aa7843bc8bf206b12000100000",
        ),
        (
            "105445aa7843bc8bf206b12000100000",
            "gigs",
            "projects/gigs/traces/105445aa7843bc8bf206b12000100000",
        ),
        ("105445aa/1;o=1", None, None),
        ("not a trace!/1", "gigs", None),
        (None, "gigs", None),
    ],
)
def test_trace_from_the_cloud_trace_header(
    header: str | None, project: str | None, trace: str | None
):
    assert trace_of(header, project) == trace


def test_parking_attributes_stay_within_pubsubs_limits():
    parked = ParkedEvent(
        b"{}", reason="é" * 2000, event_id="evt_" + "x" * 2000, attributes={"a": "b"}
    )
    attributes = publish_attributes(parked)
    assert attributes["a"] == "b"
    assert len(attributes["relay_parked_reason"].encode()) <= 1024
    assert attributes["relay_parked_reason"].startswith("é")
    assert attributes["relay_event_id"].startswith("sha256:")
    short = publish_attributes(ParkedEvent(b"{}", reason="no type", event_id="evt_1"))
    assert short == {"relay_parked_reason": "no type", "relay_event_id": "evt_1"}
