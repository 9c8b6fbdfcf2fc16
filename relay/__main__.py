"""`python -m relay replay|reconcile`: the on-call's tools. Settings come from the same
environment variables as the function (SVIX_AUTH_TOKEN, SVIX_SERVER_URL, SVIX_APP_ID, ...)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from relay.bootstrap import build_relay
from relay.logs import configure_logging
from relay.operations import (
    dump,
    jsonl_documents,
    reconcile,
    replay,
    source_events,
)
from relay.settings import Settings, SettingsError, load_settings
from relay.svix_listing import SvixListingError, list_messages

DEFAULT_DEAD_LETTER = "gigs-events-svix-relay-dead-letter-sub"


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    configure_logging(
        fmt=args.log_format,
        level="WARNING" if not args.verbose else "INFO",
        secrets=[settings.svix_auth_token.get_secret_value()],
        to_stderr=True,
    )
    try:
        if args.command == "replay":
            return _replay(args, settings)
        return _reconcile(args, settings)
    except (OSError, ValueError, SvixListingError) as exc:
        print(f"error: {exc}", file=sys.stderr)
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
        "a JSONL file of events, and deliver them as the function does. Only messages whose "
        "every event reached Svix are acknowledged; the rest stay in the subscription.",
    )
    source = replay_cmd.add_mutually_exclusive_group()
    source.add_argument("--subscription", help=f"full name or id (default: {DEFAULT_DEAD_LETTER})")
    source.add_argument("--file", type=Path, help="JSONL: one event (or array of events) a line")
    replay_cmd.add_argument("--project", help="Pub/Sub project for a subscription id")
    replay_cmd.add_argument("--limit", type=int, help="at most this many messages")
    replay_cmd.add_argument("--dry-run", action="store_true", help="read and check, send nothing")

    rec = commands.add_parser(
        "reconcile",
        help="report events missing in Svix and Svix messages without a source event",
        description="Exit status: 0 when every event of the window is in Svix, 1 when some are "
        "missing, 2 on a usage or connection error.",
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
        help="look for messages this long after the window (Svix stamps creation time)",
    )
    return parser


def _replay(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm import tqdm

    # Replay never parks: parking into the topic it may be reading from would loop.
    relay = build_relay(settings.model_copy(update={"parking_topic": None}))
    if args.file:
        lines = args.file.read_text().splitlines()
        messages: list[tuple[str, bytes, dict[str, str]]] = [
            (f"line-{n}", doc, {}) for n, doc in enumerate(jsonl_documents(lines), start=1)
        ]
        summary = replay(
            relay, tqdm(messages, desc="replaying", unit="msg", file=sys.stderr),
            dry_run=args.dry_run,
        )  # fmt: skip
    else:
        from relay.pubsub_pull import SubscriptionReader

        reader = SubscriptionReader(_subscription(args.subscription or DEFAULT_DEAD_LETTER, args))
        ack_ids: dict[str, str] = {}
        to_ack: list[str] = []
        left: list[str] = []

        def pulled() -> Iterator[tuple[str, bytes, dict[str, str]]]:
            for message in reader.drain(limit=args.limit):
                ack_ids[message.message_id] = message.ack_id
                yield message.message_id, message.data, message.attributes

        def on_done(message_id: str, delivered: bool) -> None:
            # Acknowledge as we go, so a long replay does not outlive the ack deadlines.
            (to_ack if delivered else left).append(ack_ids[message_id])
            if len(to_ack) >= 100:
                reader.ack(to_ack)
                summary_acked.append(len(to_ack))
                to_ack.clear()

        summary_acked: list[int] = []
        summary = replay(
            relay,
            tqdm(pulled(), desc="replaying", unit="msg", file=sys.stderr),
            dry_run=args.dry_run,
            on_done=on_done,
        )
        reader.ack(to_ack)
        reader.release(left)
        summary.acknowledged, summary.left = sum(summary_acked) + len(to_ack), len(left)
        reader.close()
    relay.close()
    print(dump(summary.as_json()))
    return 0 if not summary.failures else 1


def _reconcile(args: argparse.Namespace, settings: Settings) -> int:
    until = args.until or datetime.now(UTC)
    since = args.since or until - timedelta(days=1)
    if since >= until:
        raise ValueError("--since must be before --until")
    if args.events_file:
        documents: Iterator[bytes] = jsonl_documents(args.events_file.read_text().splitlines())
        reader = None
    else:
        from relay.pubsub_pull import SubscriptionReader

        reader = SubscriptionReader(_subscription(args.subscription, args))
        pulled = list({m.message_id: m for m in reader.drain()}.values())
        documents = iter([m.data for m in pulled])
    events = list(source_events(documents, fixed_app_id=settings.svix_app_id))
    if reader is not None:
        reader.release([m.ack_id for m in pulled])
        reader.close()
    apps = args.app or ([settings.svix_app_id] if settings.svix_app_id else None)
    apps = apps or sorted({e.app_id for e in events})
    grace = timedelta(minutes=args.grace_minutes)
    messages = [
        message
        for app in apps
        for message in list_messages(
            token=settings.svix_auth_token.get_secret_value(),
            server_url=settings.svix_server_url,
            app_id=app,
            since=since,
            until=until + grace,
        )
    ]
    report = reconcile(events, messages, since=since, until=until)
    print(report.as_table())
    if args.json:
        args.json.write_text(dump(report.as_json()) + "\n")
    return 0 if report.ok else 1


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
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=UTC)


if __name__ == "__main__":
    sys.exit(main())
