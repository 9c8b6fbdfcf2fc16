"""The delivery's log lines: one per event, in the fields the on-call and the logs-based metrics
read ("what happened to event evt_…?"), one per retry, one per message no event could be read
from.

Strategy: one line per event is the relay's answer to a page, so it is kept on the hot path and
made cheap instead: the fields are built once in one dictionary, absent ones are left out, and
the line is written without the logging machinery's per-record work (relay/logs.py).
"""

from __future__ import annotations

import logging

from relay.core.batch import Origin
from relay.core.errors import SendFailure
from relay.core.messages import OutgoingMessage
from relay.core.outcomes import EventResult, Outcome
from relay.logs import TRACE_FIELD, fields, log, write_fields

_LEVELS = {
    Outcome.DELIVERED: logging.INFO,
    Outcome.DUPLICATE: logging.INFO,
    Outcome.RATE_LIMITED: logging.WARNING,
}


def event_line(
    result: EventResult,
    source: Origin | None,
    trace: str | None,
    *,
    took: float,
    lags: dict[str, float],
) -> None:
    outcome = result.outcome.value
    text = f"event {result.event_id} {outcome}"
    if result.reason:
        text = f"{text}: {result.reason}"
    values: dict[str, object] = {
        "event_id": result.event_id,
        "event_type": result.event_type,
        "app_id": result.app_id,
        "outcome": outcome,
        "svix_message_id": result.svix_message_id,
        "attempts": result.attempts,
        "latency_ms": round(took * 1000, 1),
        "svix_status": result.status,
        "reason": result.reason,
        # Only when it happened: the event may have been older than Svix's dedup windows.
        "looked_up": result.looked_up or None,
        **lags,
    }
    values.update(source_fields(source))
    values[TRACE_FIELD] = trace
    write_fields(_LEVELS.get(result.outcome, logging.ERROR), text, values)


def retry_line(
    message: OutgoingMessage, failure: SendFailure, attempt: int, pause: float, trace: str | None
) -> None:
    log.warning(
        "retrying event %s in %.2fs after attempt %d: %s",
        message.event_id,
        pause,
        attempt,
        failure.reason,
        extra=fields(
            event_id=message.event_id,
            event_type=message.event_type,
            app_id=message.app_id,
            attempt=attempt,
            retry_in_seconds=round(pause, 3),
            svix_status=failure.status,
            **{TRACE_FIELD: trace},
        ),
    )


def message_line(text: str, outcome: Outcome, source: Origin | None, trace: str | None) -> None:
    """A line for a whole message that held no readable event: counted like an event."""
    log.error(
        text,
        extra=fields(outcome=outcome.value, **source_fields(source), **{TRACE_FIELD: trace}),
    )


def lag_fields(
    in_svix: float, *, published: float | None, happened: float | None
) -> dict[str, float]:
    """The SLO signal: how long after publishing, and after it happened, Svix had the event."""
    lags = {}
    for name, since in (("publish_lag_ms", published), ("event_lag_ms", happened)):
        if since is not None:
            lags[name] = round((in_svix - since) * 1000, 1)
    return lags


def source_fields(source: Origin | None) -> dict[str, object]:
    if source is None:
        return {}
    return {
        "pubsub_message_id": source.message_id,
        "pubsub_subscription": source.subscription,
        "delivery_attempt": source.delivery_attempt,
    }
