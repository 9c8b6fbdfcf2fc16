"""The daily reconcile, as the Cloud Run job deploy.sh builds from this source runs it.

It reconciles one whole UTC day (yesterday, or RECONCILE_DAY=YYYY-MM-DD) against the ledger
subscription (RECONCILE_SUBSCRIPTION), with the function's Svix settings, and logs as JSON for
Cloud Logging. A fixed day rather than "the last 24 hours": the job runs hours after midnight, so
events near the end of the window have had their retries, and a re-run reports the same window.

Exit status: 0 when reconcile got to its report, whether or not events are missing (the
"reconcile finished" log line says which, and its alert pages); 2 when it could not tell
(settings, Pub/Sub or Svix unreachable). A failed execution therefore always means "could not
tell", which is what the job's retry and its failure alert are for.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta

from relay.entrypoints.cli import main as relay_cli

# Pub/Sub gives up on an event after at most about two hours of retries (deploy.sh's retry
# policy), so Svix messages for the day's last events can be created that long after midnight.
DEFAULT_GRACE_MINUTES = 180


def window(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0, 0), tzinfo=UTC)
    return start, start + timedelta(days=1)


def reconcile_arguments(now: datetime, env: Mapping[str, str]) -> list[str]:
    """The `python -m relay` arguments for the day the job reconciles."""
    subscription = env.get("RECONCILE_SUBSCRIPTION", "")
    if not subscription:
        raise ValueError("RECONCILE_SUBSCRIPTION is not set (projects/P/subscriptions/S)")
    named_day = env.get("RECONCILE_DAY", "")
    day = date.fromisoformat(named_day) if named_day else now.astimezone(UTC).date() - timedelta(1)
    since, until = window(day)
    if until > now:
        raise ValueError(f"RECONCILE_DAY {day.isoformat()} has not ended yet")
    grace = env.get("RECONCILE_GRACE_MINUTES", "") or str(DEFAULT_GRACE_MINUTES)
    return [
        "--log-format=json",
        "reconcile",
        f"--subscription={subscription}",
        f"--since={since.isoformat()}",
        f"--until={until.isoformat()}",
        f"--grace-minutes={float(grace)}",
    ]


def run(now: datetime, env: Mapping[str, str]) -> int:
    try:
        arguments = reconcile_arguments(now, env)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    status = relay_cli(arguments)
    # 1 is "events are missing": a finished reconcile, reported by its log line and alert.
    return 0 if status == 1 else status


if __name__ == "__main__":
    sys.exit(run(datetime.now(UTC), os.environ))
