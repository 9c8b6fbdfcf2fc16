"""`make run`: the relay under functions-framework against a local Svix emulator, no account needed.

Serves the relay on 8080, as functions-framework does (PORT overrides it), and the emulator on
8071 (SVIX_EMULATOR_PORT overrides it), so that a second terminal can use URLs that do not
change. Posts one sample event to show the round trip, prints curl lines to post another and to
see what reached Svix, and stops both on Ctrl-C.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from svix_emulator.testing import start_emulator  # noqa: E402

SAMPLE = ROOT / "tests" / "data" / "events" / "user-created.json"


RELAY_PORT = 8080  # functions-framework's own default
EMULATOR_PORT = 8071


def port_from(variable: str, default: int) -> int:
    value = os.environ.get(variable) or str(default)
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise SystemExit(f"{variable} must be a port number, got {value!r}")
    port = int(value)
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise SystemExit(f"port {port} is taken: set {variable} to another one") from None
    return port


def wait_until_up(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the relay exited with status {process.returncode} before answering")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"the relay did not answer on {url} within {timeout:.0f} s")


def main() -> None:
    port = port_from("PORT", RELAY_PORT)
    with start_emulator(port=port_from("SVIX_EMULATOR_PORT", EMULATOR_PORT)) as svix:
        env = {
            **os.environ,
            "SVIX_AUTH_TOKEN": svix.token,
            "SVIX_SERVER_URL": svix.url,
            "RELAY_LOG_FORMAT": os.environ.get("RELAY_LOG_FORMAT", "text"),
        }
        command = [
            sys.executable, "-m", "functions_framework",
            "--target", "relay", "--source", str(ROOT / "main.py"),
            "--host", "127.0.0.1", "--port", str(port),
        ]  # fmt: skip
        relay = subprocess.Popen(command, cwd=ROOT, env=env)
        try:
            url = f"http://127.0.0.1:{port}/"
            wait_until_up(url, relay)
            request = urllib.request.Request(
                url, data=SAMPLE.read_bytes(), headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                answer = json.loads(response.read())
            stored = svix.messages()
            print(
                f"\nSvix emulator: {svix.url} (token {svix.token})\n"
                f"Relay:         {url}\n"
                f"Posted {SAMPLE.name}: relay answered {json.dumps(answer['counts'])}; "
                f"the emulator now holds {len(stored)} message(s).\n\n"
                "Post an event yourself:\n"
                f"  curl -s -X POST {url} -H 'Content-Type: application/json' "
                f"--data @{SAMPLE.relative_to(ROOT)}\n"
                "See what reached Svix:\n"
                f"  curl -s {svix.url}/_emulator/messages\n\n"
                "Ctrl-C stops both.",
                flush=True,
            )
            relay.wait()
        except KeyboardInterrupt:
            pass
        finally:
            relay.terminate()
            try:
                relay.wait(timeout=10)
            except subprocess.TimeoutExpired:
                relay.kill()


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    main()
