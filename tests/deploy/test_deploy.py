"""deploy.sh: lint, flags, the dry run, the real-run logic against a fake gcloud, the upload list,
and every gcloud line of the dry run checked against the real gcloud without credentials.

The offline check relies on how gcloud 528 fails without credentials: a command whose arguments
parse fails with exit code 1 and

    ERROR: (gcloud.pubsub.topics.describe) You do not currently have an active account selected.
    Please run:

      $ gcloud auth login

while a usage error fails first, with exit code 2 and `unrecognized arguments`, `argument --x:
expected one argument`, `Invalid choice: 'x'` or `argument --policy-from-file: Unable to read
file`, followed by `Usage: gcloud ...`.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.deploy import (
    FAKE_GCLOUD,
    PROJECT,
    SCRIPT,
    SETTINGS,
    TOKEN,
    TRIGGERS,
    FakeGcloud,
    deploy,
    dry_run,
    find,
    flags,
    printed_commands,
    script_env,
)

REPO = Path(__file__).resolve().parents[2]
FAKE_URL = "https://gigs-svix-relay-x7k2p9-ew.a.run.app"
FAKE_PROJECT_NUMBER = "123456789012"
PUBSUB_AGENT = f"serviceAccount:service-{FAKE_PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com"
RECONCILE_SA = f"gigs-svix-relay-reconcile@{PROJECT}.iam.gserviceaccount.com"
SCHEDULER_SA = f"gigs-svix-relay-scheduler@{PROJECT}.iam.gserviceaccount.com"


AUTH_ERROR = "You do not currently have an active account selected."
USAGE_MARKERS = (
    "unrecognized arguments",
    "Invalid choice",
    "expected one argument",
    "Unable to read file",
    "Usage: gcloud",
    "argument --",
    "is required",
    "must be specified",
    "Bad value",
)


def _find_real_gcloud() -> str | None:
    return shutil.which("gcloud")


REAL_GCLOUD = _find_real_gcloud()
needs_gcloud = pytest.mark.skipif(
    REAL_GCLOUD is None, reason="gcloud is not installed: the offline gcloud checks need it"
)


# --- running deploy.sh ---------------------------------------------------------------------------


@pytest.fixture
def fake_gcloud(tmp_path: Path) -> FakeGcloud:
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    fake = bin_dir / "gcloud"
    fake.write_text(f"#!{sys.executable}\n{FAKE_GCLOUD}")
    fake.chmod(0o755)
    return FakeGcloud(bin_dir, tmp_path / "gcloud-calls.jsonl")


def one(commands: list[list[str]], *words: str) -> list[str]:
    found = find(commands, *words)
    assert len(found) == 1, f"expected one `gcloud {' '.join(words)}`, got {found}"
    return found[0]


def env_vars(deploy_argv: list[str]) -> dict[str, str]:
    spec = flags(deploy_argv)["--set-env-vars"]
    assert spec.startswith("^;^"), spec
    return dict(item.split("=", 1) for item in spec[3:].split(";"))


# --- lint and flags ------------------------------------------------------------------------------


def test_script_is_executable_bash() -> None:
    assert os.access(SCRIPT, os.X_OK), "deploy.sh is not executable"
    text = SCRIPT.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


@pytest.mark.skipif(
    shutil.which("shellcheck") is None,
    reason="shellcheck is not installed (apt-get install -y shellcheck; CI installs it)",
)
def test_shellcheck() -> None:
    result = subprocess.run(
        ["shellcheck", "deploy.sh"], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help(tmp_path: Path, fake_gcloud: FakeGcloud, flag: str) -> None:
    result = deploy([flag], script_env(tmp_path, fake_gcloud))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: ./deploy.sh")
    for name in (*[s for s in SETTINGS if s != "SVIX_AUTH_TOKEN"], "--dry-run", "--trigger="):
        assert name in result.stdout, f"the usage text does not mention {name}"
    assert fake_gcloud.calls() == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bogus"], "unknown option: --bogus"),
        (["--trigger=pubsub"], "--trigger must be http or topic"),
        (["--trigger"], "--trigger needs a value"),
        (["deploy"], "unknown option: deploy"),
    ],
)
def test_bad_flags(tmp_path: Path, fake_gcloud: FakeGcloud, args: list[str], message: str) -> None:
    env = script_env(tmp_path, fake_gcloud, PROJECT_ID=PROJECT, SVIX_AUTH_TOKEN=TOKEN)
    result = deploy(args, env)
    assert result.returncode == 2
    assert message in result.stderr
    assert "--help" in result.stderr
    assert fake_gcloud.calls() == []


def test_missing_project_in_dry_run(tmp_path: Path, fake_gcloud: FakeGcloud) -> None:
    result = deploy(["--dry-run"], script_env(tmp_path, fake_gcloud))
    assert result.returncode != 0
    assert "PROJECT_ID is not set" in result.stderr
    assert fake_gcloud.calls() == []


def test_missing_project_without_gcloud_default(tmp_path: Path, fake_gcloud: FakeGcloud) -> None:
    env = script_env(tmp_path, fake_gcloud, FAKE_GCLOUD_MODE="ok")
    result = deploy([], env, stdin_text=TOKEN)
    assert result.returncode == 1
    assert "PROJECT_ID is not set and gcloud has no default project" in result.stderr
    assert [c["argv"] for c in fake_gcloud.calls()] == [["config", "get-value", "project"]]


@needs_gcloud
def test_missing_project_with_real_gcloud_and_empty_config(tmp_path: Path) -> None:
    # The real gcloud with an empty CLOUDSDK_CONFIG has no default project: the script stops
    # there, before reading the token or calling anything else. Without network, to be safe.
    env = script_env(tmp_path, None)
    env.update({k: v for k, v in offline_env(env["CLOUDSDK_CONFIG"]).items() if "PROXY" in k})
    result = deploy([], env, stdin_text=TOKEN, prefix=_no_network_prefix())
    assert result.returncode == 1
    assert "PROJECT_ID is not set and gcloud has no default project" in result.stderr
    assert TOKEN not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"CPU": "0.5"}, "CONCURRENCY=32 needs at least 1 vCPU"),
        ({"ACK_DEADLINE": "60"}, "ACK_DEADLINE (60) must be above TIMEOUT (60)"),
        ({"TIMEOUT": "120"}, "ACK_DEADLINE (90) must be above TIMEOUT (120)"),
        ({"RELAY_TIME_BUDGET_SECONDS": "60"}, "must stay below TIMEOUT"),
        ({"MAX_DELIVERY_ATTEMPTS": "4"}, "MAX_DELIVERY_ATTEMPTS must be between 5 and 100"),
        ({"MIN_RETRY_DELAY": "700s"}, "MIN_RETRY_DELAY must be between 0 and 600"),
        ({"MAX_RETRY_DELAY": "10m"}, "MAX_RETRY_DELAY must look like 10s"),
        ({"SVIX_SERVER_URL": "https://svix.example;x"}, "SVIX_SERVER_URL must not contain"),
        ({"SVIX_APP_ID": "app:1"}, "SVIX_APP_ID"),
        ({"PROJECT_ID": "Bad_Project"}, "PROJECT_ID 'Bad_Project' is not valid"),
        ({"FUNCTION_SA": "x"}, "FUNCTION_SA 'x' is not valid"),
        ({"RECONCILE_SA": "Bad_Account"}, "RECONCILE_SA 'Bad_Account' is not valid"),
        ({"RECONCILE_SCHEDULE": "daily"}, "RECONCILE_SCHEDULE 'daily' is not valid"),
        ({"RECONCILE_TIMEOUT": "3600"}, "RECONCILE_TIMEOUT must look like 3600s"),
        ({"RECONCILE_TIMEOUT": "90000s"}, "RECONCILE_TIMEOUT must be between 60 and 86400"),
        ({"RECONCILE_JOB": "Reconcile"}, "RECONCILE_JOB 'Reconcile' is not valid"),
        ({"LEDGER_RETENTION": "7 days"}, "LEDGER_RETENTION '7 days' is not valid"),
        ({"LAG_ALERT_P99_MS": "1e5"}, "LAG_ALERT_P99_MS must be a whole number"),
        ({"LAG_ALERT_P99_MS": "0"}, "LAG_ALERT_P99_MS must be between 1 and 86400000"),
    ],
)
def test_settings_are_checked(
    tmp_path: Path, fake_gcloud: FakeGcloud, settings: dict[str, str], message: str
) -> None:
    env = script_env(
        tmp_path, fake_gcloud, **{"PROJECT_ID": PROJECT, "SVIX_AUTH_TOKEN": TOKEN, **settings}
    )
    result = deploy(["--dry-run"], env)
    assert result.returncode == 1
    assert message in result.stderr
    assert TOKEN not in result.stdout + result.stderr
    assert fake_gcloud.calls() == []


def test_concurrency_one_allows_a_fraction_of_a_cpu(
    tmp_path: Path, fake_gcloud: FakeGcloud
) -> None:
    result = dry_run(tmp_path, fake_gcloud, "http", CPU="0.583", CONCURRENCY="1", MEMORY="256Mi")
    argv = one(printed_commands(result.stdout), "functions", "deploy")
    assert flags(argv)["--cpu"] == "0.583"
    assert flags(argv)["--concurrency"] == "1"
    assert env_vars(argv)["THREADS"] == "1"


# --- the dry run ---------------------------------------------------------------------------------


@pytest.mark.parametrize("trigger", TRIGGERS)
def test_dry_run_prints_every_command_and_runs_none(
    tmp_path: Path, fake_gcloud: FakeGcloud, trigger: str
) -> None:
    result = dry_run(
        tmp_path,
        fake_gcloud,
        trigger,
        SVIX_SERVER_URL="https://svix.example.test/a,b",
        SVIX_APP_ID="app_gigs-1",
        ALERT_EMAIL="oncall@example.com",
    )
    out = result.stdout
    assert TOKEN not in out + result.stderr
    assert "not shown" in out
    cmds = printed_commands(out)
    assert all(c[0] == "gcloud" for c in cmds), [c for c in cmds if c[0] != "gcloud"]
    assert all(f"--project={PROJECT}" in c for c in cmds), "a command without --project"
    assert len(cmds) >= 30

    enable = one(cmds, "services", "enable")
    for api in ("cloudfunctions", "run", "cloudbuild", "artifactregistry", "pubsub"):
        assert f"{api}.googleapis.com" in enable
    for api in ("secretmanager", "logging", "monitoring", "cloudscheduler"):
        assert f"{api}.googleapis.com" in enable
    assert ("eventarc.googleapis.com" in enable) == (trigger == "topic")

    fn_sa = f"gigs-svix-relay-fn@{PROJECT}.iam.gserviceaccount.com"
    push_sa = f"gigs-svix-relay-push@{PROJECT}.iam.gserviceaccount.com"
    assert [c[4] for c in find(cmds, "iam", "service-accounts", "create")] == [
        "gigs-svix-relay-fn",
        "gigs-svix-relay-push",
        "gigs-svix-relay-reconcile",
        "gigs-svix-relay-scheduler",
    ]

    # The secret: created, a version from stdin, readable by the function's account.
    one(cmds, "secrets", "create")
    add = one(cmds, "secrets", "versions", "add")
    assert "--data-file=-" in add
    grants = find(cmds, "secrets", "add-iam-policy-binding")
    assert [flags(g)["--member"] for g in grants] == [
        f"serviceAccount:{fn_sa}",
        f"serviceAccount:{RECONCILE_SA}",
    ]
    assert {flags(g)["--role"] for g in grants} == {"roles/secretmanager.secretAccessor"}
    grant = grants[0]

    # The function.
    argv = one(cmds, "functions", "deploy")
    f = flags(argv)
    assert argv[3] == "gigs-svix-relay"
    assert "--gen2" in f
    assert f["--runtime"] == "python312"
    assert f["--region"] == "europe-west1"
    assert f["--source"] == "."
    assert "--no-allow-unauthenticated" in f
    assert f["--service-account"] == fn_sa
    assert f["--set-secrets"] == "SVIX_AUTH_TOKEN=svix-auth-token:latest"
    assert (f["--timeout"], f["--memory"], f["--cpu"]) == ("60s", "512Mi", "1")
    assert (f["--concurrency"], f["--max-instances"]) == ("32", "10")
    assert env_vars(argv) == {
        "THREADS": "32",
        "RELAY_MAX_IN_FLIGHT": "32",
        "RELAY_TIME_BUDGET_SECONDS": "40",
        "RELAY_PARKING_TOPIC": f"projects/{PROJECT}/topics/gigs-events-svix-relay-dead-letter",
        "RELAY_LOG_FORMAT": "json",
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "SVIX_SERVER_URL": "https://svix.example.test/a,b",
        "SVIX_APP_ID": "app_gigs-1",
    }
    if trigger == "http":
        assert f["--entry-point"] == "relay"
        assert "--trigger-http" in f
        assert "--trigger-topic" not in f
    else:
        assert f["--entry-point"] == "relay_event"
        assert f["--trigger-topic"] == "gigs-events"
        assert f["--trigger-service-account"] == push_sa
        assert "--retry" in f

    invoker = one(cmds, "functions", "add-invoker-policy-binding")
    assert flags(invoker)["--member"] == f"serviceAccount:{push_sa}"
    publishers = {
        flags(c)["--member"]
        for c in find(cmds, "pubsub", "topics", "add-iam-policy-binding")
        if c[4] == "gigs-events-svix-relay-dead-letter"
        and flags(c)["--role"] == "roles/pubsub.publisher"
    }
    agent = "serviceAccount:service-PROJECT_NUMBER@gcp-sa-pubsub.iam.gserviceaccount.com"
    assert publishers == {f"serviceAccount:{fn_sa}", agent}
    token_creator = one(cmds, "iam", "service-accounts", "add-iam-policy-binding")
    assert token_creator[4] == push_sa
    assert flags(token_creator)["--member"] == agent
    assert flags(token_creator)["--role"] == "roles/iam.serviceAccountTokenCreator"

    # Topics and the dead-letter pull subscription.
    assert [c[4] for c in find(cmds, "pubsub", "topics", "create")] == [
        "gigs-events",
        "gigs-events-svix-relay-dead-letter",
    ]
    subs = {c[4]: flags(c) for c in find(cmds, "pubsub", "subscriptions", "create")}
    dls = subs.pop("gigs-events-svix-relay-dead-letter-sub")
    assert dls["--topic"] == "gigs-events-svix-relay-dead-letter"
    assert dls["--message-retention-duration"] == "7d"
    assert dls["--expiration-period"] == "never"
    assert subs.pop("gigs-events-ledger")["--topic"] == "gigs-events"  # more below

    # What feeds the function.
    if trigger == "http":
        push = subs.pop("gigs-events-svix-relay")
        sub_name = "gigs-events-svix-relay"
        assert push["--topic"] == "gigs-events"
        assert push["--push-endpoint"].startswith("https://")
        assert push["--push-auth-token-audience"] == push["--push-endpoint"]
        assert push["--push-auth-service-account"] == push_sa
        assert int(push["--ack-deadline"]) > 60
        assert push["--expiration-period"] == "never"
        policy = push
    else:
        policy = flags(one(cmds, "pubsub", "subscriptions", "update"))
        sub_name = one(cmds, "pubsub", "subscriptions", "update")[4]
        assert sub_name.startswith(f"projects/{PROJECT}/subscriptions/")
    assert subs == {}
    assert (policy["--min-retry-delay"], policy["--max-retry-delay"]) == ("10s", "600s")
    assert policy["--dead-letter-topic"] == (
        f"projects/{PROJECT}/topics/gigs-events-svix-relay-dead-letter"
    )
    assert policy["--max-delivery-attempts"] == "10"
    (subscriber,) = [
        c
        for c in find(cmds, "pubsub", "subscriptions", "add-iam-policy-binding")
        if c[4] == sub_name
    ]
    assert flags(subscriber)["--member"] == agent
    assert flags(subscriber)["--role"] == "roles/pubsub.subscriber"

    # Logs-based metrics.
    metrics = {c[4]: flags(c) for c in find(cmds, "logging", "metrics", "create")}
    assert set(metrics) == {
        "gigs-svix-relay-delivered",
        "gigs-svix-relay-duplicate",
        "gigs-svix-relay-rate-limited",
        "gigs-svix-relay-failed",
        "gigs-svix-relay-events",
        "gigs-svix-relay-publish-lag",
        "gigs-svix-relay-reconcile-missing",
    }
    # The labelled and distribution metrics come from files (tests/test_monitoring.py reads them).
    for name in ("gigs-svix-relay-events", "gigs-svix-relay-publish-lag"):
        assert Path(metrics.pop(name)["--config-from-file"]).parent.parent == tmp_path
    missing = metrics.pop("gigs-svix-relay-reconcile-missing")["--log-filter"]
    assert 'resource.labels.job_name="gigs-svix-relay-reconcile"' in missing
    assert 'jsonPayload.message="reconcile finished"' in missing
    assert "jsonPayload.reconcile_missing>0" in missing
    assert "jsonPayload.reconcile_errors=0" in missing
    base = (
        'resource.type="cloud_run_revision" AND resource.labels.service_name="gigs-svix-relay" AND '
    )
    for name, outcome in [
        ("delivered", "delivered"),
        ("duplicate", "duplicate"),
        ("rate-limited", "rate_limited"),
    ]:
        assert metrics[f"gigs-svix-relay-{name}"]["--log-filter"] == (
            f'{base}jsonPayload.outcome="{outcome}"'
        )
    failed = metrics["gigs-svix-relay-failed"]["--log-filter"]
    assert failed.startswith(base)
    for outcome in ("failed", "rejected", "parked"):
        assert f'jsonPayload.outcome="{outcome}"' in failed
    assert all(m["--description"] for m in metrics.values())

    # The alert policies: each listed by its display name, then created from a file the dry
    # run keeps; the dead-letter one first.
    one(cmds, "beta", "monitoring", "channels", "create")
    listed = find(cmds, "alpha", "monitoring", "policies", "list")
    created = find(cmds, "alpha", "monitoring", "policies", "create")
    assert len(listed) == len(created) == 4
    policy_files = [Path(flags(c)["--policy-from-file"]) for c in created]
    assert [f.name for f in policy_files] == [
        "alert-dead-letters.json",
        "alert-publish-lag.json",
        "alert-reconcile-missing.json",
        "alert-reconcile-failed.json",
    ]
    for listing, policy_file in zip(listed, policy_files, strict=True):
        assert policy_file.parent.parent == tmp_path
        name = json.loads(policy_file.read_text())["displayName"]
        assert flags(listing)["--filter"] == f'displayName="{name}"'
    alert = json.loads(policy_files[0].read_text())
    condition = alert["conditions"][0]["conditionThreshold"]
    assert (
        'metric.type = "pubsub.googleapis.com/subscription/num_undelivered_messages"'
        in (condition["filter"])
    )
    assert 'subscription_id = "gigs-events-svix-relay-dead-letter-sub"' in condition["filter"]
    assert condition["comparison"] == "COMPARISON_GT"
    assert condition["thresholdValue"] == 0
    assert condition["duration"] == "300s"
    for policy_file in policy_files:
        assert json.loads(policy_file.read_text())["notificationChannels"] == [
            f"projects/{PROJECT}/notificationChannels/DRY_RUN_CHANNEL"
        ]

    # The dashboard: listed by display name, then created.
    listing = one(cmds, "monitoring", "dashboards", "list")
    dashboard = Path(flags(one(cmds, "monitoring", "dashboards", "create"))["--config-from-file"])
    name = json.loads(dashboard.read_text())["displayName"]
    assert name == "gigs-svix-relay: Gigs events to Svix"
    assert flags(listing)["--filter"] == f'displayName="{name}"'
    assert flags(listing)["--format"] == "value(name,etag)"

    # Order: what a step needs exists before it runs.
    index = {tuple(c): i for i, c in enumerate(cmds)}
    assert index[tuple(add)] < index[tuple(argv)] < index[tuple(invoker)]
    assert index[tuple(grant)] < index[tuple(argv)]
    url = one(cmds, "functions", "describe") if trigger == "http" else None
    if url is not None:
        assert index[tuple(argv)] < index[tuple(url)] < index[tuple(subscriber)]

    # The closing summary.
    assert "Dry run finished: nothing was deployed." in out
    assert "gcloud functions logs read gigs-svix-relay" in out


@pytest.mark.parametrize("trigger", TRIGGERS)
def test_dry_run_sets_up_the_ledger_and_the_daily_reconcile(
    tmp_path: Path, fake_gcloud: FakeGcloud, trigger: str
) -> None:
    result = dry_run(
        tmp_path,
        fake_gcloud,
        trigger,
        SVIX_SERVER_URL="https://svix.example.test",
        SVIX_APP_ID="a1",
    )
    cmds = printed_commands(result.stdout)
    index = {tuple(c): i for i, c in enumerate(cmds)}

    # The ledger: every event of the topic, kept 7 days, acknowledged or not, never expiring.
    ledger = one(cmds, "pubsub", "subscriptions", "create", "gigs-events-ledger")
    f = flags(ledger)
    assert f["--topic"] == "gigs-events"
    assert "--retain-acked-messages" in f
    assert f["--message-retention-duration"] == "7d"
    assert f["--expiration-period"] == "never"
    # No push and no dead-letter policy: nothing but reconcile reads it.
    assert not {"--push-endpoint", "--dead-letter-topic"} & set(f)
    (reader,) = [
        c
        for c in find(cmds, "pubsub", "subscriptions", "add-iam-policy-binding")
        if c[4] == "gigs-events-ledger"
    ]
    assert flags(reader)["--member"] == f"serviceAccount:{RECONCILE_SA}"
    assert flags(reader)["--role"] == "roles/pubsub.subscriber"

    # The job: built from this source, run through the buildpacks launcher, with the function's
    # Svix settings and token, as its own account.
    job = one(cmds, "run", "jobs", "deploy")
    f = flags(job)
    assert job[4] == "gigs-svix-relay-reconcile"
    assert (f["--source"], f["--region"]) == (".", "europe-west1")
    assert (f["--command"], f["--args"]) == ("launcher", "python,reconcile_job.py")
    assert f["--service-account"] == RECONCILE_SA
    assert f["--set-secrets"] == "SVIX_AUTH_TOKEN=svix-auth-token:latest"
    assert (f["--tasks"], f["--max-retries"], f["--task-timeout"]) == ("1", "1", "3600s")
    assert env_vars(job) == {
        "RECONCILE_SUBSCRIPTION": f"projects/{PROJECT}/subscriptions/gigs-events-ledger",
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "SVIX_SERVER_URL": "https://svix.example.test",
        "SVIX_APP_ID": "a1",
    }
    assert (REPO / "reconcile_job.py").is_file()

    # Cloud Scheduler starts it daily, as an account that may do nothing but run it.
    invoker = one(cmds, "run", "jobs", "add-iam-policy-binding")
    assert invoker[4] == "gigs-svix-relay-reconcile"
    assert flags(invoker)["--member"] == f"serviceAccount:{SCHEDULER_SA}"
    assert flags(invoker)["--role"] == "roles/run.invoker"
    probe = one(cmds, "scheduler", "jobs", "describe")
    schedule = one(cmds, "scheduler", "jobs", "create", "http")
    f = flags(schedule)
    assert schedule[5] == probe[4] == "gigs-svix-relay-reconcile-daily"
    assert (f["--schedule"], f["--time-zone"]) == ("30 3 * * *", "Etc/UTC")
    assert f["--uri"] == (
        "https://europe-west1-run.googleapis.com/apis/run.googleapis.com/v1/namespaces/"
        f"{PROJECT}/jobs/gigs-svix-relay-reconcile:run"
    )
    assert f["--http-method"] == "POST"
    assert f["--oauth-service-account-email"] == SCHEDULER_SA
    assert f["--oauth-token-scope"] == "https://www.googleapis.com/auth/cloud-platform"
    assert "--oidc-service-account-email" not in f  # Google APIs take OAuth tokens

    # The job reads the token like the function.
    grants = find(cmds, "secrets", "add-iam-policy-binding")
    assert f"--member=serviceAccount:{RECONCILE_SA}" in grants[1]

    # Order: the ledger fills from the start; the job exists before it is granted and scheduled.
    function = one(cmds, "functions", "deploy")
    assert index[tuple(ledger)] < index[tuple(function)]
    assert index[tuple(grants[1])] < index[tuple(job)]
    assert index[tuple(job)] < index[tuple(invoker)] < index[tuple(schedule)]
    assert "Daily reconcile:      Cloud Run job gigs-svix-relay-reconcile" in result.stdout


def test_dry_run_does_not_read_stdin(tmp_path: Path, fake_gcloud: FakeGcloud) -> None:
    # stdin is a pipe nobody writes to: a read would block until the timeout.
    env = script_env(tmp_path, fake_gcloud, PROJECT_ID=PROJECT)
    read_end, write_end = os.pipe()
    try:
        proc = subprocess.Popen(
            ["bash", str(SCRIPT), "--dry-run"],
            env=env,
            stdin=read_end,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        os.close(read_end)
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            pytest.fail("deploy.sh --dry-run waited for stdin: it must not read the token")
    finally:
        os.close(write_end)
    assert proc.returncode == 0, err
    assert "not shown" in out
    assert fake_gcloud.calls() == []


def test_dry_run_settings_reach_the_commands(tmp_path: Path, fake_gcloud: FakeGcloud) -> None:
    result = dry_run(
        tmp_path,
        fake_gcloud,
        "http",
        REGION="us-central1",
        FUNCTION_NAME="relay-two",
        EVENTS_TOPIC="events-two",
        SUBSCRIPTION="sub-two",
        DEAD_LETTER_TOPIC="dlt-two",
        DEAD_LETTER_SUBSCRIPTION="dls-two",
        SECRET_NAME="token-two",
        FUNCTION_SA=f"fn-two@{PROJECT}.iam.gserviceaccount.com",
        PUSH_SA="push-two",
        MAX_INSTANCES="3",
        CONCURRENCY="8",
        CPU="2",
        MEMORY="1Gi",
        TIMEOUT="120",
        ACK_DEADLINE="180",
        MAX_DELIVERY_ATTEMPTS="20",
        MIN_RETRY_DELAY="5s",
        MAX_RETRY_DELAY="300s",
        RELAY_MAX_IN_FLIGHT="4",
        RELAY_TIME_BUDGET_SECONDS="90",
        NOTIFICATION_CHANNEL="555",
        LEDGER_SUBSCRIPTION="ledger-two",
        LEDGER_RETENTION="3d",
        RECONCILE_JOB="reconcile-two",
        RECONCILE_SA="reconcile-two",
        SCHEDULER_SA=f"scheduler-two@{PROJECT}.iam.gserviceaccount.com",
        RECONCILE_SCHEDULE="15 5 * * 1-5",
        RECONCILE_TIMEOUT="7200s",
        RECONCILE_MEMORY="2Gi",
        LAG_ALERT_P99_MS="15000",
    )
    cmds = printed_commands(result.stdout)
    argv = one(cmds, "functions", "deploy")
    f = flags(argv)
    assert argv[3] == "relay-two"
    assert f["--region"] == "us-central1"
    assert f["--service-account"] == f"fn-two@{PROJECT}.iam.gserviceaccount.com"
    assert f["--set-secrets"] == "SVIX_AUTH_TOKEN=token-two:latest"
    assert (f["--timeout"], f["--memory"], f["--cpu"]) == ("120s", "1Gi", "2")
    assert (f["--concurrency"], f["--max-instances"]) == ("8", "3")
    ev = env_vars(argv)
    assert (ev["THREADS"], ev["RELAY_MAX_IN_FLIGHT"]) == ("8", "4")
    assert ev["RELAY_TIME_BUDGET_SECONDS"] == "90"
    assert ev["RELAY_PARKING_TOPIC"] == f"projects/{PROJECT}/topics/dlt-two"
    assert "SVIX_SERVER_URL" not in ev
    # An account of the project given by email is created under its id.
    assert [c[4] for c in find(cmds, "iam", "service-accounts", "create")] == [
        "fn-two",
        "push-two",
        "reconcile-two",
        "scheduler-two",
    ]
    ledger = flags(one(cmds, "pubsub", "subscriptions", "create", "ledger-two"))
    assert (ledger["--topic"], ledger["--message-retention-duration"]) == ("events-two", "3d")
    job = one(cmds, "run", "jobs", "deploy")
    assert job[4] == "reconcile-two"
    assert flags(job)["--service-account"] == f"reconcile-two@{PROJECT}.iam.gserviceaccount.com"
    assert (flags(job)["--task-timeout"], flags(job)["--memory"]) == ("7200s", "2Gi")
    assert flags(job)["--region"] == "us-central1"
    assert env_vars(job)["RECONCILE_SUBSCRIPTION"] == f"projects/{PROJECT}/subscriptions/ledger-two"
    schedule = one(cmds, "scheduler", "jobs", "create", "http")
    assert schedule[5] == "reconcile-two-daily"
    assert flags(schedule)["--schedule"] == "15 5 * * 1-5"
    assert flags(schedule)["--oauth-service-account-email"] == (
        f"scheduler-two@{PROJECT}.iam.gserviceaccount.com"
    )
    assert "/jobs/reconcile-two:run" in flags(schedule)["--uri"]
    push = flags(one(cmds, "pubsub", "subscriptions", "create", "sub-two"))
    assert push["--topic"] == "events-two"
    assert push["--ack-deadline"] == "180"
    assert push["--max-delivery-attempts"] == "20"
    assert (push["--min-retry-delay"], push["--max-retry-delay"]) == ("5s", "300s")
    assert push["--dead-letter-topic"] == f"projects/{PROJECT}/topics/dlt-two"
    one(cmds, "pubsub", "subscriptions", "create", "dls-two")
    assert find(cmds, "beta", "monitoring", "channels") == []
    created = find(cmds, "alpha", "monitoring", "policies", "create")
    alerts = [json.loads(Path(flags(c)["--policy-from-file"]).read_text()) for c in created]
    for alert in alerts:
        assert alert["notificationChannels"] == [f"projects/{PROJECT}/notificationChannels/555"]
        assert alert["displayName"].startswith("relay-two: ")
    assert (
        'subscription_id = "dls-two"' in alerts[0]["conditions"][0]["conditionThreshold"]["filter"]
    )
    assert alerts[1]["conditions"][0]["conditionThreshold"]["thresholdValue"] == 15000
    assert "reconcile-two-daily" in json.dumps(alerts[3])


# --- a real run against a fake gcloud ------------------------------------------------------------


def real_run(
    tmp: Path,
    fake: FakeGcloud,
    args: list[str],
    stdin_text: str | None = None,
    exists: bool = False,
    **settings: str,
) -> subprocess.CompletedProcess[str]:
    env = script_env(tmp, fake, PROJECT_ID=PROJECT, **settings)
    env["FAKE_GCLOUD_MODE"] = "ok"
    env["FAKE_GCLOUD_EXISTS"] = "1" if exists else "0"
    return deploy(args, env, stdin_text=stdin_text)


@pytest.mark.parametrize("trigger", TRIGGERS)
def test_real_run_creates_everything(tmp_path: Path, fake_gcloud: FakeGcloud, trigger: str) -> None:
    result = real_run(
        tmp_path,
        fake_gcloud,
        [f"--trigger={trigger}"],
        SVIX_AUTH_TOKEN=TOKEN,
        ALERT_EMAIL="oncall@example.com",
    )
    assert result.returncode == 0, result.stderr
    assert TOKEN not in result.stdout + result.stderr
    calls = fake_gcloud.calls()
    assert calls
    assert not any(TOKEN in " ".join(c["argv"]) for c in calls), "the token on a command line"
    assert not any(c["token_in_env"] for c in calls), "SVIX_AUTH_TOKEN passed on to gcloud"
    cmds = [["gcloud", *c["argv"]] for c in calls]
    # The token goes in through stdin, exactly, once.
    added = [c for c in calls if c["argv"][:3] == ["secrets", "versions", "add"]]
    assert [c["stdin"] for c in added] == [TOKEN]
    one(cmds, "secrets", "create")
    # Values read back are used.
    agent_bindings = [c for c in cmds if f"--member={PUBSUB_AGENT}" in c]
    assert len(agent_bindings) == 3
    if trigger == "http":
        push = flags(one(cmds, "pubsub", "subscriptions", "create", "gigs-events-svix-relay"))
        assert push["--push-endpoint"] == push["--push-auth-token-audience"] == FAKE_URL
    else:
        update = one(cmds, "pubsub", "subscriptions", "update")
        assert update[4] == (
            f"projects/{PROJECT}/subscriptions/eventarc-europe-west1-gigs-svix-relay-123-sub-1"
        )
        trigger_describe = one(cmds, "eventarc", "triggers", "describe")
        assert trigger_describe[4] == (
            f"projects/{PROJECT}/locations/europe-west1/triggers/gigs-svix-relay-123"
        )
    # The alert policy goes to the channel just created; its temporary file is removed.
    policies = [c["policy"] for c in calls if "policy" in c]
    assert len(policies) == 4
    for policy in policies:
        assert policy["notificationChannels"] == [f"projects/{PROJECT}/notificationChannels/42"]
    assert list(tmp_path.glob("relay-deploy.*")) == []
    assert "monitoring/dashboards/builder/d-new?project=" in result.stdout
    assert f"URL:                  {FAKE_URL}" in result.stdout
    assert "Deployed." in result.stdout


def test_real_run_updates_what_exists(tmp_path: Path, fake_gcloud: FakeGcloud) -> None:
    result = real_run(tmp_path, fake_gcloud, [], SVIX_AUTH_TOKEN=TOKEN)
    assert result.returncode == 0, result.stderr
    first = [["gcloud", *c["argv"]] for c in fake_gcloud.calls()]
    fake_gcloud.log.unlink()

    result = real_run(tmp_path, fake_gcloud, [], exists=True, SVIX_AUTH_TOKEN=TOKEN)
    assert result.returncode == 0, result.stderr
    again = [["gcloud", *c["argv"]] for c in fake_gcloud.calls()]
    for created in ("iam service-accounts create", "secrets create", "pubsub topics create"):
        assert find(first, *created.split()), created
        assert find(again, *created.split()) == [], f"{created} on the second run"
    assert find(again, "pubsub", "subscriptions", "create") == []
    updated = [c[4] for c in find(again, "pubsub", "subscriptions", "update")]
    assert updated == [
        "gigs-events-svix-relay-dead-letter-sub",
        "gigs-events-ledger",
        "gigs-events-svix-relay",
    ]
    assert find(again, "logging", "metrics", "create") == []
    assert len(find(again, "logging", "metrics", "update")) == 7
    assert find(again, "alpha", "monitoring", "policies", "create") == []
    # Each policy is replaced by the one the repository describes, under its listed name.
    policy_updates = find(again, "alpha", "monitoring", "policies", "update")
    assert [c[5] for c in policy_updates] == [f"projects/{PROJECT}/alertPolicies/99"] * 4
    assert find(again, "scheduler", "jobs", "create") == []
    one(again, "scheduler", "jobs", "update", "http")
    assert find(again, "monitoring", "dashboards", "create") == []
    # The dashboard is updated with the etag it was listed with, so that a concurrent edit
    # makes the update fail instead of being overwritten.
    (dashboard_update,) = [
        c for c in fake_gcloud.calls() if c["argv"][:3] == ["monitoring", "dashboards", "update"]
    ]
    assert dashboard_update["argv"][3] == f"projects/{PROJECT}/dashboards/d-17"
    dashboard = json.loads(dashboard_update["files"]["--config-from-file"])
    assert dashboard["etag"] == "etag-5"
    assert dashboard["displayName"] == "gigs-svix-relay: Gigs events to Svix"
    # Jobs deploy creates or updates: the same command both times.
    assert one(first, "run", "jobs", "deploy") == one(again, "run", "jobs", "deploy")
    # The deploy itself updates in place: same command both times.
    assert one(first, "functions", "deploy") == one(again, "functions", "deploy")
    assert len(find(again, "secrets", "versions", "add")) == 1


def test_real_run_reads_the_token_from_stdin(tmp_path: Path, fake_gcloud: FakeGcloud) -> None:
    result = real_run(tmp_path, fake_gcloud, [], stdin_text=f"{TOKEN}\n")
    assert result.returncode == 0, result.stderr
    assert TOKEN not in result.stdout + result.stderr
    added = [c for c in fake_gcloud.calls() if c["argv"][:3] == ["secrets", "versions", "add"]]
    assert [c["stdin"] for c in added] == [TOKEN]


def test_real_run_without_token_keeps_an_existing_version(
    tmp_path: Path, fake_gcloud: FakeGcloud
) -> None:
    result = real_run(tmp_path, fake_gcloud, [], stdin_text="", exists=True)
    assert result.returncode == 0, result.stderr
    assert "keeping the current version" in result.stderr
    cmds = [["gcloud", *c["argv"]] for c in fake_gcloud.calls()]
    assert find(cmds, "secrets", "versions", "add") == []


def test_real_run_without_token_or_secret_fails(tmp_path: Path, fake_gcloud: FakeGcloud) -> None:
    result = real_run(tmp_path, fake_gcloud, [], stdin_text="")
    assert result.returncode == 1
    assert "no Svix token given" in result.stderr
    cmds = [["gcloud", *c["argv"]] for c in fake_gcloud.calls()]
    assert find(cmds, "functions", "deploy") == []


# --- what gcloud uploads -------------------------------------------------------------------------


def offline_env(config_dir: str) -> dict[str, str]:
    """gcloud with no credentials, no prompts, no metadata server and a dead proxy."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": config_dir,
        "LANG": "C.UTF-8",
        "CLOUDSDK_CONFIG": config_dir,
        "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
        "CLOUDSDK_CORE_CHECK_GCE_METADATA": "false",
        "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "true",
        "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "true",
        "CLOUDSDK_PROXY_TYPE": "http",
        "CLOUDSDK_PROXY_ADDRESS": "127.0.0.1",
        "CLOUDSDK_PROXY_PORT": "9",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "",
    }


