"""Running deploy.sh in tests: its settings, a fake gcloud that records calls, dry runs."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support import ROOT

TRIGGERS = ("http", "topic")


# A gcloud stand-in. In "fail" mode (dry runs) it records the call and fails. In "ok" mode it
# plays a project: describes fail (absent) unless FAKE_GCLOUD_EXISTS=1, lists find one resource
# when it is set, reads print plausible values, `secrets versions add` records its stdin, and
# every --*-from-file is recorded (its text in "files", a policy's JSON also in "policy"), as
# deploy.sh removes its files when it ends.
FAKE_GCLOUD = """\
import json, os, sys

args = sys.argv[1:]
entry = {"argv": args, "token_in_env": "SVIX_AUTH_TOKEN" in os.environ}
mode = os.environ.get("FAKE_GCLOUD_MODE", "fail")
exists = os.environ.get("FAKE_GCLOUD_EXISTS") == "1"
project = os.environ.get("FAKE_GCLOUD_PROJECT", "")
code, out = 0, ""


def starts(*words):
    return tuple(args[: len(words)]) == words


if mode == "fail":
    code = 97
elif starts("config", "get-value", "project"):
    out = ""
elif starts("projects", "describe"):
    out = "123456789012"
elif starts("functions", "describe"):
    if any("serviceConfig.uri" in a for a in args):
        out = "https://gigs-svix-relay-x7k2p9-ew.a.run.app"
    else:
        out = f"projects/{project}/locations/europe-west1/triggers/gigs-svix-relay-123"
elif starts("eventarc", "triggers", "describe"):
    out = f"projects/{project}/subscriptions/eventarc-europe-west1-gigs-svix-relay-123-sub-1"
elif starts("alpha", "monitoring", "policies", "list"):
    out = f"projects/{project}/alertPolicies/99" if exists else ""
elif starts("beta", "monitoring", "channels", "list"):
    out = f"projects/{project}/notificationChannels/7" if exists else ""
elif starts("beta", "monitoring", "channels", "create"):
    out = f"projects/{project}/notificationChannels/42"
elif starts("monitoring", "dashboards", "list"):
    out = f"projects/{project}/dashboards/d-17\tetag-5" if exists else ""
elif starts("monitoring", "dashboards", "create"):
    out = f"projects/{project}/dashboards/d-new"
elif starts("secrets", "versions", "add"):
    entry["stdin"] = sys.stdin.read()
elif "describe" in args[:4]:
    code = 0 if exists else 1
if mode != "fail":
    for arg in args:
        flag, _, path = arg.partition("=")
        if flag.startswith("--") and flag.endswith("-from-file") and path != "-":
            with open(path) as f:
                entry.setdefault("files", {})[flag] = f.read()
            if flag == "--policy-from-file":
                entry["policy"] = json.loads(entry["files"][flag])
with open(os.environ["FAKE_GCLOUD_LOG"], "a") as f:
    f.write(json.dumps(entry) + "\\n")
if out:
    print(out)
if code:
    print("fake gcloud: exit", code, file=sys.stderr)
sys.exit(code)
"""


@dataclass
class FakeGcloud:
    bin_dir: Path
    log: Path

    def calls(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]


def printed_commands(stdout: str) -> list[list[str]]:
    """The commands a dry run printed (`+ ` lines), parsed back as argv lists."""
    return [
        shlex.split(line[2:], comments=True) for line in stdout.splitlines() if line[:2] == "+ "
    ]


def find(commands: list[list[str]], *words: str) -> list[list[str]]:
    return [c for c in commands if tuple(c[1 : 1 + len(words)]) == words]


def flags(argv: list[str]) -> dict[str, str]:
    out = {}
    for arg in argv:
        if arg.startswith("--"):
            key, _, value = arg.partition("=")
            out[key] = value
    return out


def dry_run(
    tmp: Path, fake: FakeGcloud, trigger: str, **settings: str
) -> subprocess.CompletedProcess[str]:
    settings = {"PROJECT_ID": PROJECT, "SVIX_AUTH_TOKEN": TOKEN, **settings}
    result = deploy(["--dry-run", f"--trigger={trigger}"], script_env(tmp, fake, **settings))
    assert result.returncode == 0, result.stderr
    assert fake.calls() == [], "the dry run called gcloud"
    return result


PROJECT = "relay-deploy-check"


TOKEN = "sk_live_CANARY-deploy-test-3f9a1c77e2"


def script_env(tmp: Path, fake: FakeGcloud | None, **settings: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in SETTINGS and not k.startswith(("CLOUDSDK_", "FAKE_GCLOUD_"))
    }
    config = tmp / "gcloud-config"
    config.mkdir(exist_ok=True)
    env["CLOUDSDK_CONFIG"] = str(config)
    # Should a real gcloud be reached, it finds no account and no project, not even on a GCE VM.
    env["CLOUDSDK_CORE_CHECK_GCE_METADATA"] = "false"
    env["TMPDIR"] = str(tmp)
    if fake is not None:
        env["PATH"] = f"{fake.bin_dir}{os.pathsep}{env.get('PATH', '')}"
        env["FAKE_GCLOUD_LOG"] = str(fake.log)
        env["FAKE_GCLOUD_PROJECT"] = settings.get("PROJECT_ID", "")
    env.update(settings)
    return env


def deploy(
    args: Iterable[str],
    env: dict[str, str],
    stdin_text: str | None = None,
    prefix: Iterable[str] = (),
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, "bash", str(SCRIPT), *args],
        env=env,
        input=stdin_text,
        stdin=subprocess.DEVNULL if stdin_text is None else None,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


SCRIPT = ROOT / "deploy.sh"


# Every setting deploy.sh reads: cleared so that the caller's environment cannot leak in.
SETTINGS = (
    "PROJECT_ID",
    "REGION",
    "FUNCTION_NAME",
    "EVENTS_TOPIC",
    "SUBSCRIPTION",
    "DEAD_LETTER_TOPIC",
    "DEAD_LETTER_SUBSCRIPTION",
    "DEAD_LETTER_RETENTION",
    "SECRET_NAME",
    "FUNCTION_SA",
    "PUSH_SA",
    "BUILD_SERVICE_ACCOUNT",
    "MAX_INSTANCES",
    "CONCURRENCY",
    "CPU",
    "MEMORY",
    "TIMEOUT",
    "ACK_DEADLINE",
    "MAX_DELIVERY_ATTEMPTS",
    "MIN_RETRY_DELAY",
    "MAX_RETRY_DELAY",
    "RELAY_MAX_IN_FLIGHT",
    "RELAY_TIME_BUDGET_SECONDS",
    "SVIX_SERVER_URL",
    "SVIX_APP_ID",
    "SVIX_AUTH_TOKEN",
    "ALERT_EMAIL",
    "NOTIFICATION_CHANNEL",
    "LEDGER_SUBSCRIPTION",
    "LEDGER_RETENTION",
    "RECONCILE_JOB",
    "RECONCILE_SA",
    "SCHEDULER_SA",
    "RECONCILE_SCHEDULE",
    "RECONCILE_TIMEOUT",
    "RECONCILE_MEMORY",
    "LAG_ALERT_P99_MS",
)
