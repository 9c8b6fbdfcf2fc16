"""A small harness around the Google Cloud Pub/Sub emulator, for tests.

Plain classes and functions (no pytest fixtures here; ``conftest.py`` wires them):

* :func:`emulator_unavailable_reason` tells a test module whether it has to skip.
* :class:`PubSubEmulator` starts the emulator on a free port in its own process
  group, waits until it answers, and administers it through the emulator's REST
  API (HTTP/JSON on the same port as gRPC): topics, push and pull subscriptions,
  publish, pull, acknowledge, modifyPushConfig.
* :class:`PushRecorder` is a threaded local HTTP server that records every push
  request and answers each with a status chosen by a callable.

Quirks of the emulator on these machines (version 0.8.20) are pinned down by
``tests/test_pubsub_emulator_harness.py``; the short version:

* 200 and 204 ack a push; **202 is a nack** (real Pub/Sub acks it), so is 500.
  A nacked message comes back about 1 s later.
* It pushes one message at a time per subscription.
* A pull on an empty subscription blocks for about 90 s unless
  ``returnImmediately`` is set, so :meth:`PubSubEmulator.pull` always sets it.
* Topic and subscription names need at least 3 characters.
* Leave ``retryPolicy`` off: with several messages backing off it can stop
  redelivering for good. This harness does not offer it.

The emulator binary defaults to the Debian package's install path and can be
overridden with the ``PUBSUB_EMULATOR_BIN`` environment variable.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import requests

__all__ = [
    "DEFAULT_EMULATOR_BIN",
    "EMULATOR_BIN",
    "EmulatorError",
    "PubSubEmulator",
    "PushRecorder",
    "PushRequest",
    "ReceivedMessage",
    "emulator_unavailable_reason",
]

#: Where ``google-cloud-cli-pubsub-emulator`` installs the emulator on Debian.
DEFAULT_EMULATOR_BIN = Path(
    "/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator"
)
#: The emulator start script in use: ``$PUBSUB_EMULATOR_BIN`` or the default.
EMULATOR_BIN = Path(os.environ.get("PUBSUB_EMULATOR_BIN") or DEFAULT_EMULATOR_BIN)

#: Real Pub/Sub accepts at most 1,000 messages and 10 MB per publish request.
_PUBLISH_MAX_MESSAGES = 1000
_PUBLISH_MAX_BYTES = 9 * 1024 * 1024  # base64 and JSON overhead included, with a margin
_MIN_NAME_LENGTH = 3


class EmulatorError(RuntimeError):
    """The emulator failed to start, or a REST call to it returned an error."""


class _EmulatorExited(EmulatorError):
    """The emulator exited while starting (a taken port, for one): worth a retry."""


def _java_executable() -> str | None:
    """The ``java`` the emulator's start script would run, or None."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / "java"
        return str(candidate) if os.access(candidate, os.X_OK) else None
    return shutil.which("java")


