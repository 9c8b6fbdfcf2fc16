"""Start the emulator as a subprocess and drive its control API, for tests.

Standard library only, so importing it costs next to nothing.
"""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from svix_emulator import DEFAULT_TOKEN

PROJECT_ROOT = Path(__file__).resolve().parent.parent
_LISTENING = re.compile(r"svix emulator listening on (http://\S+)")
# Loopback only: proxies from the environment must not see these requests.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

__all__ = ["DEFAULT_TOKEN", "PROJECT_ROOT", "RunningEmulator", "start_emulator"]


class RunningEmulator:
    """A started emulator process; stop it (or use it as a context manager) when done."""

    def __init__(self, process: subprocess.Popen[bytes], url: str, token: str) -> None:
        self.process = process
        self.url = url
        self.token = token
        self.pid = process.pid

    def control(self, method: str, path: str, body: object = None) -> Any:
        """Calls the control API (`path` under `/_emulator/`) and returns the decoded JSON."""
        data = None if body is None else json.dumps(body).encode()
        # The URL is always the emulator's own http:// address, never user input.
        request = urllib.request.Request(  # noqa: S310
            f"{self.url}/_emulator/{path}",
            data=data,
            method=method,
            headers={"content-type": "application/json"},
        )
        try:
            with _OPENER.open(request, timeout=10) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            raise ValueError(f"{method} /_emulator/{path}: {exc.code} {detail}") from None

    def reset(self) -> None:
        self.control("POST", "reset")

    def set_faults(self, **config: object) -> None:
        """Replaces every fault with `config` (see README.md); no argument turns faults off."""
        self.control("PUT", "faults", config)

    def faults(self) -> dict[str, Any]:
        result: dict[str, Any] = self.control("GET", "faults")
        return result

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self.control("GET", "stats")
        return result

    def clock(self) -> datetime:
        """The emulator's clock now: the wall clock plus every `advance_clock` since the reset."""
        return _parse_now(self.control("GET", "clock"))

    def advance_clock(self, seconds: float) -> datetime:
        """Moves the emulator's clock forward (Svix forgets idempotency keys after 12 hours and
        eventIds after 24); `reset()` puts it back. Returns the new time."""
        return _parse_now(self.control("POST", "clock", {"advance_seconds": seconds}))

    def messages(self, app: str | None = None) -> list[dict[str, Any]]:
        path = "messages" if app is None else f"messages?app={urllib.parse.quote(app)}"
        result: list[dict[str, Any]] = self.control("GET", path)["data"]
        return result

    def event_types(self) -> list[dict[str, Any]]:
        """Every event type by name, archived ones included, each as `EventTypeOut` with its
        schemas."""
        result: list[dict[str, Any]] = self.control("GET", "event-types")["data"]
        return result

    def stop(self) -> None:
        """Terminates the process, then kills it if it has not gone within five seconds."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()

    def __enter__(self) -> RunningEmulator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _parse_now(answer: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(answer["now"]).replace("Z", "+00:00"))


def _pump(stream: IO[bytes], lines: queue.Queue[str | None]) -> None:
    # Keeps reading after the first line so the child never blocks on a full pipe.
    for raw in stream:
        lines.put(raw.decode(errors="replace"))
    lines.put(None)


def _healthy(url: str) -> bool:
    try:
        with _OPENER.open(f"{url}/api/v1/health", timeout=1) as response:
            return bool(response.status == 204)
    except OSError:
        return False


def start_emulator(
    *,
    token: str = DEFAULT_TOKEN,
    seed: int = 0,
    latency_ms: int = 0,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    timeout: float = 10.0,
    port: int = 0,
) -> RunningEmulator:
    """Starts `python -m svix_emulator` on a loopback port (a free one unless `port` is given)
    and waits until it answers.

    The child gets this environment without any inherited `SVIX_EMULATOR_*` variable, plus `env`.
    """
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("SVIX_EMULATOR_")}
    child_env.update(env or {})
    command = [
        sys.executable,
        "-m",
        "svix_emulator",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--token",
        token,
        "--seed",
        str(seed),
        "--latency-ms",
        str(latency_ms),
        *extra_args,
    ]
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=child_env, stdout=subprocess.PIPE)
    assert process.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True).start()
    deadline = time.monotonic() + timeout
    emulator: RunningEmulator | None = None
    try:
        while emulator is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"svix emulator did not start within {timeout} s")
            try:
                line = lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                code = process.wait(timeout=5)
                raise RuntimeError(f"svix emulator exited with code {code} before listening")
            match = _LISTENING.search(line)
            if match:
                emulator = RunningEmulator(process, match.group(1), token)
        while not _healthy(emulator.url):
            if time.monotonic() > deadline:
                raise TimeoutError(f"svix emulator at {emulator.url} did not answer its health")
            time.sleep(0.01)
    except BaseException:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=5)
        raise
    return emulator
