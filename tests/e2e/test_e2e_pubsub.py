"""End to end: Pub/Sub (emulator) push -> the relay as a real process -> Svix (emulator).

The claim under test: at-least-once delivery from Pub/Sub plus the relay's deterministic
idempotency key (and the event id as Svix's ``eventId``) make exactly one Svix message per
event, while Svix fails at random, rate-limits for a while, and the relay is SIGKILLed and
restarted mid-run. Poison messages end in the dead-letter topic (parked by the relay), and
nothing valid does.

Set-up: four topics with one push subscription each (the emulator pushes at most two messages
at a time per subscription; four give parallel pushes), each with the dead-letter topic, 20
attempts, a 10 s ack deadline and no retry policy (unreliable on the emulator). The relay's
parking topic is the same dead-letter topic, read by a pull subscription made before any
publish.

Run it with ``.venv/bin/python -m pytest tests/test_e2e_pubsub.py -m e2e -v -s`` to see the
counts; they are also written to ``e2e_summary.json`` in the test's tmp dir.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import random
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from svix_emulator.testing import RunningEmulator, start_emulator
from tests.support import OWN_EVENTS, SHARED
from tests.support.e2e import (
    POISON_IN_ARRAY,
    PlannedMessage,
    RelayProcess,
    Workload,
    build_workload,
    relay_environment,
    wait_until,
)
from tests.support.pubsub_emulator import (
    PubSubEmulator,
    ReceivedMessage,
    emulator_unavailable_reason,
    free_port,
)

REASON = emulator_unavailable_reason()
pytestmark = [pytest.mark.e2e, pytest.mark.skipif(REASON is not None, reason=REASON or "")]

SEED = 20261128
EVENTS = 2400
PROJECTS = ("e2e-acme", "e2e-globex", "e2e-initech")
SUBSCRIPTIONS = 4
ACK_DEADLINE_SECONDS = 10
MAX_DELIVERY_ATTEMPTS = 20
# Well under the ack deadline (which is also the push timeout): a push never outlives it.
TIME_BUDGET_SECONDS = 2
CONVERGE_TIMEOUT = 120.0
# Three times the emulator's ~1 s redelivery interval: a late redelivery shows up in it.
QUIET_SECONDS = 3.0
RATE_LIMIT_WINDOW_SECONDS = 3.0
OUTAGE_SECONDS = 3.0  # over TIME_BUDGET_SECONDS

# Random failures for the whole run (a new seed restarts the emulator's random sequence).
BASE_FAULTS: dict[str, Any] = {
    "errors": [
        {"status": 500, "probability": 0.05},
        {"status": 502, "probability": 0.03},  # an HTML body, as from a proxy
        {"status": 503, "probability": 0.01},
    ],
    "drop_before_store": {"probability": 0.01},
    "drop_after_store": {"probability": 0.03},
    # Past the relay's 1 s client timeout: the retry meets the in-flight idempotency key.
    "slow_after_store": {"seconds": 1.5, "probability": 0.02},
}
RATE_LIMIT = {"per_second": 20, "burst": 5, "retry_after": True}
OUTAGE_FAULTS: dict[str, Any] = {"errors": [{"status": 503, "probability": 1.0}]}


def templates() -> tuple[list[dict[str, Any]], str]:
    """The shared Gigs fixture events, or our own sample events where ../shared is absent."""
    shared = SHARED / "fixtures" / "gigs-events"
    source = shared if shared.is_dir() else OWN_EVENTS
    events = [json.loads(path.read_text()) for path in sorted(source.glob("*.json"))]
    assert events, f"no template events in {source}"
    where = "../shared/fixtures/gigs-events" if source == shared else "tests/data/events"
    return events, where


class DeadLetters:
    """Everything read from the dead-letter topic's pull subscription."""

    def __init__(self, pubsub: PubSubEmulator, subscription: str) -> None:
        self._pubsub = pubsub
        self._subscription = subscription
        self.received: list[ReceivedMessage] = []

    def pull(self) -> None:
        while batch := self._pubsub.pull(self._subscription, max_messages=1000):
            self.received.extend(batch)

    def drain(self, quiet_seconds: float = 1.0) -> None:
        self.received.extend(
            self._pubsub.pull_all(self._subscription, quiet_seconds=quiet_seconds, timeout=10)
        )

    def labels(self) -> Counter[str]:
        return Counter(m.attributes.get("e2e_poison", "?") for m in self.received)

    def complete(self, work: Workload) -> bool:
        """Every poison message is there, and the array's poison event as its own copy."""
        labels = self.labels()
        if any(labels[label] == 0 for label in work.poison):
            return False
        return any(
            m.attributes.get("relay_event_id") == work.poison[POISON_IN_ARRAY]
            for m in self.received
        )