def emulator_unavailable_reason(binary: Path | None = None) -> str | None:
    """Why emulator tests cannot run here, as a sentence; None when they can.

    Checks that the emulator start script exists and is executable and that the
    ``java`` it runs (``$JAVA_HOME/bin/java`` or ``java`` on PATH) is present.
    """
    binary = EMULATOR_BIN if binary is None else binary
    if not binary.is_file():
        return (
            f"Pub/Sub emulator not installed (Debian 13 machine?): {binary} missing; "
            "install google-cloud-cli-pubsub-emulator or set PUBSUB_EMULATOR_BIN"
        )
    if not os.access(binary, os.X_OK):
        return f"Pub/Sub emulator start script is not executable: {binary}"
    if _java_executable() is None:
        where = "$JAVA_HOME/bin/java" if os.environ.get("JAVA_HOME") else "java on PATH"
        return f"Pub/Sub emulator needs Java (17 or later), but there is no {where}"
    return None


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that the OS reports free right now (it may be taken later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _pdeathsig_preexec() -> Callable[[], None] | None:
    """A ``preexec_fn`` that has Linux kill the child when its parent dies.

    Keeps an emulator from outliving a test run that was killed (SIGKILL
    skips ``atexit``). The signal fires when the *thread* that forked the
    child ends, so it is only used from the main thread.
    """
    if not sys.platform.startswith("linux"):
        return None
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1
    sigkill = int(signal.SIGKILL)

    def preexec() -> None:
        prctl(pr_set_pdeathsig, sigkill, 0, 0, 0)

    return preexec


@dataclass(frozen=True)
class ReceivedMessage:
    """A message as returned by a pull."""

    data: bytes
    attributes: dict[str, str]
    message_id: str
    publish_time: str
    #: Only set when the subscription has a dead-letter policy.
    delivery_attempt: int | None
    #: For :meth:`PubSubEmulator.acknowledge` after ``pull(..., ack=False)``.
    ack_id: str = ""


class PubSubEmulator:
    """One Pub/Sub emulator process, started on a free port of 127.0.0.1.

    Use as a context manager, or call :meth:`start` and :meth:`stop`::

        with PubSubEmulator() as emu:
            topic = emu.create_topic("events")
            ...

    Names may be short (``"events"``) or full paths
    (``"projects/P/topics/events"``). The emulator keeps everything in memory;
    its working directory and log (:attr:`log_path`) live in a temporary folder
    that :meth:`stop` deletes (set ``keep_data_dir=True`` to keep it).
    """

    host: str
    project: str

    def __init__(
        self,
        project: str = "test-project",
        *,
        binary: Path | None = None,
        startup_timeout: float = 60.0,
        request_timeout: float = 30.0,
        keep_data_dir: bool = False,
    ) -> None:
        self.project = project
        self.binary = EMULATOR_BIN if binary is None else binary
        self.startup_timeout = startup_timeout
        self.request_timeout = request_timeout
        self.keep_data_dir = keep_data_dir
        self.host = ""
        self.data_dir: Path | None = None
        #: Seconds from spawning the process until it first answered HTTP.
        self.startup_seconds: float | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._session = requests.Session()
        self._session.trust_env = False  # never send 127.0.0.1 traffic through a proxy

    # ----------------------------------------------------------------- lifecycle

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{self.host}"

    @property
    def log_path(self) -> Path | None:
        """The emulator's combined stdout and stderr, while the data dir exists."""
        return None if self.data_dir is None else self.data_dir / "emulator.log"

    @property
    def running(self) -> bool:
        """Whether the emulator process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self, attempts: int = 3) -> Self:
        """Start the emulator and wait until it answers; returns ``self``.

        A port taken between asking the OS for it and the emulator binding it
        makes the emulator exit; that is retried on a new port up to
        ``attempts`` times. Raises :class:`EmulatorError` with the log tail when
        it does not come up.
        """
        if self._process is not None:
            raise EmulatorError("emulator already started")
        reason = emulator_unavailable_reason(self.binary)
        if reason is not None:
            raise EmulatorError(reason)
        self.data_dir = Path(tempfile.mkdtemp(prefix="pubsub-emulator-"))
        atexit.register(self.stop)
        last_error: EmulatorError | None = None
        for _ in range(max(1, attempts)):
            try:
                self._spawn_and_wait()
                return self
            except EmulatorError as exc:
                last_error = exc
                self._kill()
                if not isinstance(exc, _EmulatorExited):
                    break
        self.stop()
        assert last_error is not None
        raise last_error

    def _spawn_and_wait(self) -> None:
        assert self.data_dir is not None
        assert self.log_path is not None
        port = free_port()
        self.host = f"127.0.0.1:{port}"
        env = dict(os.environ)
        # Keep Java's own temporary files in the data dir too.
        java_opts = env.get("JAVA_OPTS", "")
        env["JAVA_OPTS"] = f"{java_opts} -Djava.io.tmpdir={self.data_dir}".strip()
        self._log = self.log_path.open("ab")
        started = time.monotonic()
        self._process = subprocess.Popen(
            [str(self.binary), "--host=127.0.0.1", f"--port={port}"],
            cwd=self.data_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: stop() kills the whole group
            preexec_fn=_pdeathsig_preexec(),
        )
        deadline = started + self.startup_timeout
        while True:
            code = self._process.poll()
            if code is not None:
                raise _EmulatorExited(
                    f"Pub/Sub emulator exited with {code} before answering on {self.host}:\n"
                    + self.log_tail()
                )
            try:
                response = self._session.get(self.base_url + "/", timeout=1.0)
                if response.status_code == 200:
                    self.startup_seconds = time.monotonic() - started
                    return
            except requests.RequestException:
                pass
            if time.monotonic() >= deadline:
                raise EmulatorError(
                    f"Pub/Sub emulator did not answer on {self.host} within "
                    f"{self.startup_timeout} s:\n" + self.log_tail()
                )
            time.sleep(0.05)

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the emulator log (for error messages)."""
        path = self.log_path
        if path is None or not path.exists():
            return ""
        text = path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def _kill(self, grace_seconds: float = 0.0) -> None:
        """Kill the emulator's whole process group and reap the process."""
        process, self._process = self._process, None
        if process is not None:
            pgid = process.pid  # start_new_session: the group id is the child's pid
            if grace_seconds > 0 and process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(grace_seconds)
            # Also catches children left behind by a leader that already exited.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
            process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def stop(self, grace_seconds: float = 0.0) -> None:
        """Stop the emulator and its Java processes for sure, then remove the data dir.

        The emulator keeps nothing worth a graceful shutdown (which takes it
        about 2 s), so by default the process group gets SIGKILL at once; with
        ``grace_seconds`` it gets SIGTERM first. Safe to call more than once.
        """
        atexit.unregister(self.stop)
        self._kill(grace_seconds)
        self._session.close()
        if self.data_dir is not None and not self.keep_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.data_dir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def env(self) -> dict[str, str]:
        """Environment for child processes and google-cloud-pubsub clients."""
        return {"PUBSUB_EMULATOR_HOST": self.host, "PUBSUB_PROJECT_ID": self.project}

    # ----------------------------------------------------------------- names

    def _path(self, kind: str, name: str) -> str:
        if name.startswith("projects/"):
            short = name.rsplit("/", 1)[-1]
            full = name
        else:
            short = name
            full = f"projects/{self.project}/{kind}/{name}"
        if len(short) < _MIN_NAME_LENGTH:
            raise ValueError(
                f"Pub/Sub {kind} names need at least {_MIN_NAME_LENGTH} characters: {name!r}"
            )
        return full

    def topic_path(self, name: str) -> str:
        """``projects/P/topics/NAME`` (a full path is returned unchanged)."""
        return self._path("topics", name)

    def subscription_path(self, name: str) -> str:
        """``projects/P/subscriptions/NAME`` (a full path is returned unchanged)."""
        return self._path("subscriptions", name)

    # ----------------------------------------------------------------- REST

    def request(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        """Call the emulator's REST API (``path`` after ``/v1/``); the decoded JSON answer.

        Raises :class:`EmulatorError` with the status and body on a non-2xx answer.
        """
        if not self.host:
            raise EmulatorError("emulator not started")
        response = self._session.request(
            method,
            f"{self.base_url}/v1/{path}",
            json=body if body is not None else None,
            timeout=self.request_timeout,
        )
        if not response.ok:
            raise EmulatorError(
                f"{method} /v1/{path} -> {response.status_code}: {response.text[:2000]}"
            )
        return response.json() if response.content.strip() else {}

    def create_topic(self, name: str) -> str:
        """Create a topic; returns its full path."""
        path = self.topic_path(name)
        self.request("PUT", path)
        return path

    def _create_subscription(self, name: str, body: dict[str, Any]) -> str:
        path = self.subscription_path(name)
        self.request("PUT", path, body)
        return path

    def create_push_subscription(
        self,
        name: str,
        topic: str,
        push_endpoint: str,
        *,
        ack_deadline_seconds: int = 10,
        dead_letter_topic: str | None = None,
        max_delivery_attempts: int | None = None,
        no_wrapper: bool = False,
        write_metadata: bool = False,
    ) -> str:
        """Create a push subscription; returns its full path.

        ``max_delivery_attempts`` (5 to 100, default 5) needs ``dead_letter_topic``;
        ``write_metadata`` needs ``no_wrapper``. No retry policy: it is
        unreliable on the emulator.
        """
        push_config: dict[str, Any] = {"pushEndpoint": push_endpoint}
        if no_wrapper:
            push_config["noWrapper"] = {"writeMetadata": write_metadata}
        elif write_metadata:
            raise ValueError("write_metadata needs no_wrapper=True")
        body: dict[str, Any] = {
            "topic": self.topic_path(topic),
            "ackDeadlineSeconds": ack_deadline_seconds,
            "pushConfig": push_config,
        }
        body.update(self._dead_letter_policy(dead_letter_topic, max_delivery_attempts))
        return self._create_subscription(name, body)

    def create_pull_subscription(
        self,
        name: str,
        topic: str,
        ack_deadline_seconds: int = 10,
        *,
        dead_letter_topic: str | None = None,
        max_delivery_attempts: int | None = None,
    ) -> str:
        """Create a pull subscription; returns its full path."""
        body: dict[str, Any] = {
            "topic": self.topic_path(topic),
            "ackDeadlineSeconds": ack_deadline_seconds,
        }
        body.update(self._dead_letter_policy(dead_letter_topic, max_delivery_attempts))
        return self._create_subscription(name, body)

    def _dead_letter_policy(
        self, dead_letter_topic: str | None, max_delivery_attempts: int | None
    ) -> dict[str, Any]:
        if dead_letter_topic is None:
            if max_delivery_attempts is not None:
                raise ValueError("max_delivery_attempts needs a dead_letter_topic")
            return {}
        attempts = 5 if max_delivery_attempts is None else max_delivery_attempts
        return {
            "deadLetterPolicy": {
                "deadLetterTopic": self.topic_path(dead_letter_topic),
                "maxDeliveryAttempts": attempts,
            }
        }

    def get_subscription(self, name: str) -> dict[str, Any]:
        """The subscription resource as the emulator reports it."""
        result: dict[str, Any] = self.request("GET", self.subscription_path(name))
        return result

    def list_subscriptions(self) -> list[dict[str, Any]]:
        """All subscriptions of the project (first page of up to 1,000)."""
        answer = self.request("GET", f"projects/{self.project}/subscriptions?pageSize=1000")
        subscriptions: list[dict[str, Any]] = answer.get("subscriptions", [])
        return subscriptions

    def delete_subscription(self, name: str) -> None:
        """Delete a subscription (its pushes stop)."""
        self.request("DELETE", self.subscription_path(name))

    def delete_topic(self, name: str) -> None:
        """Delete a topic (its subscriptions stay, detached)."""
        self.request("DELETE", self.topic_path(name))

    def modify_push_config(self, subscription: str, push_endpoint: str | None) -> None:
        """Point a subscription at another push endpoint, or make it a pull one (None)."""
        push_config = {} if push_endpoint is None else {"pushEndpoint": push_endpoint}
        self.request(
            "POST",
            f"{self.subscription_path(subscription)}:modifyPushConfig",
            {"pushConfig": push_config},
        )

    def publish(self, topic: str, messages: Sequence[tuple[bytes, Mapping[str, str]]]) -> list[str]:
        """Publish ``(data, attributes)`` pairs; returns the message ids in order.

        Sent in requests of at most 1,000 messages (and about 9 MB), like the
        real service's limits.
        """
        path = f"{self.topic_path(topic)}:publish"
        ids: list[str] = []
        batch: list[dict[str, Any]] = []
        batch_bytes = 0

        def flush() -> None:
            nonlocal batch, batch_bytes
            if batch:
                answer = self.request("POST", path, {"messages": batch})
                ids.extend(answer["messageIds"])
                batch, batch_bytes = [], 0

        for data, attributes in messages:
            encoded: dict[str, Any] = {"data": base64.b64encode(data).decode("ascii")}
            if attributes:
                encoded["attributes"] = dict(attributes)
            size = len(encoded["data"]) + sum(len(k) + len(v) + 8 for k, v in attributes.items())
            if len(batch) >= _PUBLISH_MAX_MESSAGES or (
                batch and batch_bytes + size > _PUBLISH_MAX_BYTES
            ):
                flush()
            batch.append(encoded)
            batch_bytes += size
        flush()
        return ids

    def pull(
        self, subscription: str, max_messages: int = 100, ack: bool = True
    ) -> list[ReceivedMessage]:
        """Pull what is available now (never blocks waiting for messages).

        Sets ``returnImmediately``: without it the emulator holds a pull on an
        empty subscription for about 90 s. With ``ack`` the messages are
        acknowledged before returning.
        """
        path = self.subscription_path(subscription)
        answer = self.request(
            "POST", f"{path}:pull", {"maxMessages": max_messages, "returnImmediately": True}
        )
        received = [_received_message(item) for item in answer.get("receivedMessages", [])]
        if ack and received:
            self.acknowledge(path, [m.ack_id for m in received])
        return received

    def acknowledge(self, subscription: str, ack_ids: Sequence[str]) -> None:
        """Acknowledge pulled messages by ack id."""
        if ack_ids:
            self.request(
                "POST",
                f"{self.subscription_path(subscription)}:acknowledge",
                {"ackIds": list(ack_ids)},
            )

    def pull_all(
        self,
        subscription: str,
        *,
        quiet_seconds: float,
        timeout: float,
        min_messages: int = 0,
        poll_interval: float = 0.05,
    ) -> list[ReceivedMessage]:
        """Pull and ack until nothing new came for ``quiet_seconds``, for at most ``timeout`` s.

        The quiet period only counts once ``min_messages`` have arrived, so
        ``pull_all(s, quiet_seconds=0, timeout=10, min_messages=1)`` waits for
        the first message and returns at once. Returns what arrived by the
        deadline (the caller checks the count). Duplicates are kept.
        """
        deadline = time.monotonic() + timeout
        result: list[ReceivedMessage] = []
        last_new = time.monotonic()
        while True:
            batch = self.pull(subscription, max_messages=1000, ack=True)
            now = time.monotonic()
            if batch:
                result.extend(batch)
                last_new = now
                continue
            if len(result) >= min_messages and now - last_new >= quiet_seconds:
                return result
            if now >= deadline:
                return result
            time.sleep(min(poll_interval, max(0.0, deadline - now)))


def _received_message(item: Mapping[str, Any]) -> ReceivedMessage:
    message = item["message"]
    attempt = item.get("deliveryAttempt")
    return ReceivedMessage(
        data=base64.b64decode(message.get("data", "")),
        attributes=dict(message.get("attributes", {})),
        message_id=str(message["messageId"]),
        publish_time=str(message.get("publishTime", "")),
        delivery_attempt=None if attempt is None else int(attempt),
        ack_id=str(item["ackId"]),
    )


# --------------------------------------------------------------------- push recorder


@dataclass(frozen=True)
class PushRequest:
    """One HTTP request received by :class:`PushRecorder`."""

    method: str
    path: str
    #: Header names lower-cased; a repeated header keeps its last value.
    headers: dict[str, str]
    body: bytes
    #: Headers as sent: original case and order. Bytes are decoded as Latin-1
    #: (as ``http.server`` does), so a UTF-8 value reads back with
    #: ``value.encode("latin-1").decode()``.
    raw_headers: tuple[tuple[str, str], ...]
    #: ``time.monotonic()`` when the body had been read.
    received_at: float
    #: The status answered; 0 while the responder is deciding.
    status: int = 0

    def json(self) -> Any:
        """The body decoded as JSON."""
        return json.loads(self.body)


#: Chooses the status code for a push; may sleep to simulate a slow endpoint.
Responder = Callable[[PushRequest], int]


class PushRecorder:
    """A threaded local HTTP server that records pushes and answers each with a chosen status.

    ``responder`` maps each request to a status code (default: always 200).
    An exception in it answers 500. Use as a context manager::

        with PushRecorder(lambda req: 500 if req.path == "/fail" else 204) as rec:
            emu.create_push_subscription("sub", "topic", rec.endpoint("/fail"))
            pushes = rec.wait_for(3, timeout=10)
    """

    def __init__(self, responder: Responder | None = None, host: str = "127.0.0.1") -> None:
        self.responder: Responder = responder or (lambda _request: 200)
        self._host = host
        self._requests: list[PushRequest] = []
        self._condition = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` of the running server."""
        if self._server is None:
            raise RuntimeError("PushRecorder not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def endpoint(self, path: str = "/push") -> str:
        """A push endpoint URL on this server."""
        return self.url + (path if path.startswith("/") else "/" + path)

    @property
    def requests(self) -> list[PushRequest]:
        """A copy of the requests answered so far, in arrival order."""
        with self._condition:
            return list(self._requests)

    def clear(self) -> None:
        """Forget the requests recorded so far."""
        with self._condition:
            self._requests.clear()

    def wait_for(
        self,
        count: int = 1,
        *,
        timeout: float,
        where: Callable[[PushRequest], bool] | None = None,
    ) -> list[PushRequest]:
        """Wait until ``count`` answered requests match ``where``; returns the matches.

        Raises ``TimeoutError`` listing what did arrive.
        """

        def matches() -> list[PushRequest]:
            return [r for r in self._requests if where is None or where(r)]

        with self._condition:
            if self._condition.wait_for(lambda: len(matches()) >= count, timeout):
                return matches()
            got = [(r.path, r.status) for r in self._requests]
        raise TimeoutError(
            f"expected {count} matching push(es) within {timeout} s; got {len(got)}: {got[:20]}"
        )

    def start(self) -> Self:
        """Start serving on a free port in a daemon thread."""
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _header_items(self) -> list[tuple[str, str]]:
                # http.server stops parsing at the first line that is not a valid
                # header (an attribute named "a b", say) and keeps the rest as a
                # "payload": recover those lines too, so nothing sent is hidden.
                items = list(self.headers.items())
                rest = self.headers.get_payload()
                if isinstance(rest, str):
                    for line in rest.splitlines():
                        name, colon, value = line.partition(":")
                        if colon:
                            items.append((name, value.strip()))
                return items

            def _handle(self) -> None:
                raw_headers = tuple(self._header_items())
                headers = {k.lower(): v for k, v in raw_headers}
                body = self._read_body(headers)
                request = PushRequest(
                    method=self.command,
                    path=self.path,
                    headers=headers,
                    raw_headers=raw_headers,
                    body=body,
                    received_at=time.monotonic(),
                )
                try:
                    status = int(recorder.responder(request))
                except Exception:  # noqa: BLE001 - a broken responder answers 500
                    status = 500
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                with recorder._condition:
                    recorder._requests.append(replace(request, status=status))
                    recorder._condition.notify_all()

            def _read_body(self, headers: Mapping[str, str]) -> bytes:
                if "chunked" in headers.get("transfer-encoding", "").lower():
                    chunks: list[bytes] = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                length = int(headers.get("content-length") or 0)
                return self.rfile.read(length) if length else b""

            do_POST = do_PUT = do_GET = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((self._host, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="push-recorder",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the server (safe to call more than once)."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
