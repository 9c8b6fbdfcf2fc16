"""Log lines for Cloud Logging (one JSON object per line on stdout) or for a person (text).

A hand-written formatter rather than a logging library: the relay writes one line per event on
its hot path, and Cloud Logging wants a few exact field names (severity, trace, labels) that a
generic JSON formatter only reaches through as much configuration as this code.

Strategy: every line goes through the standard `logging` machinery, except the one that is
written per event (`write_fields`): when the relay's own handler is the only one, that line is
formatted and written straight away, in the very same shape, without a LogRecord, the caller
lookup and the handler chain: half of the line's CPU (42 to 21 µs in one process; about 0.30 to
0.15 ms per event under the benchmark's load, NOTES.md).
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

# ASCII escapes: safe for any string in a line, lone surrogates included. `default=str` writes
# what JSON has no type for (an exception, a path) as its text. Made once: it holds no state.
_JSON = json.JSONEncoder(default=str)


def fields(**values: Any) -> dict[str, Any]:
    """`extra=` for a log call: the structured fields of the line, None values left out."""
    return {FIELDS: {k: v for k, v in values.items() if v is not None}}


def write_fields(level: int, message: str, values: Mapping[str, Any]) -> None:
    """The line `log.log(level, message, extra=fields(**values))` writes (None values left out),
    for the line written per event: see the module's strategy."""
    if not log.isEnabledFor(level):
        return
    present = {k: v for k, v in values.items() if v is not None}
    handlers = log.handlers
    handler = handlers[0] if len(handlers) == 1 and not log.filters else None
    if isinstance(handler, StdoutHandler) and handler.writes_directly():
        handler.write(log.name, level, message, present)
    else:  # another set-up (a test's capture, a tool's): the standard way
        log.log(level, message, extra={FIELDS: present})


def trace_of(header: str | None, project: str | None) -> str | None:
    """Cloud Logging's trace name from an `X-Cloud-Trace-Context: TRACE/SPAN;o=1` header."""
    if not header or not project:
        return None
    trace_id = header.split("/", 1)[0].strip()
    if not trace_id or not trace_id.isalnum():
        return None
    return f"projects/{project}/traces/{trace_id}"


class _LineFormatter(logging.Formatter):
    """A record as one line; `line` is also what the fast path (`write_fields`) writes with,
    without a LogRecord, so both paths give the same bytes."""

    def format(self, record: logging.LogRecord) -> str:
        extra = getattr(record, FIELDS, None)
        stack = self.formatException(record.exc_info) if record.exc_info else None
        return self.line(
            record.name,
            record.levelname,
            record.getMessage(),
            record.created,
            extra if isinstance(extra, Mapping) else None,
            stack,
        )

    def line(
        self,
        logger: str,
        severity: str,
        message: str,
        created: float,
        extra: Mapping[str, Any] | None,
        stack: str | None = None,
    ) -> str:
        raise NotImplementedError


class CloudLoggingFormatter(_LineFormatter):
    def line(
        self,
        logger: str,
        severity: str,
        message: str,
        created: float,
        extra: Mapping[str, Any] | None,
        stack: str | None = None,
    ) -> str:
        entry: dict[str, Any] = {
            "severity": severity,
            "message": message,
            "time": _rfc3339(created),
            "logger": logger,
        }
        if extra:
            entry.update(extra)
        if stack is not None:
            # Error Reporting groups errors by the stack trace it finds in this field.
            entry["stack_trace"] = stack
        return _JSON.encode(entry)


class TextFormatter(_LineFormatter):
    def line(
        self,
        logger: str,
        severity: str,
        message: str,
        created: float,
        extra: Mapping[str, Any] | None,
        stack: str | None = None,
    ) -> str:
        line = f"{_rfc3339(created)} {severity:<7} {message}"
        if extra:
            shown = " ".join(f"{k}={v}" for k, v in extra.items() if k != TRACE_FIELD)
            line = f"{line}  [{shown}]"
        if stack is not None:
            line = f"{line}\n{stack}"
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
        return self._redacted(super().format(record))

    def writes_directly(self) -> bool:
        """Whether `write` makes the same line as the logging machinery would: one of ours
        formats it, and no filter stands in the way."""
        ours = isinstance(self.formatter, _LineFormatter)
        return ours and not self.filters

    def write(self, logger: str, level: int, message: str, extra: Mapping[str, Any]) -> None:
        """The line `format` writes for a record of this logger, level, message and fields,
        written as `emit` writes it (one write and a flush under the handler's lock)."""
        formatter = self.formatter
        assert isinstance(formatter, _LineFormatter)
        if level < self.level:
            return
        text = formatter.line(logger, logging.getLevelName(level), message, time.time(), extra)
        line = self._redacted(text) + self.terminator
        try:
            with self.lock:  # type: ignore[union-attr]  # made by Handler.__init__
                stream = self.stream
                stream.write(line)
                stream.flush()
        except Exception:  # noqa: BLE001 - as emit does: a line that cannot go out stops nothing
            self.handleError(logging.makeLogRecord({"msg": message, "levelno": level}))

    def _redacted(self, line: str) -> str:
        for secret in self._secrets:
            if secret in line:
                line = line.replace(secret, "[redacted]")
        return line


def configure_logging(*, fmt: str, level: str, secrets: list[str], to_stderr: bool = False) -> None:
    """Send the relay's log lines to stdout, where Cloud Run's agent picks them up (or to
    stderr, for command-line tools whose stdout is their report)."""
    # Our lines never show the thread, process or multiprocessing names: not looking them up
    # makes every LogRecord cheaper.
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = StdoutHandler(secrets=secrets, to_stderr=to_stderr)
    handler.setFormatter(TextFormatter() if fmt == "text" else CloudLoggingFormatter())
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False


# The formatted second of the last line, and that second: lines come hundreds a second, and
# formatting the date is most of the time field's cost.
_second: tuple[int, str] = (-1, "")


def _rfc3339(created: float) -> str:
    global _second
    whole = int(created)
    second = _second
    if second[0] != whole:
        second = _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return f"{second[1]}.{int(created % 1 * 1000):03d}Z"
