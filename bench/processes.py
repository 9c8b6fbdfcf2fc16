"""Starting and stopping the servers under test, and the CPU their process trees use.

A function runs as production runs it: `python -m functions_framework` (gunicorn, since no
`--debug`), `THREADS` threads in one worker, bound to 127.0.0.1 on port 0 so the OS picks a free
port, which is then read back from the process's listening socket.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import psutil

# Loopback only: a proxy from the environment must never see the benchmark's requests.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY")


class StartError(RuntimeError):
    """A server did not come up; the message says how far it got."""


# Inherited settings that would change what is measured: the relay's and Svix's own, gunicorn's
# (functions-framework reads THREADS, WORKERS) and DEBUG, which swaps gunicorn for Flask's server.
_DROPPED_PREFIXES = ("RELAY_", "SVIX_", "GUNICORN_")
_DROPPED = frozenset({"THREADS", "WORKERS", "DEBUG", "HOST", "PORT", "CLOUD_RUN_TIMEOUT_SECONDS"})


def child_environment(extra: Mapping[str, str]) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in _PROXY_VARIABLES and k not in _DROPPED and not k.startswith(_DROPPED_PREFIXES)
    }
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def tree(pid: int) -> list[psutil.Process]:
    """The process and all its descendants (gunicorn's master and its workers)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def tree_cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of the process tree so far."""
    user = system = 0.0
    for process in tree(pid):
        with contextlib.suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            user += times.user
            system += times.system
    return user, system


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of the process tree so far."""
    return sum(tree_cpu_split(pid))


def tree_rss_bytes(pid: int) -> int:
    total = 0
    for process in tree(pid):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += process.memory_info().rss
    return total


def listening_port(pid: int) -> int | None:
    for process in tree(pid):
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            for connection in process.net_connections(kind="tcp"):
                if connection.status == psutil.CONN_LISTEN:
                    return int(connection.laddr.port)
    return None


@dataclass
class FunctionServer:
    """A functions-framework process (gunicorn master) and where it listens."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    started_at: float  # time.perf_counter() just before the process was started
    listening_after: float  # seconds from start until the port was open
    log: IO[bytes] | None

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def cpu_seconds(self) -> float:
        return tree_cpu_seconds(self.pid)

    def rss_bytes(self) -> int:
        return tree_rss_bytes(self.pid)

    def worker_pids(self) -> list[int]:
        return [p.pid for p in tree(self.pid)[1:]]

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until a GET answers (any HTTP status: the worker is up), within `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise StartError(f"{self.name} exited with status {self.process.returncode}")
            try:
                with _OPENER.open(self.url, timeout=5):
                    return
            except urllib.error.HTTPError:
                return
            except OSError:
                time.sleep(0.02)
        raise StartError(f"{self.name} did not answer on {self.url} within {timeout:.0f} s")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (gunicorn's graceful stop), then SIGKILL for what is left of the tree."""
        members = tree(self.pid)
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                self.process.wait(timeout=5)
        for member in members[1:]:
            with contextlib.suppress(psutil.NoSuchProcess):
                if member.is_running():
                    member.kill()
        if self.log is not None:
            self.log.close()


def start_function(
    name: str,
    source: Path,
    target: str,
    env: Mapping[str, str],
    *,
    log_path: Path | None = None,
    timeout: float = 30.0,
    poll_interval: float = 0.005,
) -> FunctionServer:
    """Starts `python -m functions_framework` for `source` and waits for its listening socket.

    The child runs in the source's folder (so `main.py` imports what lies beside it), in a session
    of its own; its output goes to `log_path` (or nowhere)."""
    server = _spawn(name, source, target, env, log_path)
    _await_listening(server, timeout, poll_interval)
    return server


def _spawn(
    name: str, source: Path, target: str, env: Mapping[str, str], log_path: Path | None
) -> FunctionServer:
    log = open(log_path, "wb") if log_path is not None else None  # noqa: SIM115 - kept open
    command = [
        sys.executable, "-m", "functions_framework",
        "--target", target, "--source", source.name,
        "--host", "127.0.0.1", "--port", "0",
    ]  # fmt: skip
    started_at = time.perf_counter()
    process = subprocess.Popen(
        command,
        cwd=source.parent,
        env=child_environment(env),
        stdin=subprocess.DEVNULL,
        stdout=log or subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return FunctionServer(name, process, 0, started_at, 0.0, log)


def _await_listening(server: FunctionServer, timeout: float, poll_interval: float = 0.005) -> None:
    deadline = time.monotonic() + timeout
    process = server.process
    try:
        while True:
            port = listening_port(process.pid)
            if port is not None:
                server.port = port
                server.listening_after = time.perf_counter() - server.started_at
                return
            if process.poll() is not None:
                raise StartError(
                    f"{server.name} exited with status {process.returncode} before listening"
                )
            if time.monotonic() > deadline:
                raise StartError(f"{server.name} did not listen within {timeout:.0f} s")
            time.sleep(poll_interval)
    except BaseException:
        server.stop()
        raise


@contextlib.contextmanager
def running_functions(
    name: str,
    source: Path,
    target: str,
    envs: list[dict[str, str]],
    *,
    log_dir: Path | None = None,
) -> Iterator[list[FunctionServer]]:
    """Several instances of one function, started at once (each import pays its own cold
    start, as instances that scale out together do), all stopped on the way out."""
    servers: list[FunctionServer] = []
    try:
        for index, env in enumerate(envs):
            log_path = log_dir / f"{name}-{index}.log" if log_dir is not None else None
            servers.append(_spawn(f"{name}-{index}", source, target, env, log_path))
        for server in servers:
            _await_listening(server, timeout=60.0)
            server.wait_ready()
        yield servers
    finally:
        for server in servers:
            server.stop()


@contextlib.contextmanager
def running_function(
    name: str,
    source: Path,
    target: str,
    env: Mapping[str, str],
    *,
    log_path: Path | None = None,
) -> Iterator[FunctionServer]:
    server = start_function(name, source, target, env, log_path=log_path)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
