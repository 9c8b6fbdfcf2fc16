"""Helpers for the end-to-end test (``tests/test_e2e_pubsub.py``).

* :class:`RelayProcess` runs the relay as the platform does (``python -m functions_framework``,
  gunicorn underneath) in its own process group on a fixed loopback port, and kills it with
  SIGKILL (the whole group: master and worker) to simulate an instance that dies mid-request.
* :func:`wait_until` waits on a condition with a deadline (no bare sleeps in tests).
* :func:`build_workload` turns template events into a seeded workload of Pub/Sub messages:
  single events, arrays, duplicate publishes, and poison messages.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

import requests

from relay.core.events import event_type_name
from tests.support import ROOT
from tests.support.pubsub_emulator import _pdeathsig_preexec

# Variables a relay child must not inherit from whoever runs the tests: its settings come from
# the test alone, and loopback traffic must never go through a proxy (httpx and gRPC honour
# these variables).
_INHERITED_PREFIXES = ("SVIX_", "RELAY_", "PUBSUB_", "GOOGLE_CLOUD_PROJECT")
_PROXY_VARIABLES = {"http_proxy", "https_proxy", "all_proxy", "grpc_proxy", "no_proxy"}

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = 0.05,
    describe: Callable[[], str] | None = None,
) -> T:
    """Poll ``condition`` until it returns something truthy, which is returned; TimeoutError
    naming ``what`` (and ``describe()``, when given) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        now = time.monotonic()
        if now >= deadline:
            detail = f"\n{describe()}" if describe is not None else ""
            raise TimeoutError(f"not within {timeout} s: {what}{detail}")
        time.sleep(min(interval, deadline - now))


def relay_environment(settings: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without relay, Svix, Pub/Sub or proxy variables, plus
    ``settings``; output unbuffered so that a SIGKILL loses no log line."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(_INHERITED_PREFIXES) and name.lower() not in _PROXY_VARIABLES
    }
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(settings)
    return env


