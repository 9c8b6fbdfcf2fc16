"""Starting the emulator: flags, `SVIX_EMULATOR_*` variables, the port file, stopping."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from svix_emulator.cli import _parser, faults_from_args
from svix_emulator.testing import PROJECT_ROOT, RunningEmulator, start_emulator
from tests.support.emulator import Exchange, make_http

MESSAGE = {"eventType": "a", "payload": {}}


def _create(emulator: RunningEmulator, exchanges: list[Exchange]) -> httpx.Response:
    with make_http(emulator, exchanges) as http:
        http.post("/api/v1/app", json={"name": "n", "uid": "app"})
        return http.post("/api/v1/app/app/msg", json=MESSAGE)


def test_port_file_and_token_flags(tmp_path: Path, exchanges: list[Exchange]) -> None:
    port_file = tmp_path / "port"
    with start_emulator(token="sk_custom", extra_args=["--port-file", str(port_file)]) as emulator:
        assert port_file.read_text().strip() == emulator.url.rsplit(":", 1)[1]
        assert emulator.token == "sk_custom"
        assert _create(emulator, exchanges).status_code == 202
        with make_http(emulator, exchanges) as http:
            http.headers["authorization"] = "Bearer testsk_emulator"
            assert http.get("/api/v1/app/app").status_code == 401


def test_fault_flags(exchanges: list[Exchange]) -> None:
    args = [
        "--rate-limit",
        "6/m",
        "--rate-limit-burst",
        "3",
        "--no-retry-after",
        "--error",
        "503:next=1",
        "--error",
        "500:0.25",
        "--drop-after-store",
        "next=2",
        "--slow-after-store",
        "2.5:0.1",
    ]
    with start_emulator(extra_args=args) as emulator:
        faults = emulator.faults()
        assert faults["rate_limit"] == {"per_second": 0.1, "burst": 3.0, "retry_after": False}
        assert faults["errors"] == [
            {"status": 503, "next": 1},
            {"status": 500, "probability": 0.25},
        ]
        assert faults["drop_after_store"] == {"next": 2}
        assert faults["slow_after_store"] == {"seconds": 2.5, "probability": 0.1}
        assert _create(emulator, exchanges).status_code == 503


def test_environment_variables(exchanges: list[Exchange]) -> None:
    env = {
        "SVIX_EMULATOR_ERRORS": "502:next=1,500:next=1",
        "SVIX_EMULATOR_FAULTS": '{"drop_before_store": {"probability": 0.5}, "seed": 3}',
        "SVIX_EMULATOR_LATENCY_MS": "7",
    }
    # The explicit --latency-ms that start_emulator passes wins over the variable.
    with start_emulator(env=env, extra_args=["--latency-ms", "9"]) as emulator:
        faults = emulator.faults()
        assert faults["errors"] == [{"status": 502, "next": 1}, {"status": 500, "next": 1}]
        assert faults["drop_before_store"] == {"probability": 0.5}
        assert faults["seed"] == 3
        assert faults["latency_ms"] == 9


def test_environment_variables_without_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "SVIX_EMULATOR_TOKEN": "sk_env",
        "SVIX_EMULATOR_RATE_LIMIT": "50",
        "SVIX_EMULATOR_NO_RETRY_AFTER": "true",
        "SVIX_EMULATOR_DROP_BEFORE_STORE": "0.5",
    }
    args = _parser(env).parse_args([])
    assert args.token == "sk_env"
    assert faults_from_args(args) == {
        "rate_limit": {"per_second": 50.0, "retry_after": False},
        "drop_before_store": {"probability": 0.5},
    }


@pytest.mark.parametrize(
    "bad", [["--error", "404:next=1"], ["--rate-limit", "5/h"], ["--faults", "[]"], ["--port", "x"]]
)
def test_bad_flags_exit_with_usage_error(bad: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "svix_emulator", *bad],
        cwd=PROJECT_ROOT,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert b"usage:" in done.stderr


def test_stop_terminates_cleanly() -> None:
    emulator = start_emulator()
    emulator.stop()
    assert emulator.process.returncode == 0
    emulator.stop()  # a second stop is harmless


def test_listening_line_is_the_first_line() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "svix_emulator", "--port", "0"],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("svix emulator listening on http://127.0.0.1:")
        assert int(line.rsplit(":", 1)[1]) > 0
    finally:
        process.terminate()
        process.wait(timeout=10)
        assert process.stdout is not None
        process.stdout.close()
