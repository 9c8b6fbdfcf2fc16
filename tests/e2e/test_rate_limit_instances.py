"""Relay instances sharing one Svix token under Svix's rate limit, end to end: separate
functions-framework processes (started as the benchmark starts them) against the emulator, fed
one event per push by clients that come back after a refusal as a push subscription does.
Counts, not timings: every event delivered once, and few 429s per delivered event."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.load import HttpPoster
from bench.processes import FunctionServer, running_functions
from tests.support import ROOT, own_events, push_envelope

EVENT = own_events()["user-created"]
RATE = 40.0  # Svix's limit for the token, messages/s
EVENTS = 160  # four seconds of it
CLIENTS = 12


@pytest.fixture
def instances(svix: Any, tmp_path: Path) -> Iterator[list[FunctionServer]]:
    env = {
        "SVIX_AUTH_TOKEN": svix.token,
        "SVIX_SERVER_URL": svix.url,
        "THREADS": "8",
        "WORKERS": "1",
        "RELAY_MAX_IN_FLIGHT": "8",
        "RELAY_TIME_BUDGET_SECONDS": "10",
        "RELAY_LOG_FORMAT": "json",
    }
    with running_functions("relay", ROOT / "main.py", "relay", [env] * 3, log_dir=tmp_path) as up:
        yield up


def push_all(instances: list[FunctionServer], ids: list[str]) -> Counter[str]:
    """Every event pushed until it is acknowledged, spread over the instances; the answers."""
    pending = list(reversed(ids))
    lock = threading.Lock()
    answers: Counter[str] = Counter()
    deadline = time.monotonic() + 60

    def client(number: int) -> None:
        posters = [HttpPoster("127.0.0.1", i.port, lambda _: b"", timeout=30) for i in instances]
        try:
            turn = number
            while time.monotonic() < deadline:
                with lock:
                    if not pending:
                        return
                    event_id = pending.pop()
                body = json.dumps(push_envelope({**EVENT, "id": event_id}, message_id=event_id))
                turn += 1
                status, _, headers = posters[turn % len(posters)].exchange(body.encode())
                with lock:
                    answers[str(status)] += 1
                if status != 200:  # back on the subscription, after its Retry-After
                    time.sleep(float(headers.get("Retry-After") or 1))
                    with lock:
                        pending.insert(0, event_id)
        finally:
            for poster in posters:
                poster.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    return answers


@pytest.mark.parametrize(
    ("bucket", "retry_after"), [(RATE / 5, True), (RATE / 5, False), (RATE, True)]
)
def test_instances_sharing_a_token_deliver_every_event_once_with_few_429s(
    svix: Any, instances: list[FunctionServer], bucket: float, retry_after: bool
) -> None:
    svix.set_faults(
        latency_ms=5,
        rate_limit={"per_second": RATE, "burst": bucket, "retry_after": retry_after},
    )
    ids = [f"evt_shared_token_{n}" for n in range(EVENTS)]
    answers = push_all(instances, ids)
    stored = Counter(message["eventId"] for message in svix.messages())
    stats = svix.stats()
    assert answers["200"] == EVENTS
    assert set(stored) == set(ids)
    assert max(stored.values()) == 1
    assert stats["duplicate_source_events"] == 0
    # From a cold start, the cut that finds each instance's share included.
    assert stats["faults_injected"]["rate_limited"] <= 0.25 * EVENTS
