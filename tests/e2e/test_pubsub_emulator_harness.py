"""The Pub/Sub emulator harness, and the emulator quirks the relay's design leans on.

Observed on the emulator in ``google-cloud-cli-pubsub-emulator`` (0.8.20, Java 17);
each test's docstring says what it pins down:

* Start-up: about 0.7-1.3 s until the emulator answers HTTP.
* Wrapped push: ``{"subscription", "message": {"data", "attributes", "messageId",
  "message_id", "publishTime", "publish_time"}}``, ``Content-Type: application/json``;
  **no** ``deliveryAttempt`` even with a dead-letter policy (a *pull* does get it), no
  ``orderingKey``, no ``Authorization``.
* Unwrapped push with write-metadata: the raw data as body, ``Content-type:
  application/x-www-form-urlencoded``, ``x-goog-pubsub-message-id``,
  ``x-goog-pubsub-publish-time``, ``x-goog-pubsub-subscription-name`` (full path) and
  one header per attribute, name as published.
* 200, 201 and 204 ack; **202 is a nack**, as is 500; a nack comes back about 1 s later
  with the same ``messageId``.
* Dead-lettering after ``maxDeliveryAttempts`` pushes: a *new* message on the
  dead-letter topic with the original data and attributes plus
  ``CloudPubSubDeadLetterSource*`` attributes.
* At most **two** pushes in flight per subscription (not one).
* 2,000 messages publish in two requests in about 0.1 s.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from tests.support.pubsub_emulator import (
    DEFAULT_EMULATOR_BIN,
    EmulatorError,
    PubSubEmulator,
    PushRecorder,
    PushRequest,
    emulator_unavailable_reason,
)

REASON = emulator_unavailable_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")

ROOT = Path(__file__).resolve().parents[2]
PUBLISH_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
DEAD_LETTER_ATTRIBUTES = {
    "CloudPubSubDeadLetterSourceDeliveryCount",
    "CloudPubSubDeadLetterSourceSubscription",
    "CloudPubSubDeadLetterSourceSubscriptionProject",
    "CloudPubSubDeadLetterSourceTopicPublishTime",
}
_names = itertools.count(1)
LOCAL = requests.Session()
LOCAL.trust_env = False  # no proxy for 127.0.0.1


def unique(label: str) -> str:
    """A fresh topic or subscription name (at least 3 characters)."""
    return f"h{next(_names):03d}-{label}"


@pytest.fixture(scope="module")
def emulator() -> Iterator[PubSubEmulator]:
    with PubSubEmulator(project="harness-test") as emu:
        yield emu


@pytest.fixture
def recorder(emulator: PubSubEmulator) -> Iterator[PushRecorder]:
    """A push recorder answering 200; its subscriptions are deleted afterwards."""
    with PushRecorder() as rec:
        yield rec
        for sub in emulator.list_subscriptions():
            if sub.get("pushConfig", {}).get("pushEndpoint", "").startswith(rec.url):
                emulator.delete_subscription(sub["name"])


def by_path(statuses: dict[str, int]) -> Callable[[PushRequest], int]:
    """A responder answering by request path (200 for other paths)."""
    return lambda request: statuses.get(request.path, 200)


def on(path: str) -> Callable[[PushRequest], bool]:
    """A ``wait_for`` filter: requests to ``path``."""
    return lambda request: request.path == path


# --------------------------------------------------------------------- lifecycle


def test_starts_on_a_free_port_and_answers(emulator: PubSubEmulator, record_property):
    """The emulator answers ``GET /`` with ``Ok``; start-up time is recorded (about 1 s)."""
    assert emulator.running
    assert re.fullmatch(r"127\.0\.0\.1:\d+", emulator.host)
    assert emulator.startup_seconds is not None
    assert emulator.startup_seconds < 30
    record_property("emulator_startup_seconds", round(emulator.startup_seconds, 3))
    print(f"Pub/Sub emulator answered after {emulator.startup_seconds:.2f} s")
    assert LOCAL.get(emulator.base_url + "/", timeout=5).text.strip() == "Ok"
    assert emulator.env() == {
        "PUBSUB_EMULATOR_HOST": emulator.host,
        "PUBSUB_PROJECT_ID": "harness-test",
    }


def test_stop_kills_the_process_group_and_removes_the_data_dir():
    emu = PubSubEmulator().start()
    try:
        assert emu._process is not None
        pgid = emu._process.pid
        assert emu.data_dir is not None
        data_dir = emu.data_dir
        assert emu.log_path is not None
        assert emu.log_path.exists()
        assert emu.create_topic("lifecycle") == "projects/test-project/topics/lifecycle"
    finally:
        emu.stop()
    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)
    assert not data_dir.exists()
    assert not emu.running
    emu.stop()  # idempotent


def test_unavailable_reason_names_the_missing_piece(tmp_path: Path):
    missing = tmp_path / "cloud-pubsub-emulator"
    reason = emulator_unavailable_reason(missing)
    assert reason is not None
    assert "not installed" in reason
    assert str(missing) in reason
    missing.write_text("#!/bin/sh\n")
    assert "not executable" in (emulator_unavailable_reason(missing) or "")
    with pytest.raises(EmulatorError, match="not installed"):
        PubSubEmulator(binary=tmp_path / "nothing").start()


def test_an_emulator_that_exits_is_retried_then_reported(tmp_path: Path):
    """An exit before answering (a port taken meanwhile) is retried on new ports, then
    reported with the log tail; nothing is left behind."""
    fake = tmp_path / "fake-emulator"
    fake.write_text(
        '#!/bin/sh\necho "started with $*" >> "$0.calls"\necho "no luck on $2"\nexit 3\n'
    )
    fake.chmod(0o755)
    emu = PubSubEmulator(binary=fake)
    with pytest.raises(EmulatorError, match=r"exited with 3(.|\n)*no luck on --port=\d+"):
        emu.start(attempts=3)
    calls = (tmp_path / "fake-emulator.calls").read_text().splitlines()
    assert len(calls) == 3
    assert all("--host=127.0.0.1 --port=" in call for call in calls)
    assert emu.data_dir is None
    assert not emu.running


def test_binary_path_is_overridable_by_environment():
    code = "from tests.support.pubsub_emulator import EMULATOR_BIN; print(EMULATOR_BIN)"
    elsewhere = str(ROOT / "no-such-dir" / "cloud-pubsub-emulator")
    env = dict(os.environ, PUBSUB_EMULATOR_BIN=elsewhere)
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == elsewhere
    env.pop("PUBSUB_EMULATOR_BIN")
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == str(DEFAULT_EMULATOR_BIN)


def test_names_need_three_characters(emulator: PubSubEmulator):
    """The emulator answers 400 INVALID_ARGUMENT to a 2-character name; the harness checks first."""
    with pytest.raises(ValueError, match="at least 3"):
        emulator.create_topic("ab")
    with pytest.raises(EmulatorError, match="400"):
        emulator.request("PUT", "projects/harness-test/topics/ab")
    assert emulator.create_topic("abc") == "projects/harness-test/topics/abc"


# --------------------------------------------------------------------- REST admin


def test_publish_2000_messages_and_pull_them_all(emulator: PubSubEmulator, record_property):
    """2,000 messages go out in two publish calls (about 0.1 s); all are pulled back."""
    topic = emulator.create_topic(unique("bulk"))
    sub = emulator.create_pull_subscription(unique("bulk-pull"), topic)
    messages = [(f"m{i}".encode(), {"i": str(i)}) for i in range(2000)]
    started = time.monotonic()
    ids = emulator.publish(topic, messages)
    record_property("publish_2000_seconds", round(time.monotonic() - started, 3))
    assert len(ids) == 2000
    assert len(set(ids)) == 2000
    got = emulator.pull_all(sub, quiet_seconds=0.2, timeout=30, min_messages=2000)
    assert len(got) == 2000
    assert {m.message_id for m in got} == set(ids)
    assert {m.attributes["i"]: m.data for m in got} == {a["i"]: d for d, a in messages}
    assert all(m.delivery_attempt is None for m in got)
    assert emulator.pull(sub) == []


def test_pull_reports_delivery_attempt_only_with_a_dead_letter_policy(emulator: PubSubEmulator):
    """Pull (unlike push) carries ``deliveryAttempt``; it counts up with each redelivery."""
    topic = emulator.create_topic(unique("attempts"))
    dead = emulator.create_topic(unique("attempts-dead"))
    with_policy = emulator.create_pull_subscription(
        unique("with-dl"), topic, dead_letter_topic=dead, max_delivery_attempts=5
    )
    plain = emulator.create_pull_subscription(unique("plain"), topic)
    emulator.publish(topic, [(b"x", {})])
    [first] = emulator.pull_all(plain, quiet_seconds=0, timeout=5, min_messages=1)
    assert first.delivery_attempt is None
    [pulled] = emulator.pull(with_policy, ack=False)
    assert pulled.delivery_attempt == 1
    emulator.request(  # nack: deadline 0 makes it available again at once
        "POST",
        f"{with_policy}:modifyAckDeadline",
        {"ackIds": [pulled.ack_id], "ackDeadlineSeconds": 0},
    )
    [again] = emulator.pull_all(with_policy, quiet_seconds=0, timeout=5, min_messages=1)
    assert again.message_id == pulled.message_id
    assert again.delivery_attempt == 2


def test_google_cloud_pubsub_client_reaches_the_emulator_via_env(
    emulator: PubSubEmulator, monkeypatch: pytest.MonkeyPatch
):
    """``env()`` is what a google-cloud-pubsub client (or a child process) needs."""
    from google.cloud import pubsub_v1

    for key, value in emulator.env().items():
        monkeypatch.setenv(key, value)
    topic = emulator.create_topic(unique("client"))
    sub = emulator.create_pull_subscription(unique("client-pull"), topic)
    publisher = pubsub_v1.PublisherClient()
    try:
        message_id = publisher.publish(topic, b"from the client", origin="client").result(10)
    finally:
        publisher.stop()
    [got] = emulator.pull_all(sub, quiet_seconds=0, timeout=5, min_messages=1)
    assert (got.message_id, got.data, got.attributes) == (
        message_id,
        b"from the client",
        {"origin": "client"},
    )


# --------------------------------------------------------------------- push quirks


def test_wrapped_push_body_shape(emulator: PubSubEmulator, recorder: PushRecorder):
    """Wrapped push, with and without a dead-letter policy. Example body (slashes arrive escaped)::

        {"subscription":"projects\\/P\\/subscriptions\\/S",
         "message":{"publishTime":"2026-11-28T19:57:59.102Z","data":"eyJhIjogMX0=",
                    "publish_time":"2026-11-28T19:57:59.102Z","messageId":"1",
                    "attributes":{"Other-Key":"x y","k":"v"},"message_id":"1"}}

    Headers: ``Content-Type: application/json``, ``User-Agent: Java/17.0.15``, no
    ``Authorization``. No ``deliveryAttempt`` even with a dead-letter policy, no
    ``orderingKey``; ``attributes`` is ``{}`` when there are none and ``data`` is ``""``
    when empty (a message with neither is refused by publish: 400 "Some messages are empty").
    """
    topic = emulator.create_topic(unique("wrapped"))
    dead = emulator.create_topic(unique("wrapped-dead"))
    plain = emulator.create_push_subscription(unique("wrapped"), topic, recorder.endpoint("/p"))
    with_dl = emulator.create_push_subscription(
        unique("wrapped-dl"), topic, recorder.endpoint("/d"), dead_letter_topic=dead
    )
    data = json.dumps({"id": "evt_1", "type": "user.created"}).encode()
    [first_id] = emulator.publish(topic, [(data, {"k": "v", "Mixed-Case": "x y"})])
    [second_id] = emulator.publish(topic, [(b"second", {})])
    [third_id] = emulator.publish(topic, [(b"", {"only": "attributes"})])
    pushes = recorder.wait_for(6, timeout=10)
    assert Counter(p.path for p in pushes) == {"/p": 3, "/d": 3}
    for push in pushes:
        assert push.method == "POST"
        assert push.headers["content-type"] == "application/json"
        assert "authorization" not in push.headers
        body = push.json()
        assert set(body) == {"message", "subscription"}  # no deliveryAttempt, even for /d
        assert body["subscription"] == (plain if push.path == "/p" else with_dl)
        message = body["message"]
        assert set(message) == {
            "data",
            "attributes",
            "messageId",
            "message_id",
            "publishTime",
            "publish_time",
        }
        assert message["messageId"] == message["message_id"]
        assert message["publishTime"] == message["publish_time"]
        assert PUBLISH_TIME.match(message["publishTime"])
        if message["messageId"] == first_id:
            assert base64.b64decode(message["data"]) == data
            assert message["attributes"] == {"k": "v", "Mixed-Case": "x y"}
        elif message["messageId"] == second_id:
            assert base64.b64decode(message["data"]) == b"second"
            assert message["attributes"] == {}
        else:
            assert message["messageId"] == third_id
            assert message["data"] == ""
            assert message["attributes"] == {"only": "attributes"}


def test_unwrapped_push_with_metadata_headers(emulator: PubSubEmulator, recorder: PushRecorder):
    """Unwrapped push. With write-metadata the headers are (in this order)::

        Mixed-Case: 1                       # one per attribute, name as published
        x-goog-pubsub-message-id: 1
        x-goog-pubsub-publish-time: 2026-11-28T20:00:07.342Z
        x-goog-pubsub-subscription-name: projects/P/subscriptions/S
        User-Agent: Java/17.0.15
        Accept: text/html, image/gif, image/jpeg, */*; q=0.2
        Content-type: application/x-www-form-urlencoded   # whatever the data is
        Content-Length: 6

    and the body is the raw data. Without write-metadata only the generic headers
    arrive. Attribute names are sent unchecked (``a b: c`` is not a valid header), and
    an attribute named like a metadata header is overwritten by the metadata.
    """
    topic = emulator.create_topic(unique("unwrapped"))
    meta = emulator.create_push_subscription(
        unique("meta"), topic, recorder.endpoint("/m"), no_wrapper=True, write_metadata=True
    )
    emulator.create_push_subscription(
        unique("bare"), topic, recorder.endpoint("/b"), no_wrapper=True
    )
    data = b'{"id": "evt_1"}'
    attributes = {"Mixed-Case": "1", "a b": "c", "x-goog-pubsub-message-id": "spoof"}
    [message_id] = emulator.publish(topic, [(data, attributes)])
    pushes = {p.path: p for p in recorder.wait_for(2, timeout=10)}

    with_meta = pushes["/m"]
    assert with_meta.body == data
    assert with_meta.headers["content-type"] == "application/x-www-form-urlencoded"
    assert with_meta.headers["x-goog-pubsub-message-id"] == message_id
    assert with_meta.headers["x-goog-pubsub-subscription-name"] == meta
    assert PUBLISH_TIME.match(with_meta.headers["x-goog-pubsub-publish-time"])
    raw_names = [name for name, _ in with_meta.raw_headers]
    assert "Mixed-Case" in raw_names  # case kept
    assert ("a b", "c") in with_meta.raw_headers  # not a valid HTTP header name
    assert raw_names.count("x-goog-pubsub-message-id") == 1  # the attribute lost
    assert "authorization" not in with_meta.headers

    bare = pushes["/b"]
    assert bare.body == data
    assert bare.headers["content-type"] == "application/x-www-form-urlencoded"
    assert not [name for name in bare.headers if name.startswith("x-goog") or name == "a b"]
    assert "mixed-case" not in bare.headers


def test_200_201_204_ack_while_202_and_500_nack(emulator: PubSubEmulator, recorder: PushRecorder):
    """202 is a nack on the emulator (real Pub/Sub acks it); a nack returns after about 1 s."""
    statuses = {"/s200": 200, "/s201": 201, "/s204": 204, "/s202": 202, "/s500": 500}
    recorder.responder = by_path(statuses)
    topic = emulator.create_topic(unique("acks"))
    for path in statuses:
        emulator.create_push_subscription(unique(path[1:]), topic, recorder.endpoint(path))
    [message_id] = emulator.publish(topic, [(b"x", {})])
    for path in ("/s202", "/s500"):
        first, second = recorder.wait_for(2, timeout=10, where=on(path))[:2]
        assert first.json()["message"]["messageId"] == message_id
        assert second.json()["message"]["messageId"] == message_id  # stable on redelivery
        assert 0.5 < second.received_at - first.received_at < 3.0
    acked = ("/s200", "/s201", "/s204")
    with pytest.raises(TimeoutError):  # had they been nacked, they would be back by now
        recorder.wait_for(4, timeout=0.5, where=lambda p: p.path in acked)
    assert Counter(p.path for p in recorder.requests if p.path in acked) == dict.fromkeys(acked, 1)


def test_dead_lettering_after_max_delivery_attempts(
    emulator: PubSubEmulator, recorder: PushRecorder
):
    """After 5 nacked pushes (about 4 s apart from first to last) the message is re-published
    to the dead-letter topic as a new message (new id) with its data and attributes plus::

        CloudPubSubDeadLetterSourceDeliveryCount: "5"
        CloudPubSubDeadLetterSourceSubscription: "<short subscription name>"
        CloudPubSubDeadLetterSourceSubscriptionProject: "<project>"
        CloudPubSubDeadLetterSourceTopicPublishTime: "<original publishTime>"

    and the source subscription pushes it no more.
    """
    recorder.responder = lambda _request: 500
    topic = emulator.create_topic(unique("dl-src"))
    dead = emulator.create_topic(unique("dl-dead"))
    dead_sub = emulator.create_pull_subscription(unique("dl-dead-pull"), dead)
    source_name = unique("dl-push")
    emulator.create_push_subscription(
        source_name,
        topic,
        recorder.endpoint("/dl"),
        dead_letter_topic=dead,
        max_delivery_attempts=5,
    )
    [message_id] = emulator.publish(topic, [(b"poison", {"k": "v"})])
    [dead_lettered] = emulator.pull_all(dead_sub, quiet_seconds=0, timeout=20, min_messages=1)
    pushes = recorder.requests
    assert len(pushes) == 5
    assert {p.json()["message"]["messageId"] for p in pushes} == {message_id}
    publish_time = pushes[0].json()["message"]["publishTime"]

    assert dead_lettered.data == b"poison"
    assert dead_lettered.message_id != message_id
    assert dead_lettered.attributes == {
        "k": "v",
        "CloudPubSubDeadLetterSourceDeliveryCount": "5",
        "CloudPubSubDeadLetterSourceSubscription": source_name,
        "CloudPubSubDeadLetterSourceSubscriptionProject": emulator.project,
        "CloudPubSubDeadLetterSourceTopicPublishTime": publish_time,
    }
    with pytest.raises(TimeoutError):
        recorder.wait_for(6, timeout=1.5)


def test_at_most_two_pushes_in_flight_per_subscription(
    emulator: PubSubEmulator, recorder: PushRecorder
):
    """A slow endpoint sees at most two concurrent pushes per subscription (FACTS.md said
    one); the emulator keeps a pool of two, so one slow push does not stall the rest.
    Tests that want more concurrency need several subscriptions."""
    lock = threading.Lock()
    in_flight: Counter[str] = Counter()
    peak: Counter[str] = Counter()

    def slow(request: PushRequest) -> int:
        with lock:
            in_flight[request.path] += 1
            peak[request.path] = max(peak[request.path], in_flight[request.path])
        time.sleep(0.3)
        with lock:
            in_flight[request.path] -= 1
        return 200

    recorder.responder = slow
    topic = emulator.create_topic(unique("slow"))
    emulator.create_push_subscription(unique("slow-a"), topic, recorder.endpoint("/a"))
    emulator.create_push_subscription(unique("slow-b"), topic, recorder.endpoint("/b"))
    emulator.publish(topic, [(f"m{i}".encode(), {}) for i in range(6)])
    recorder.wait_for(12, timeout=15)
    assert peak == {"/a": 2, "/b": 2}


# --------------------------------------------------------------------- push recorder


def test_push_recorder_records_and_answers_per_request():
    def respond(request: PushRequest) -> int:
        if request.path == "/boom":
            raise RuntimeError("responder failed")
        return int(request.path.strip("/"))

    with PushRecorder(respond) as rec:
        assert LOCAL.post(rec.endpoint("/204"), data=b"a", timeout=5).status_code == 204
        assert LOCAL.post(rec.endpoint("/boom"), data=b"b", timeout=5).status_code == 500
        got = rec.wait_for(2, timeout=5)
        assert [(p.path, p.status, p.body) for p in got] == [
            ("/204", 204, b"a"),
            ("/boom", 500, b"b"),
        ]
        with pytest.raises(TimeoutError, match="expected 3"):
            rec.wait_for(3, timeout=0.1)
        rec.clear()
        assert rec.requests == []