def _no_network_prefix() -> list[str]:
    """`unshare -rn` (a network namespace with no network) where the kernel allows it."""
    if shutil.which("unshare") is None:
        return []
    probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True, check=False)
    return ["unshare", "-rn"] if probe.returncode == 0 else []


def uploaded_files(directory: Path, tmp: Path) -> set[str]:
    assert REAL_GCLOUD is not None
    config = tempfile.mkdtemp(dir=tmp)
    result = subprocess.run(
        [REAL_GCLOUD, "meta", "list-files-for-upload", str(directory)],
        env=offline_env(config),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


@needs_gcloud
def test_gcloudignore_uploads_only_what_runs(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    keep = [
        "main.py",
        "reconcile_job.py",
        "requirements.txt",
        "relay/__init__.py",
        "relay/delivery/service.py",
        "catalogue/event-types.toml",
    ]
    drop = [
        "catalogue/examples/user.created.json",
        "monitoring/dashboard.json",
        "tests/pubsub_emulator.py",
        "tests/test_x.py",
        "tests/data/event.json",
        "svix_emulator/app.py",
        "bench/run.py",
        "bench/results/r.json",
        ".ci/check.sh",
        ".venv/bin/python",
        ".git/HEAD",
        "deploy.sh",
        "requirements-dev.txt",
        "pyproject.toml",
        "README.md",
        "docs/design.md",
        "scripts/run_local.py",
        "Makefile",
        "relay/__pycache__/service.cpython-312.pyc",
        ".pytest_cache/v/x",
        ".mypy_cache/x.json",
        ".ruff_cache/x",
        ".hypothesis/x",
        ".gcloudignore",
        ".gitignore",
    ]
    for name in keep + drop:
        path = tree / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x\n")
    shutil.copy(REPO / ".gcloudignore", tree / ".gcloudignore")
    shutil.copy(REPO / ".gitignore", tree / ".gitignore")
    assert uploaded_files(tree, tmp_path) == set(keep)


@needs_gcloud
def test_gcloudignore_on_this_repository(tmp_path: Path) -> None:
    files = uploaded_files(REPO, tmp_path)
    assert "requirements.txt" in files
    # What the function and the reconcile job import.
    for name in (
        "main.py",
        "reconcile_job.py",
        "relay/__init__.py",
        "relay/__main__.py",
        "catalogue/event-types.toml",
    ):
        if (REPO / name).exists():
            assert name in files
    unwanted = re.compile(
        r"^(tests|svix_emulator|bench|monitoring|\.ci|\.venv|\.git|scripts|docs)/|__pycache__|"
        r"^(deploy\.sh|requirements-dev\.txt|pyproject\.toml)$"
    )
    assert sorted(f for f in files if unwanted.search(f)) == []


# --- every gcloud line of the dry run, against the real gcloud, offline --------------------------


@dataclass
class GcloudCheck:
    argv: list[str]
    returncode: int
    stderr: str


def _check_one(argv: list[str], root: Path, prefix: list[str]) -> GcloudCheck:
    assert REAL_GCLOUD is not None
    config = tempfile.mkdtemp(dir=root)
    try:
        result = subprocess.run(
            [*prefix, REAL_GCLOUD, *argv[1:]],
            cwd=REPO,
            env=offline_env(config),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return GcloudCheck(argv, -1, "timed out after 60 s")
    return GcloudCheck(argv, result.returncode, result.stderr)


OPTIONAL_SETTINGS = {
    "SVIX_SERVER_URL": "https://svix.example.test/x,y",
    "SVIX_APP_ID": "app_1",
    "ALERT_EMAIL": "oncall@example.com",
    "NOTIFICATION_CHANNEL": "12345",
    "BUILD_SERVICE_ACCOUNT": f"builder@{PROJECT}.iam.gserviceaccount.com",
}
# The dry run takes every resource for absent; a run against the fake gcloud that finds them all
# takes the other branches (updates, the etag, policies replaced).
OFFLINE_RUNS = [(trigger, mode) for mode in ("dry run", "all exist") for trigger in TRIGGERS]


def _offline_key(argv: list[str]) -> tuple[str, ...]:
    """Lines that differ only in which existing file they name fail the same way offline: gcloud
    reads a file when it parses the arguments (a missing one is a usage error), and what is in it
    only after the credentials it does not have."""
    return tuple(
        f"{a.partition('=')[0]}=<a file>"
        if a.startswith("--") and "-from-file=" in a and Path(a.partition("=")[2]).is_file()
        else a
        for a in argv
    )


def _shape(argv: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A command's words and flag names: lines of one shape differ in values only."""
    words = tuple(a for a in argv[:6] if re.fullmatch(r"[a-z][a-z0-9-]*", a))
    return words, tuple(sorted(a.partition("=")[0] for a in argv if a.startswith("--")))


def _lines_of_a_run_where_all_exist(tmp: Path, trigger: str) -> list[list[str]]:
    """The gcloud lines of a real run against the fake gcloud, every file argument pointing at a
    copy of what deploy.sh wrote (it removes its own files when it ends)."""
    bin_dir = tmp / "fakebin"
    bin_dir.mkdir()
    (bin_dir / "gcloud").write_text(f"#!{sys.executable}\n{FAKE_GCLOUD}")
    (bin_dir / "gcloud").chmod(0o755)
    fake = FakeGcloud(bin_dir, tmp / "gcloud-calls.jsonl")
    settings = {"SVIX_AUTH_TOKEN": TOKEN, **OPTIONAL_SETTINGS}
    result = real_run(tmp, fake, [f"--trigger={trigger}"], exists=True, **settings)
    assert result.returncode == 0, result.stderr
    lines = []
    for n, call in enumerate(fake.calls()):
        argv = ["gcloud", *call["argv"]]
        for flag, text in call.get("files", {}).items():
            kept = tmp / f"kept-{n}{flag}.json"
            kept.write_text(text)
            argv = [f"{flag}={kept}" if a.startswith(f"{flag}=") else a for a in argv]
        lines.append(argv)
    return lines


@pytest.fixture(scope="module")
def offline_checks(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[dict[tuple[str, str], list[list[str]]], dict[tuple[str, ...], GcloudCheck], list[str]]:
    """Dry-runs both triggers (with every optional setting) and runs them against a fake gcloud
    that finds everything, then runs each distinct gcloud line once against the real gcloud, in
    parallel; of the second kind only the lines of a shape the dry runs do not print."""
    if REAL_GCLOUD is None:
        pytest.skip("gcloud is not installed: the offline gcloud checks need it")
    lines: dict[tuple[str, str], list[list[str]]] = {}
    for trigger in TRIGGERS:
        tmp = tmp_path_factory.mktemp(f"dry-run-{trigger}")
        bin_dir = tmp / "fakebin"
        bin_dir.mkdir()
        (bin_dir / "gcloud").write_text(f"#!{sys.executable}\n{FAKE_GCLOUD}")
        (bin_dir / "gcloud").chmod(0o755)
        fake = FakeGcloud(bin_dir, tmp / "gcloud-calls.jsonl")
        result = dry_run(tmp, fake, trigger, **OPTIONAL_SETTINGS)
        lines[(trigger, "dry run")] = printed_commands(result.stdout)
    dry_shapes = {_shape(c) for cs in lines.values() for c in cs}
    for trigger in TRIGGERS:
        tmp = tmp_path_factory.mktemp(f"all-exist-{trigger}")
        found = _lines_of_a_run_where_all_exist(tmp, trigger)
        # One line of each shape: these differ from their dry-run siblings in values only.
        shapes = {_shape(c): c for c in found if _shape(c) not in dry_shapes}
        lines[(trigger, "all exist")] = list(shapes.values())
    distinct = {_offline_key(c): c for cs in lines.values() for c in cs}
    root = tmp_path_factory.mktemp("gcloud-configs")
    prefix = _no_network_prefix()
    with ThreadPoolExecutor(max_workers=max(4, min(8, 2 * (os.cpu_count() or 2)))) as pool:
        checks = list(pool.map(lambda c: _check_one(c, root, prefix), distinct.values()))
    return lines, {_offline_key(c.argv): c for c in checks}, prefix


def _problem(check: GcloudCheck) -> str | None:
    """None when gcloud accepted the arguments and stopped for lack of credentials only."""
    words = re.match(r"ERROR: \((gcloud[\w.-]*)\) ", check.stderr)
    usage = [m for m in USAGE_MARKERS if m in check.stderr]
    if check.returncode == 2 or usage:
        return f"usage error (exit {check.returncode}, {usage})"
    if check.returncode != 1 or words is None or AUTH_ERROR not in check.stderr:
        return f"not the no-credentials error (exit {check.returncode})"
    if "$ gcloud auth login" not in check.stderr:
        return "no `gcloud auth login` hint"
    # The error names the command gcloud resolved: it must be the command of the line.
    path = words.group(1).split(".")
    if check.argv[: len(path)] != path or len(path) < 3:
        return f"resolved to {words.group(1)}"
    return None


@needs_gcloud
@pytest.mark.timeout(900)  # some 70 gcloud start-ups of about 1 s of CPU each, on a shared machine
@pytest.mark.parametrize(("trigger", "mode"), OFFLINE_RUNS)
def test_every_gcloud_line_parses_offline(
    offline_checks: tuple[
        dict[tuple[str, str], list[list[str]]], dict[tuple[str, ...], GcloudCheck], list[str]
    ],
    trigger: str,
    mode: str,
) -> None:
    lines, checks, prefix = offline_checks
    cmds = lines[(trigger, mode)]
    if mode == "dry run":
        assert len(cmds) >= 60
        expected: tuple[tuple[str, ...], ...] = (
            ("functions", "deploy"),
            ("secrets", "versions", "add"),
            ("alpha", "monitoring", "policies", "create"),
            ("beta", "monitoring", "channels", "create"),
            ("logging", "metrics", "create"),
            ("run", "jobs", "deploy"),
            ("run", "jobs", "add-iam-policy-binding"),
            ("scheduler", "jobs", "create", "http"),
            ("monitoring", "dashboards", "list"),
            ("monitoring", "dashboards", "create"),
        )
    else:
        expected = (
            ("alpha", "monitoring", "policies", "update"),
            ("monitoring", "dashboards", "update"),
            ("scheduler", "jobs", "update", "http"),
            ("logging", "metrics", "update"),
            ("pubsub", "subscriptions", "update"),
        )
    for words in expected:
        assert find(cmds, *words), words
    problems = []
    for argv in cmds:
        check = checks[_offline_key(argv)]
        problem = _problem(check)
        if problem:
            tail = "\n    ".join(check.stderr.strip().splitlines()[:4])
            problems.append(f"{shlex.join(argv)}\n  -> {problem}\n    {tail}")
    isolation = "no network namespace" if prefix else "dead proxy"
    assert not problems, (
        f"{len(problems)} of {len(cmds)} gcloud lines ({trigger}, {mode}, {isolation}) "
        "did not fail for lack of credentials only:\n" + "\n".join(problems)
    )


@needs_gcloud
def test_offline_check_tells_usage_errors_from_auth_errors(tmp_path: Path) -> None:
    """The check above would catch a wrong flag, a bad choice and a missing file."""
    prefix = _no_network_prefix()
    good = ["gcloud", "pubsub", "topics", "describe", "t1", f"--project={PROJECT}"]
    bad = [
        [*good, "--bogus-flag"],
        ["gcloud", "pubsub", "topics", "frobnicate", "t1", f"--project={PROJECT}"],
        ["gcloud", "pubsub", "topics", "create", "t1", "--labels", f"--project={PROJECT}"],
        [
            "gcloud",
            "alpha",
            "monitoring",
            "policies",
            "create",
            f"--policy-from-file={tmp_path / 'missing.json'}",
            f"--project={PROJECT}",
        ],
        ["gcloud", "pubsub", "topics", f"--project={PROJECT}"],
    ]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda c: _check_one(c, tmp_path, prefix), [good, *bad]))
    assert _problem(results[0]) is None, results[0].stderr
    for check in results[1:]:
        assert _problem(check) is not None, shlex.join(check.argv)
