"""CPU per call of the relay's pieces, in one process, with no load around them.

    python -m bench.micro [--calls N]

Each figure is process CPU time (not wall time) divided by the number of calls: the Svix senders
against the local emulator with no added latency (the emulator runs in another process, so its
work is not counted), and the relay's own work per event with a sender that does nothing.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import sys
import time
from collections.abc import Callable
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

from relay.entrypoints.answers import answer_for

ROOT = Path(__file__).resolve().parent.parent
EVENT = ROOT / "tests" / "data" / "events" / "user-created.json"


def per_call_us(calls: int, work: Callable[[int], object]) -> float:
    started = time.process_time()
    for n in range(calls):
        work(n)
    return (time.process_time() - started) / calls * 1e6


def envelope(event: dict[str, Any], n: int) -> bytes:
    """A push as Pub/Sub sends it, published now: without a publishTime the relay would take the
    sample's old `time` for its age and look every event up in Svix first."""
    data = base64.b64encode(json.dumps({**event, "id": f"evt_micro_{n}"}).encode()).decode()
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    return json.dumps(
        {
            "message": {"data": data, "messageId": str(n), "publishTime": now},
            "subscription": "projects/p/subscriptions/s",
        }
    ).encode()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.micro", description=__doc__)
    parser.add_argument("--calls", type=int, default=2000, help="calls per figure (2000)")
    calls = parser.parse_args(argv).calls
    sys.path.insert(0, str(ROOT))

    from relay.bootstrap import build_relay
    from relay.core.messages import to_message
    from relay.delivery.ports import Accepted
    from relay.logs import configure_logging
    from relay.pubsub.push import read_request
    from relay.settings import load_settings
    from relay.svix.direct import DirectSvixSender
    from relay.svix.sdk import SdkSvixSender
    from svix_emulator.testing import start_emulator

    event = json.loads(EVENT.read_text())
    bodies = [envelope(event, n) for n in range(calls * 3)]
    batches = [read_request(body, {}, max_events=10) for body in bodies]
    messages = [to_message(b.events[0], fixed_app_id=None) for b in batches]
    figures: dict[str, float] = {}

    with start_emulator() as svix:
        senders: dict[str, Any] = {
            "svix SDK message.create": SdkSvixSender,
            "direct sender": DirectSvixSender,
        }
        for offset, (name, kind) in enumerate(senders.items()):
            sender = kind(token=svix.token, server_url=svix.url, timeout_seconds=10)

            def send(n: int, sender: Any = sender, start: int = offset * calls) -> object:
                return sender.send(messages[start + n])

            figures[f"{name}: one message"] = per_call_us(calls, send)

    class NoSvix:
        def send(self, message: object) -> Accepted:
            return Accepted("msg_micro")

        def find(self, message: object) -> Accepted | None:
            return None

    settings = load_settings({"SVIX_AUTH_TOKEN": "sk_micro_token"})
    sink = io.StringIO()
    with redirect_stdout(sink):
        configure_logging(fmt="json", level="INFO", secrets=["sk_micro_token"])
        relay = build_relay(settings, sender=NoSvix())
        figures["read a push request"] = per_call_us(
            calls, lambda n: read_request(bodies[n], {}, max_events=10)
        )
        figures["relay's own work per event (read, map, log, answer; no Svix)"] = per_call_us(
            calls,
            lambda n: json.dumps(
                answer_for(relay.handle(read_request(bodies[n], {}, max_events=10))).body
            ),
        )
        configure_logging(fmt="json", level="WARNING", secrets=["sk_micro_token"])
        figures["the same without the per-event log line"] = per_call_us(
            calls,
            lambda n: json.dumps(
                answer_for(relay.handle(read_request(bodies[n], {}, max_events=10))).body
            ),
        )
    relay.close()

    print(f"CPU per call, {calls} calls each (Python {sys.version.split()[0]})\n")
    print("| piece | µs CPU per call |\n| --- | --- |")
    for name, value in figures.items():
        print(f"| {name} | {value:,.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
