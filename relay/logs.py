"""Log lines for Cloud Logging (one JSON object per line on stdout) or for a person (text).

A hand-written formatter rather than a logging library: the relay writes one line per event on
its hot path, and Cloud Logging wants a few exact field names (severity, trace, labels) that a
generic JSON formatter only reaches through as much configuration as this code.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Mapping
from typing import Any

LOGGER_NAME = "relay"
TRACE_FIELD = "logging.googleapis.com/trace"
FIELDS = "fields"  # the `extra` key under which callers pass structured fields

log = logging.getLogger(LOGGER_NAME)


def fields(**values: Any) -> dict[str, Any]:
    """`extra=` for a log call: the structured fields of the line, None values left out."""
    return {FIELDS: {k: v for k, v in values.items() if v is not None}}


def trace_of(header: str | None, project: str | None) -> str | None:
    """Cloud Logging's trace name from an `X-Cloud-Trace-Context: TRACE/SPAN;o=1` header."""
    if not header or not project:
        return None
    trace_id = header.split("/", 1)[0].strip()
    if not trace_id or not trace_id.isalnum():
        return None
    return f"projects/{project}/traces/{trace_id}"


class CloudLoggingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": record.levelname,
            "message": record.getMessage(),
            "time": _rfc3339(record.created),
            "logger": record.name,
        }
        extra = getattr(record, FIELDS, None)
        if isinstance(extra, Mapping):
            entry.update(extra)
        if record.exc_info:
            # Error Reporting groups errors by the stack trace it finds in this field.
            entry["stack_trace"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)  # ASCII escapes: safe for any string in a line


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = f"{_rfc3339(record.created)} {record.levelname:<7} {record.getMessage()}"
        extra = getattr(record, FIELDS, None)
        if isinstance(extra, Mapping) and extra:
            shown = " ".join(f"{k}={v}" for k, v in extra.items() if k != TRACE_FIELD)
            line = f"{line}  [{shown}]"
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        # A lone surrogate from an odd event id must not stop the line from being written.
        return line.encode("utf-8", "backslashreplace").decode("utf-8")


class StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stdout (or stderr) is at the time of the line, not at start-up,
    and is the last line of defence for secrets: whatever wrote the line, and in whichever field
    (message, stack trace, structured field), a secret never leaves."""

    def __init__(self, *, secrets: list[str], to_stderr: bool = False) -> None:
        self._to_stderr = to_stderr
        super().__init__()
        # Also as they appear inside a JSON string, escaped.
        spelled = {
            s for secret in secrets if len(secret) >= 4 for s in (secret, json.dumps(secret)[1:-1])
        }
        self._secrets = sorted(spelled, key=len, reverse=True)

    @property
    def stream(self) -> Any:
        return sys.stderr if self._to_stderr else sys.stdout

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        for secret in self._secrets:
            if secret in line:
                line = line.replace(secret, "[redacted]")
        return line


def configure_logging(*, fmt: str, level: str, secrets: list[str], to_stderr: bool = False) -> None:
    """Send the relay's log lines to stdout, where Cloud Run's agent picks them up (or to
    stderr, for command-line tools whose stdout is their report)."""
    # Our lines never show the thread, process or multiprocessing names: not looking them up
    # makes every LogRecord cheaper, and there is one per event.
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = StdoutHandler(secrets=secrets, to_stderr=to_stderr)
    handler.setFormatter(TextFormatter() if fmt == "text" else CloudLoggingFormatter())
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False


def _rfc3339(created: float) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created % 1 * 1000):03d}Z"
