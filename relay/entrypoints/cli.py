"""`python -m relay replay|reconcile|event-types sync`: the on-call's tools. Settings come from
the same environment variables as the function (SVIX_AUTH_TOKEN, SVIX_SERVER_URL, ...)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from relay.bootstrap import build_relay, build_svix_reader
from relay.core.errors import LookupFailed, SettingsError, SvixEventTypeError, SvixListingError
from relay.core.times import parse_time
from relay.entrypoints import cli_event_types
from relay.logs import configure_logging, fields, log
from relay.operations.reconcile import SourceEvent, SourceProblems, reconcile, source_events
from relay.operations.replay import ReplaySummary, replay
from relay.operations.sources import SourceDocument, dump, jsonl_file_documents
from relay.settings import Settings, load_settings
from relay.svix.listing import SvixMessage, SvixReader

if TYPE_CHECKING:
    from relay.delivery.service import Relay
    from relay.pubsub.pull import PulledMessage

ReplayedMessage = tuple[str, bytes, dict[str, str]]  # message id, data, attributes
# Errors a message explains well enough; anything else also gets its stack trace logged.
EXPECTED_ERRORS = (
    OSError,
    ValueError,
    SettingsError,
    SvixListingError,
    SvixEventTypeError,
    LookupFailed,
)

DEFAULT_DEAD_LETTER = "gigs-events-svix-relay-dead-letter-sub"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # reconcile's one INFO line ("reconcile finished") is what its metric and alert are built on.
    level = "INFO" if args.verbose or args.command == "reconcile" else "WARNING"
    try:
        settings = load_settings()
    except SettingsError as exc:
        configure_logging(fmt=args.log_format, level=level, secrets=[], to_stderr=True)
        return _failed(args.command, exc)
    configure_logging(
        fmt=args.log_format,
        level=level,
        secrets=[settings.svix_auth_token.get_secret_value()],
        to_stderr=True,
    )
    try:
        if args.command == "replay":
            return _replay(args, settings)
        if args.command == cli_event_types.COMMAND:
            return cli_event_types.run(args, settings)
        return _reconcile(args, settings)
    except Exception as exc:  # noqa: BLE001 - whatever it is, the answer is "could not tell"
        return _failed(args.command, exc)


def _failed(command: str, exc: Exception) -> int:
    """Exit status 2, whatever went wrong: for reconcile, 1 means "events are missing", and that
    false report would invite the replay that makes duplicates."""
    if not isinstance(exc, EXPECTED_ERRORS):
        log.error("%s failed unexpectedly", command, exc_info=exc)  # the stack trace, for us
    print(f"error: {exc}", file=sys.stderr)
    if command == "reconcile":
        _log_finished(expected=0, found=0, missing=0, errors=1)
    return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m relay", description=__doc__)
    parser.add_argument("--verbose", action="store_true", help="log every event")
    parser.add_argument("--log-format", choices=["text", "json"], default="text")
    commands = parser.add_subparsers(dest="command", required=True)

    replay_cmd = commands.add_parser(
        "replay",
        help="send events again through the relay's delivery code, with the same keys",
        description="Pull messages from a subscription (the dead-letter one by default) or read "
        "a JSONL file of events, look each event up in Svix by its eventId, and deliver those "
        "Svix does not hold as the function does (the rest count as found). Only messages "
        "whose every event is in Svix are acknowledged; the rest stay in the subscription.",
    )
    source = replay_cmd.add_mutually_exclusive_group()
    source.add_argument("--subscription", help=f"full name or id (default: {DEFAULT_DEAD_LETTER})")
    source.add_argument("--file", type=Path, help="JSONL: one event (or array of events) a line")
    replay_cmd.add_argument("--project", help="Pub/Sub project for a subscription id")
    replay_cmd.add_argument("--limit", type=int, help="at most this many messages")
    replay_cmd.add_argument(
        "--dry-run", action="store_true", help="read, check and look up; send nothing"
    )

    rec = commands.add_parser(
        "reconcile",
        help="report events missing in Svix and Svix messages without a source event",
        description="An event is missing when Svix holds no message with its eventId: events "
        "the window's listing lacks are looked up one by one. Times without a zone are UTC. "
        "Exit status: 0 when every event of the window is in Svix, 1 when some are missing, "
        '2 when reconcile could not tell (any error). The last log line, "reconcile '
        'finished", carries the counts.',
    )
    window = rec.add_argument_group("window (ISO 8601; default: the last 24 hours)")
    window.add_argument("--since", type=_when)
    window.add_argument("--until", type=_when)
    src = rec.add_mutually_exclusive_group(required=True)
    src.add_argument("--events-file", type=Path, help="JSONL of source events")
    src.add_argument(
        "--subscription",
        help="read source events from this subscription without acknowledging them "
        "(e.g. one created from a snapshot)",
    )
    rec.add_argument("--project", help="Pub/Sub project for a subscription id")
    rec.add_argument("--app", action="append", help="Svix application(s); default: from events")
    rec.add_argument("--json", type=Path, help="also write the report as JSON to this file")
    rec.add_argument(
        "--grace-minutes",
        type=float,
        default=60.0,
        help="list messages this long after the window too (Svix stamps creation time); "
        "later ones are found by look-up, one request each",
    )
    cli_event_types.add_parser(commands)
    return parser


def _replay(args: argparse.Namespace, settings: Settings) -> int:
    # Replay never parks: parking into the topic it may be reading from would loop.
    relay = build_relay(dataclasses.replace(settings, parking_topic=None))
    svix = build_svix_reader(settings)
    try:
        if args.file:
            documents = jsonl_file_documents(args.file.read_bytes())
            summary = replay(
                relay,
                _progress([(d.where, d, {}) for d in documents]),
                lookup=svix,
                fixed_app_id=settings.svix_app_id,
                dry_run=args.dry_run,
            )
        else:
            summary = _replay_subscription(args, settings, relay, svix)
    finally:
        svix.close()
        relay.close()
    print(dump(summary.as_json()))
    return 0 if not summary.failures else 1


def _replay_subscription(
    args: argparse.Namespace, settings: Settings, relay: Relay, svix: SvixReader
) -> ReplaySummary:
    from relay.pubsub.pull import SubscriptionReader

    reader = SubscriptionReader(_subscription(args.subscription or DEFAULT_DEAD_LETTER, args))
    held: dict[str, str] = {}  # message id -> ack id, for what is pulled and not acknowledged
    to_ack: list[str] = []
    acknowledged = 0

    def pulled() -> Iterator[ReplayedMessage]:
        for message in reader.drain(limit=args.limit):
            held[message.message_id] = message.ack_id
            yield message.message_id, message.data, message.attributes

    def on_done(message_id: str, delivered: bool) -> None:
        nonlocal acknowledged
        if delivered:
            to_ack.append(held.pop(message_id))
        # Acknowledge as we go, so a long replay does not outlive the ack deadlines.
        if len(to_ack) >= 100:
            reader.ack(to_ack)
            acknowledged += len(to_ack)
            to_ack.clear()

    try:
        summary = replay(
            relay,
            _progress(pulled()),
            lookup=svix,
            fixed_app_id=settings.svix_app_id,
            dry_run=args.dry_run,
            on_done=on_done,
        )
        reader.ack(to_ack)
        summary.acknowledged, summary.left = acknowledged + len(to_ack), len(held)
    finally:
        # Whatever is not acknowledged goes back at once, also when the replay stopped early.
        reader.release(list(held.values()))
        reader.close()
    return summary


def _progress(messages: Iterable[ReplayedMessage]) -> Iterable[ReplayedMessage]:
    from tqdm import tqdm

    progress: Iterable[ReplayedMessage] = tqdm(
        messages, desc="replaying", unit="msg", file=sys.stderr
    )
    return progress


def _reconcile(args: argparse.Namespace, settings: Settings) -> int:
    until = args.until or datetime.now(UTC)
    since = args.since or until - timedelta(days=1)
    if since >= until:
        raise ValueError("--since must be before --until")
    problems = SourceProblems()
    if args.events_file:
        documents = jsonl_file_documents(args.events_file.read_bytes())
        events = list(
            source_events(documents, fixed_app_id=settings.svix_app_id, problems=problems)
        )
    else:
        events = _subscription_events(args, settings, problems)
    apps = args.app or ([settings.svix_app_id] if settings.svix_app_id else None)
    apps = apps or sorted({e.app_id for e in events})
    grace = timedelta(minutes=args.grace_minutes)
    svix = build_svix_reader(settings)
    try:
        messages: list[SvixMessage] = []
        for app in apps:
            try:
                messages += svix.list_messages(app, since=since, until=until + grace)
            except SvixListingError as exc:
                # The look-ups still tell what Svix holds; what is not known is which messages
                # of the window have no source event.
                problems.errors.append(str(exc))
        report = reconcile(events, messages, since=since, until=until, lookup=svix,
                           problems=problems)  # fmt: skip
    finally:
        svix.close()
    if args.json:
        try:
            args.json.write_text(dump(report.as_json()) + "\n")
        except OSError as exc:
            report.errors.append(f"writing {args.json} failed: {exc}")
    print(report.as_table())
    _log_finished(
        expected=report.expected,
        found=report.found,
        missing=len(report.missing),
        errors=len(report.errors),
    )
    return report.exit_status


def _subscription_events(
    args: argparse.Namespace, settings: Settings, problems: SourceProblems
) -> list[SourceEvent]:
    from relay.pubsub.pull import SubscriptionReader

    reader = SubscriptionReader(_subscription(args.subscription, args))
    pulled: dict[str, PulledMessage] = {}
    try:
        for message in reader.drain():
            pulled[message.message_id] = message
        documents = [SourceDocument(m.data, f"message {m.message_id}") for m in pulled.values()]
        return list(source_events(documents, fixed_app_id=settings.svix_app_id, problems=problems))
    finally:
        # Read, never consumed: the snapshot subscription stays as it was.
        reader.release([m.ack_id for m in pulled.values()])
        reader.close()


def _log_finished(*, expected: int, found: int, missing: int, errors: int) -> None:
    """The line a logs-based metric and its alert are built on: keep the field names."""
    log.log(
        logging.ERROR if missing else logging.INFO,
        "reconcile finished",
        extra=fields(
            reconcile_expected=expected,
            reconcile_found=found,
            reconcile_missing=missing,
            reconcile_errors=errors,
        ),
    )


def _subscription(name: str, args: argparse.Namespace) -> str:
    if name.startswith("projects/"):
        return name
    project = (
        args.project
        or os.environ.get("PUBSUB_PROJECT_ID")
        or os.environ.get("GOOGLE_CLOUD_PROJECT")
    )
    if not project:
        raise ValueError("give --project or a full projects/P/subscriptions/S name")
    return f"projects/{project}/subscriptions/{name}"


def _when(text: str) -> datetime:
    when = parse_time(text)  # a time without a zone is UTC, as in the events
    if when is None:
        raise ValueError(f"not an ISO 8601 time: {text}")
    return when
