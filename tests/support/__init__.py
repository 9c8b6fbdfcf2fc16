"""What tests share: paths, our own sample events, push envelopes, unique names.

Tests import helpers from here (and from the modules beside it), never from a conftest or from
another test module.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"


OWN_EVENTS = ROOT / "tests" / "data" / "events"


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or a skip that says why the test cannot run without it."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {Path('..', 'shared', *parts)}, which is absent in this checkout")
    return path


def own_events() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(OWN_EVENTS.glob("*.json"))}


def push_envelope(
    data: object,
    *,
    message_id: str = "1001",
    attributes: dict[str, str] | None = None,
    delivery_attempt: int | None = None,
    published: dt.datetime | None = None,
) -> dict[str, Any]:
    """A wrapped Pub/Sub push body, as Pub/Sub sends it: published now unless told otherwise
    (the relay looks up first what was published longer ago than Svix's dedup windows)."""
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    when = (published or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    message: dict[str, Any] = {
        "data": base64.b64encode(raw).decode(),
        "attributes": attributes or {},
        "messageId": message_id,
        "message_id": message_id,
        "publishTime": when,
        "publish_time": when,
    }
    envelope: dict[str, Any] = {
        "message": message,
        "subscription": "projects/test-project/subscriptions/gigs-events-svix-relay",
    }
    if delivery_attempt is not None:
        envelope["deliveryAttempt"] = delivery_attempt
    return envelope


_names = iter(range(1, 1_000_000))


def unique_name(prefix: str) -> str:
    """Topic and subscription names that no other test of the session uses."""
    return f"{prefix}-{next(_names)}"


def run_python(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`python ARGS` from the repository root with `env` on top of ours, output captured."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