def event_key(message: dict[str, Any]) -> tuple[str, str]:
    """(Svix app, the event's own id) of a stored message. The id comes from the payload, not
    from Svix's eventId, so that a relay that got eventId wrong shows duplicates, not losses."""
    return str(message["app"]), str(message["payload"].get("id"))


def valid_ids_in(message: ReceivedMessage, valid: set[str]) -> set[str]:
    """Valid event ids carried by a dead-letter message (there must be none)."""
    try:
        document = json.loads(message.data)
    except ValueError:
        return set()
    items = document if isinstance(document, list) else [document]
    return {item["id"] for item in items if isinstance(item, dict) and item.get("id") in valid}


@pytest.mark.timeout(280)
def test_every_event_reaches_svix_exactly_once_despite_faults_and_kills(tmp_path: Path):
    wall_started = time.monotonic()
    events, template_source = templates()
    work = build_workload(
        events, events=EVENTS, projects=PROJECTS, rng=random.Random(SEED), duplicate_share=0.1
    )
    total = len(work.expected)
    valid_ids = work.valid_event_ids
    summary: dict[str, Any] = {"template_source": template_source}

    with contextlib.ExitStack() as stack:
        pubsub = stack.enter_context(PubSubEmulator(project="e2e-relay"))
        svix: RunningEmulator = stack.enter_context(start_emulator(seed=SEED))
        dead_letter_topic = pubsub.create_topic("e2e-dead-letter")
        dead_letter_sub = pubsub.create_pull_subscription("e2e-dead-letter-pull", dead_letter_topic)
        dead = DeadLetters(pubsub, dead_letter_sub)

        relay = RelayProcess(
            port=free_port(),  # fixed from here on: the push subscriptions point at it
            env=relay_environment(
                {
                    "SVIX_AUTH_TOKEN": svix.token,
                    "SVIX_SERVER_URL": svix.url,
                    "RELAY_SVIX_TIMEOUT_SECONDS": "1",
                    "RELAY_TIME_BUDGET_SECONDS": str(TIME_BUDGET_SECONDS),
                    "RELAY_BACKOFF_INITIAL_SECONDS": "0.05",
                    "RELAY_BACKOFF_MAX_SECONDS": "0.5",
                    "RELAY_PARKING_TOPIC": dead_letter_topic,
                    "RELAY_LOG_FORMAT": "json",
                    **pubsub.env(),
                }
            ),
            log_dir=tmp_path,
        )
        stack.callback(relay.stop)
        relay.start()

        topics = []
        for index in range(SUBSCRIPTIONS):
            topic = pubsub.create_topic(f"e2e-events-{index}")
            pubsub.create_push_subscription(
                f"e2e-push-{index}",
                topic,
                relay.url,
                ack_deadline_seconds=ACK_DEADLINE_SECONDS,
                dead_letter_topic=dead_letter_topic,
                max_delivery_attempts=MAX_DELIVERY_ATTEMPTS,
            )
            topics.append(topic)

        def publish(messages: list[PlannedMessage], offset: int = 0) -> None:
            """Round-robin over the topics; `offset` sends a duplicate to another topic than
            its original, so two subscriptions push the same events at the same time."""
            per_topic: list[list[tuple[bytes, dict[str, str]]]] = [[] for _ in topics]
            for index, message in enumerate(messages):
                slot = (index + offset) % len(topics)
                per_topic[slot].append((message.data, message.attributes))
            for topic, batch in zip(topics, per_topic, strict=True):
                pubsub.publish(topic, batch)

        rng = random.Random(SEED + 1)
        first_wave = list(work.messages)
        rng.shuffle(first_wave)
        early_duplicates = work.duplicates[: len(work.duplicates) // 2]
        late_duplicates = work.duplicates[len(work.duplicates) // 2 :]

        def diagnose() -> str:
            return (
                f"svix stats: {json.dumps(svix.stats())}\n"
                f"dead letters: {dict(dead.labels())}\n"
                f"relay running: {relay.running}, kills: {relay.kills}\n{relay.tail()}"
            )

        try:
            svix.set_faults(**BASE_FAULTS, seed=SEED)
            publish(first_wave)
            publish(early_duplicates, offset=1)

            # The script of the run, driven by how many events have reached Svix; each step
            # runs once, in order: (name, when, what).
            opened: dict[str, float] = {}
            restart_seconds: list[float] = []
            late_published = False

            def kill_and_restart() -> None:
                restart_seconds.append(relay.restart())

            def publish_late_duplicates() -> None:
                nonlocal late_published
                kill_and_restart()
                publish(late_duplicates, offset=2)
                late_published = True

            def since(step: str) -> float:
                return time.monotonic() - opened[step]

            steps: list[tuple[str, Callable[[int], bool], Callable[[], None]]] = [
                ("kill 1", lambda n: n >= total / 3, kill_and_restart),
                (
                    "429 window opens",
                    lambda n: n >= total / 2,
                    lambda: svix.set_faults(**BASE_FAULTS, rate_limit=RATE_LIMIT, seed=SEED + 2),
                ),
                (
                    "429 window closes",
                    lambda n: since("429 window opens") >= RATE_LIMIT_WINDOW_SECONDS,
                    lambda: svix.set_faults(**BASE_FAULTS, seed=SEED + 3),
                ),
                # Longer than the relay's time budget: every message in flight is answered 503
                # and must come back from Pub/Sub (the nack path, not just in-request retries).
                (
                    "outage starts",
                    lambda n: n >= 0.55 * total,
                    lambda: svix.set_faults(**OUTAGE_FAULTS),
                ),
                (
                    "outage ends",
                    lambda n: since("outage starts") >= OUTAGE_SECONDS,
                    lambda: svix.set_faults(**BASE_FAULTS, seed=SEED + 4),
                ),
                ("kill 2, late duplicates", lambda n: n >= 2 * total / 3, publish_late_duplicates),
                # Faults off for the last 3 %: convergence within the deadline must not hang on
                # one unlucky message behind Pub/Sub's redelivery and backoff. By now the run has
                # seen every fault kind, the 429 window, the outage and both kills.
                ("faults off", lambda n: n >= 0.97 * total, lambda: svix.set_faults()),
            ]
            timeline: dict[str, float] = {}
            summary["timeline_seconds"] = timeline
            deadline = time.monotonic() + CONVERGE_TIMEOUT
            next_pull = 0.0
            next_listing = 0.0
            missing: set[tuple[str, str]] = set(work.expected)
            while True:
                now = time.monotonic()
                created = int(svix.stats()["messages_created"])
                if now >= next_pull:
                    dead.pull()
                    next_pull = now + 0.25
                if steps and steps[0][1](created):
                    name, _when, action = steps.pop(0)
                    opened[name] = now
                    timeline[name] = round(now - wall_started, 2)
                    action()
                if late_published and created >= total and now >= next_listing:
                    present = {event_key(m) for m in svix.messages()}
                    missing = set(work.expected) - present
                    next_listing = now + 2.0
                    if not missing and dead.complete(work):
                        break
                if not relay.running:
                    pytest.fail(f"the relay died on its own\n{diagnose()}")
                if now >= deadline:
                    missing = set(work.expected) - {event_key(m) for m in svix.messages()}
                    shown = sorted(missing)[:20]
                    pytest.fail(
                        f"not converged within {CONVERGE_TIMEOUT} s: {created} of {total} "
                        f"messages created; {len(missing)} events missing (first 20): {shown}\n"
                        f"{relay.lines_mentioning([i for _a, i in shown])}\n{diagnose()}"
                    )
                time.sleep(0.05)
            converged_after = time.monotonic() - wall_started

            # Quiet: nothing logged by the relay and nothing new in Svix for QUIET_SECONDS, so
            # a late redelivery (and any duplicate it would make) is caught.
            def activity() -> tuple[int, int]:
                return relay.log_size(), int(svix.stats()["messages_created"])

            last_seen = [activity()]
            last_change = [time.monotonic()]

            def quiet() -> bool:
                seen = activity()
                if seen != last_seen[0]:
                    last_seen[0], last_change[0] = seen, time.monotonic()
                return time.monotonic() - last_change[0] >= QUIET_SECONDS

            wait_until(quiet, timeout=60, what="the relay and Svix to go quiet", describe=diagnose)
            dead.drain()
            assert relay.running, f"the relay died during the quiet period\n{diagnose()}"
        except BaseException:
            print(diagnose())
            raise

        stats = svix.stats()
        messages = svix.messages()

    wall_seconds = time.monotonic() - wall_started

    # ------------------------------------------------------------------ what reached Svix
    per_event = Counter(event_key(m) for m in messages)
    duplicated = {key: count for key, count in per_event.items() if count > 1}
    missing = set(work.expected) - set(per_event)
    unexpected = set(per_event) - set(work.expected)
    wrong_type = [
        (*event_key(m), m["eventType"])
        for m in messages
        if work.expected.get(event_key(m)) not in (None, m["eventType"])
    ]
    payload_id_mismatch = [m["eventId"] for m in messages if m["payload"].get("id") != m["eventId"]]

    # ------------------------------------------------------------------ the dead-letter topic
    parked = [m for m in dead.received if "relay_parked_reason" in m.attributes]
    dead_lettered = [
        m for m in dead.received if "CloudPubSubDeadLetterSourceDeliveryCount" in m.attributes
    ]
    labels = dead.labels()
    poison_missing = sorted(label for label in work.poison if labels[label] == 0)
    array_poison_parked = [
        m for m in parked if m.attributes.get("relay_event_id") == work.poison[POISON_IN_ARRAY]
    ]
    valid_in_dead_letters = sorted(
        set().union(*(valid_ids_in(m, valid_ids) for m in dead.received))
    )
    wrongly_parked_ids = [
        m.attributes.get("relay_event_id")
        for m in dead.received
        if m.attributes.get("relay_event_id") in valid_ids
    ]

    incarnations = relay.message_ids_per_incarnation()
    # Messages an incarnation was working on when it was killed (or had nacked just before),
    # taken up again by the next one.
    across_kills = [len(a & b) for a, b in itertools.pairwise(incarnations)]
    outcomes = Counter(str(r["outcome"]) for r in relay.records() if "outcome" in r)
    faults = stats["faults_injected"]
    summary.update(
        {
            "events_published": {
                "valid_unique": total,
                "poison_messages": len(work.poison),
            },
            "messages_published": len(work.messages) + len(work.duplicates),
            "duplicates_published": {
                "messages": len(work.duplicates),
                "events": sum(len(d.event_ids) for d in work.duplicates),
                "late_after_second_restart": len(late_duplicates),
            },
            "subscriptions": SUBSCRIPTIONS,
            "faults_injected": faults,
            "kills": relay.kills,
            "relay_restart_seconds": [round(s, 2) for s in restart_seconds],
            "pubsub_messages_taken_up_across_each_kill": across_kills,
            "svix": {
                "messages_created": stats["messages_created"],
                "messages_per_app": stats["messages_per_app"],
                "duplicates_found": sum(count - 1 for count in duplicated.values()),
                "duplicate_source_events": stats["duplicate_source_events"],
                "idempotent_replays": stats["idempotent_replays"],
                "conflicts_409": stats["conflicts"],
                "requests": stats["requests"],
            },
            "dead_letter_topic": {
                "messages": len(dead.received),
                "parked_by_relay": len(parked),
                "dead_lettered_by_pubsub": len(dead_lettered),
                "per_poison_label": dict(labels),
            },
            "relay_event_outcomes": dict(outcomes),
            "converged_after_seconds": round(converged_after, 1),
            "wall_seconds": round(wall_seconds, 1),
        }
    )
    report = json.dumps(summary, indent=2)
    (tmp_path / "e2e_summary.json").write_text(report)
    print(f"\nend-to-end run:\n{report}")

    # Exactly once.
    if duplicated or missing:
        ids = [event_id for _app, event_id in sorted(duplicated) + sorted(missing)][:20]
        pytest.fail(
            f"{len(duplicated)} event(s) duplicated in Svix (first: {sorted(duplicated)[:10]}), "
            f"{len(missing)} lost (first: {sorted(missing)[:10]}); summary:\n{report}\n"
            f"relay log lines for them:\n{relay.lines_mentioning(ids)}"
        )
    assert not unexpected, f"messages in Svix for events never published: {sorted(unexpected)[:10]}"
    assert stats["duplicate_source_events"] == 0
    assert stats["messages_created"] == total == len(messages)
    assert not wrong_type, wrong_type[:10]
    assert not payload_id_mismatch, payload_id_mismatch[:10]

    # Every poison message parked (or dead-lettered), nothing valid.
    assert not poison_missing, f"poison not in the dead-letter topic: {poison_missing}\n{report}"
    assert array_poison_parked, "the poison event inside an array was not parked on its own"
    for message in parked:
        expected_id = work.poison.get(message.attributes.get("e2e_poison", ""), "")
        assert message.attributes["relay_event_id"].startswith(expected_id), message.attributes
    assert not valid_in_dead_letters, (
        f"valid events in the dead-letter topic: {valid_in_dead_letters}"
    )
    assert not wrongly_parked_ids, f"valid events parked: {wrongly_parked_ids}"

    # And the run really was hostile: otherwise all of the above proves little.
    assert relay.kills >= 2
    assert faults["rate_limited"] > 0, "the 429 window saw no request"
    assert sum(faults.values()) > faults["rate_limited"], "no random Svix failure was injected"
    assert outcomes["failed"] > 0, "no event ran out of its time budget: the nack path went unused"