class RelayProcess:
    """``python -m functions_framework --target relay`` on 127.0.0.1:``port``.

    Every incarnation (start) writes stdout and stderr to its own file in ``log_dir``
    (``relay-0.log``, ``relay-1.log``, ...). The port stays the same across restarts: push
    subscriptions point at it.
    """

    def __init__(self, *, port: int, env: Mapping[str, str], log_dir: Path) -> None:
        self.port = port
        self.env = dict(env)
        self.log_dir = log_dir
        self.log_paths: list[Path] = []
        self.kills = 0
        self.startup_seconds: list[float] = []
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._session = requests.Session()
        self._session.trust_env = False  # no proxy for 127.0.0.1

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 60.0) -> float:
        """Start an incarnation and wait until it answers ``GET /`` with 200; the seconds that
        took. Raises RuntimeError with the log tail when it exits or does not answer in time."""
        if self._process is not None:
            raise RuntimeError("relay already running")
        log_path = self.log_dir / f"relay-{len(self.log_paths)}.log"
        self.log_paths.append(log_path)
        self._log = log_path.open("ab")
        started = time.monotonic()
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "functions_framework",
                "--target",
                "relay",
                "--source",
                "main.py",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kill() takes master and worker
            preexec_fn=_pdeathsig_preexec(),
        )
        process = self._process

        def answers() -> bool:
            if process.poll() is not None:
                raise RuntimeError(
                    f"relay exited with {process.returncode} before answering:\n{self.tail()}"
                )
            try:
                return self._session.get(self.url, timeout=1.0).status_code == 200
            except requests.RequestException:
                return False

        try:
            wait_until(answers, timeout=timeout, what=f"relay answering GET {self.url}")
        except TimeoutError as exc:
            self._kill_group()
            raise RuntimeError(f"{exc}\n{self.tail()}") from None
        took = time.monotonic() - started
        self.startup_seconds.append(took)
        return took

    def kill(self) -> None:
        """SIGKILL the whole incarnation (gunicorn master and worker), as a crash would."""
        if not self.running:
            raise RuntimeError("relay is not running")
        self._kill_group()
        self.kills += 1

    def restart(self, timeout: float = 60.0) -> float:
        """Kill (SIGKILL) and start again on the same port; seconds until it answered."""
        self.kill()
        return self.start(timeout)

    def stop(self) -> None:
        """Stop for sure (safe to call more than once, and when start failed)."""
        self._kill_group()
        self._session.close()

    def _kill_group(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            # start_new_session: the group id is the child's pid. The group also catches a
            # gunicorn worker whose master is already gone.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        if self._log is not None:
            self._log.close()
            self._log = None

    def tail(self, lines: int = 40) -> str:
        """The last lines of every incarnation's log, for a failure message."""
        parts = []
        for path in self.log_paths:
            if path.exists():
                text = path.read_text(errors="replace").splitlines()
                parts.append(f"--- {path.name} (last {lines} of {len(text)} lines) ---")
                parts.extend(text[-lines:])
        return "\n".join(parts)

    def log_size(self) -> int:
        """Bytes logged so far by every incarnation: grows while the relay does anything."""
        return sum(path.stat().st_size for path in self.log_paths if path.exists())

    def records(self) -> Iterator[dict[str, Any]]:
        """Every JSON log line of every incarnation (other lines are skipped)."""
        for path in self.log_paths:
            if not path.exists():
                continue
            for line in path.read_text(errors="replace").splitlines():
                if line.startswith("{"):
                    with contextlib.suppress(ValueError):
                        record = json.loads(line)
                        if isinstance(record, dict):
                            yield record

    def message_ids_per_incarnation(self) -> list[set[str]]:
        """The Pub/Sub message ids each incarnation logged an event of."""
        seen: list[set[str]] = []
        for path in self.log_paths:
            ids: set[str] = set()
            if path.exists():
                for line in path.read_text(errors="replace").splitlines():
                    with contextlib.suppress(ValueError):
                        record = json.loads(line) if line.startswith("{") else {}
                        if isinstance(record, dict) and record.get("pubsub_message_id"):
                            ids.add(str(record["pubsub_message_id"]))
            seen.append(ids)
        return seen

    def lines_mentioning(self, needles: Sequence[str], limit: int = 60) -> str:
        """Log lines naming any of ``needles`` (event ids, message ids), for a failure report."""
        found = []
        for path in self.log_paths:
            if not path.exists():
                continue
            for line in path.read_text(errors="replace").splitlines():
                if any(needle in line for needle in needles):
                    found.append(f"{path.name}: {line}")
        shown = found[:limit]
        more = f"\n... and {len(found) - limit} more" if len(found) > limit else ""
        return "\n".join(shown) + more


# --------------------------------------------------------------------- the workload


@dataclass(frozen=True)
class PlannedMessage:
    """One Pub/Sub message to publish."""

    label: str
    data: bytes
    attributes: dict[str, str]
    #: The valid events it carries (id, project); poison events are not listed here.
    event_ids: tuple[str, ...] = ()
    #: The poison label when it is (or holds) a poison event.
    poison: str | None = None


@dataclass
class Workload:
    messages: list[PlannedMessage] = field(default_factory=list)
    #: Second publishes of some messages: separate Pub/Sub messages with the same events.
    duplicates: list[PlannedMessage] = field(default_factory=list)
    #: (Svix app, event id) -> the event type Svix must show, for every valid event.
    expected: dict[tuple[str, str], str] = field(default_factory=dict)
    #: Poison label -> the relay_event_id the relay gives its parked copy.
    poison: dict[str, str] = field(default_factory=dict)

    @property
    def valid_event_ids(self) -> set[str]:
        return {event_id for _app, event_id in self.expected}


POISON_IN_ARRAY = "array-with-poison"


def build_workload(
    templates: Sequence[Mapping[str, Any]],
    *,
    events: int,
    projects: Sequence[str],
    rng: random.Random,
    duplicate_share: float = 0.1,
) -> Workload:
    """``events`` valid events (the templates re-issued with ids ``evt_e2e_<n>`` and spread over
    ``projects``) in messages of one event or arrays of 2 to 20, a share of those messages
    published twice, and poison messages of every kind the relay must park."""
    work = Workload()
    counter = iter(range(10**9))

    def new_event() -> dict[str, Any]:
        n = next(counter)
        event = copy.deepcopy(dict(templates[n % len(templates)]))
        event["id"] = f"evt_e2e_{n:05d}"
        event["project"] = projects[n % len(projects)]
        work.expected[(event["project"], event["id"])] = event_type_name(event["type"])
        return event

    produced = 0
    while produced < events:
        size = 1 if rng.random() < 0.35 else rng.randint(2, 20)
        size = min(size, events - produced)
        batch = [new_event() for _ in range(size)]
        produced += size
        label = f"m{len(work.messages):04d}"
        document: object = batch[0] if size == 1 and rng.random() < 0.8 else batch
        work.messages.append(
            PlannedMessage(
                label,
                json.dumps(document).encode(),
                {"e2e": "valid", "e2e_msg": label},
                tuple(e["id"] for e in batch),
            )
        )

    for original in rng.sample(work.messages, round(len(work.messages) * duplicate_share)):
        work.duplicates.append(
            PlannedMessage(
                original.label,
                original.data,
                {**original.attributes, "e2e_copy": "2"},
                original.event_ids,
            )
        )

    def poison(
        label: str, data: bytes, relay_event_id: str, event_ids: tuple[str, ...] = ()
    ) -> None:
        work.poison[label] = relay_event_id
        work.messages.append(
            PlannedMessage(
                f"poison-{label}",
                data,
                {"e2e": "poison", "e2e_poison": label},
                event_ids,
                poison=label,
            )
        )

    project = projects[0]
    poison("not-json", b"{this is not JSON", "message:")
    poison("json-string", json.dumps("an event, honest").encode(), "message:")
    poison("json-number", b"42", "message:")
    poison(
        "no-type",
        json.dumps({"object": "event", "id": "evt_e2e_poison_notype", "project": project}).encode(),
        "evt_e2e_poison_notype",
    )
    poison(
        "bad-type",
        json.dumps(
            {"id": "evt_e2e_poison_badtype", "type": "user created!", "project": project}
        ).encode(),
        "evt_e2e_poison_badtype",
    )
    poison(
        "bad-project",
        json.dumps(
            {"id": "evt_e2e_poison_badproject", "type": "user.created", "project": "no/such app"}
        ).encode(),
        "evt_e2e_poison_badproject",
    )
    large = new_event()
    # Over Svix's 1 MiB payload limit, well under Pub/Sub's 10 MB message limit. Not a valid
    # event: take it back out of the expected set.
    del work.expected[(large["project"], large["id"])]
    large["id"] = "evt_e2e_poison_large"
    large["blob"] = "x" * (1024 * 1024 + 4096)
    poison("too-large", json.dumps(large).encode(), "evt_e2e_poison_large")
    # Valid events around one without a type: the valid ones must reach Svix, the bad one parked.
    around = [new_event() for _ in range(5)]
    bad = {"object": "event", "id": "evt_e2e_poison_inarray", "project": projects[1], "data": {}}
    poison(
        POISON_IN_ARRAY,
        json.dumps([*around[:2], bad, *around[2:]]).encode(),
        "evt_e2e_poison_inarray",
        tuple(e["id"] for e in around),
    )
    return work
