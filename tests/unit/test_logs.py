"""Log lines: Cloud Logging's fields, the trace, text for people, and secrets never leaving."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest

from relay.delivery.ports import ParkedEvent
from relay.logs import TRACE_FIELD, configure_logging, fields, log, trace_of, write_fields
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


LINE_FIELDS = {
    "event_id": "evt_1",
    "outcome": "delivered",
    "attempts": 1,
    "latency_ms": 31.2,
    "gone": None,
    "reason": f"carries {SECRET}",
    "odd": "evt_\ud800 é",
    TRACE_FIELD: "projects/p/traces/105445aa",
}


def _without_time(line: str) -> str:
    return re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", "<time>", line)


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_the_per_event_line_is_the_line_the_logging_machinery_writes(fmt: str, capsys: Any):
    configure_logging(fmt=fmt, level="INFO", secrets=[SECRET])
    capsys.readouterr()
    write_fields(logging.WARNING, f"event evt_1 delivered with {SECRET}", LINE_FIELDS)
    log.warning(f"event evt_1 delivered with {SECRET}", extra=fields(**LINE_FIELDS))
    direct, standard = capsys.readouterr().out.splitlines()
    assert _without_time(direct) == _without_time(standard)
    assert SECRET not in direct
    if fmt == "json":
        line = json.loads(direct)
        assert line["severity"] == "WARNING"
        assert line["logger"] == "relay"
        assert "gone" not in line


def test_the_per_event_line_keeps_to_the_level(capsys: Any):
    configure_logging(fmt="json", level="ERROR", secrets=[SECRET])
    capsys.readouterr()
    write_fields(logging.INFO, "event evt_1 delivered", LINE_FIELDS)
    assert capsys.readouterr().out == ""
    write_fields(logging.ERROR, "event evt_1 rejected", LINE_FIELDS)
    assert json.loads(capsys.readouterr().out)["severity"] == "ERROR"


class Collected(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_with_another_handler_the_per_event_line_is_an_ordinary_record(capsys: Any):
    configure_logging(fmt="json", level="INFO", secrets=[SECRET])
    collected = Collected()
    log.addHandler(collected)
    try:
        capsys.readouterr()
        write_fields(logging.INFO, "event evt_1 delivered", LINE_FIELDS)
    finally:
        log.removeHandler(collected)
    (record,) = collected.records
    assert record.getMessage() == "event evt_1 delivered"
    assert record.fields["event_id"] == "evt_1"  # type: ignore[attr-defined]
    assert "gone" not in record.fields  # type: ignore[attr-defined]
    assert json.loads(capsys.readouterr().out)["event_id"] == "evt_1"
