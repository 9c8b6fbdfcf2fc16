"""What deploy.sh sets up to watch the relay, checked offline, and the daily reconcile job.

The dashboard, alert policies and logs-based metrics deploy.sh renders from monitoring/*.json are
validated (jsonschema) against JSON Schemas generated, at test time, from the API definitions that
gcloud itself carries: the apitools message classes of monitoring v1 (Dashboard), monitoring v3
(AlertPolicy) and logging v2 (LogMetric), which gcloud generates from the APIs' discovery
documents. Unknown fields, misspelt enum values (aligners, reducers, comparisons, plot types) and
wrong JSON types fail; what only the live API knows (whether a filter's metric has data, oneof
rules, label cardinality) cannot be checked here, so the tests below add what can: every metric a
chart or alert names is one deploy.sh creates or a GCP metric whose kind and labels are listed
here, and each aggregation suits its metric's kind.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from reconcile_job import reconcile_arguments
from tests.support import ROOT, own_events, push_envelope, run_python, unique_name
from tests.support.deploy import (
    FAKE_GCLOUD,
    TRIGGERS,
    FakeGcloud,
    dry_run,
    find,
    flags,
    printed_commands,
)

MONITORING = ROOT / "monitoring"
TEMPLATES = sorted(p.name for p in MONITORING.glob("*.json"))
API_MESSAGES = {
    "Dashboard": "googlecloudsdk.generated_clients.apis.monitoring.v1.monitoring_v1_messages",
    "AlertPolicy": "googlecloudsdk.generated_clients.apis.monitoring.v3.monitoring_v3_messages",
    "LogMetric": "googlecloudsdk.generated_clients.apis.logging.v2.logging_v2_messages",
}

# GCP's own metrics the dashboard and alerts use: monitored resource, kind, value type, labels.
GCP_METRICS: dict[str, tuple[str, str, str, set[str]]] = {
    "pubsub.googleapis.com/subscription/num_undelivered_messages": (
        "pubsub_subscription", "GAUGE", "INT64", set()
    ),
    "pubsub.googleapis.com/subscription/oldest_unacked_message_age": (
        "pubsub_subscription", "GAUGE", "INT64", set()
    ),
    "run.googleapis.com/container/instance_count": (
        "cloud_run_revision", "GAUGE", "INT64", {"state"}
    ),
    "run.googleapis.com/job/completed_execution_count": (
        "cloud_run_job", "DELTA", "INT64", {"result"}
    ),
    "logging.googleapis.com/log_entry_count": ("", "DELTA", "INT64", {"severity", "log"}),
}  # fmt: skip

# Turns apitools message classes into JSON Schema; run with gcloud's own Python and libraries.
SCHEMA_GENERATOR = r"""
import importlib, json, sys
from apitools.base.protorpclite import messages
from apitools.base.py import encoding, extra_types

ANY = (extra_types.JsonValue, extra_types.JsonObject, extra_types.JsonArray)
INT64 = (messages.Variant.INT64, messages.Variant.UINT64, messages.Variant.SINT64)


def schema_for(root):
    defs = {}

    def ref(cls):
        name = cls.__module__.rsplit(".", 1)[-1] + "." + cls.__qualname__
        if name not in defs:
            defs[name] = None
            defs[name] = message(cls)
        return {"$ref": "#/$defs/" + name}

    def field(f):
        if isinstance(f, messages.EnumField):
            s = {"enum": sorted(f.type.names())}
        elif isinstance(f, messages.MessageField):
            s = {} if f.message_type in ANY else ref(f.message_type)
        elif isinstance(f, messages.BooleanField):
            s = {"type": "boolean"}
        elif isinstance(f, messages.IntegerField):
            # int64 travels as a JSON string or number; int32 as a number.
            s = {"type": "integer"}
            if f.variant in INT64:
                s = {"type": ["integer", "string"], "pattern": "^-?[0-9]+$"}
        elif isinstance(f, messages.FloatField):
            s = {"type": "number"}
        else:
            s = {"type": "string"}
        return {"type": "array", "items": s} if f.repeated else s

    def message(cls):
        fields = {f.name: f for f in cls.all_fields()}
        if set(fields) == {"additionalProperties"}:  # a map
            value = fields["additionalProperties"].message_type.field_by_name("value")
            return {"type": "object", "additionalProperties": field(value)}
        properties = {
            (encoding.GetCustomJsonFieldMapping(cls, python_name=name) or name): field(f)
            for name, f in fields.items()
        }
        return {"type": "object", "properties": properties, "additionalProperties": False}

    top = ref(root)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **top, "$defs": defs}


out = {}
for name, module in json.load(sys.stdin).items():
    out[name] = schema_for(getattr(importlib.import_module(module), name))
json.dump(out, sys.stdout)
"""


def _gcloud_python() -> tuple[str, Path] | None:
    """gcloud's Python and its SDK root, where gcloud is installed."""
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        return None
    sdk = Path(gcloud).resolve().parent.parent
    if not (sdk / "lib" / "googlecloudsdk").is_dir():
        return None
    bundled = sdk / "platform" / "bundledpythonunix" / "bin" / "python3"
    python = os.environ.get("CLOUDSDK_PYTHON") or (str(bundled) if bundled.exists() else None)
    return (python or sys.executable), sdk


@pytest.fixture(scope="module")
def api_schemas() -> dict[str, Any]:
    found = _gcloud_python()
    if found is None:
        pytest.skip("gcloud is not installed: the API schemas come from its API definitions")
    python, sdk = found
    result = subprocess.run(
        [python, "-c", SCHEMA_GENERATOR],
        input=json.dumps(API_MESSAGES),
        env={**os.environ, "PYTHONPATH": f"{sdk / 'lib'}{os.pathsep}{sdk / 'lib' / 'third_party'}"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    schemas: dict[str, Any] = json.loads(result.stdout)
    return schemas


def schema_errors(schema: dict[str, Any], document: Any) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema)
    return [
        f"{'/'.join(str(p) for p in error.absolute_path)}: {error.message[:160]}"
        for error in sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    ]


# --- what deploy.sh renders ----------------------------------------------------------------------


def rendered_deployment(tmp: Path, trigger: str, **settings: str) -> dict[str, Any]:
    """Dry-runs deploy.sh and returns its commands and the files it rendered, by template name."""
    bin_dir = tmp / "fakebin"
    bin_dir.mkdir()
    (bin_dir / "gcloud").write_text(f"#!{sys.executable}\n{FAKE_GCLOUD}")
    (bin_dir / "gcloud").chmod(0o755)
    result = dry_run(tmp, FakeGcloud(bin_dir, tmp / "calls.jsonl"), trigger, **settings)
    cmds = printed_commands(result.stdout)
    files = {}
    for argv in cmds:
        for key, value in flags(argv).items():
            if key.endswith("-from-file"):
                files[Path(value).name] = json.loads(Path(value).read_text())
    return {"cmds": cmds, "files": files}


@pytest.fixture(scope="module")
def deployments(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    return {
        trigger: rendered_deployment(
            tmp_path_factory.mktemp(f"monitoring-{trigger}"),
            trigger,
            ALERT_EMAIL="oncall@example.com",
        )
        for trigger in TRIGGERS
    }


KIND_OF_FILE = {"dashboard.json": "Dashboard", "alert-": "AlertPolicy", "metric-": "LogMetric"}


def api_type(template: str) -> str:
    return next(kind for prefix, kind in KIND_OF_FILE.items() if template.startswith(prefix))


def test_every_template_is_rendered_and_sent(deployments: dict[str, dict[str, Any]]) -> None:
    assert TEMPLATES, "no monitoring/*.json"
    for deployment in deployments.values():
        assert sorted(deployment["files"]) == TEMPLATES


def test_templates_name_only_settings_deploy_sh_fills_in() -> None:
    script = (ROOT / "deploy.sh").read_text()
    known: set[str] = set()
    for array in ("TEMPLATE_NUMBERS", "TEMPLATE_NAMES"):
        body = re.search(rf"^{array}=\(([^)]*)\)", script, re.M)
        assert body, array
        known |= set(body.group(1).split())
    for template in TEMPLATES:
        text = (MONITORING / template).read_text()
        document = json.loads(text)  # the templates themselves are JSON
        assert set(re.findall(r"\$\{([A-Z_]+)\}", text)) <= known, template
        # deploy.sh finds a resource by the first displayName in its file: its own.
        if "displayName" in document:
            own = f'"displayName": "{document["displayName"]}"'
            assert text.index('"displayName"') == text.index(own), template


@pytest.mark.parametrize("trigger", TRIGGERS)
def test_rendered_files_match_the_api_schemas(
    api_schemas: dict[str, Any], deployments: dict[str, dict[str, Any]], trigger: str
) -> None:
    problems = {
        name: errors
        for name, document in deployments[trigger]["files"].items()
        if (errors := schema_errors(api_schemas[api_type(name)], document))
    }
    assert problems == {}


def _aggregation(dashboard: dict[str, Any], tile: int) -> dict[str, Any]:
    chart = dashboard["mosaicLayout"]["tiles"][tile]["widget"]["xyChart"]
    aggregation: dict[str, Any] = chart["dataSets"][0]["timeSeriesQuery"]["timeSeriesFilter"][
        "aggregation"
    ]
    return aggregation


def _condition(policy: dict[str, Any]) -> dict[str, Any]:
    condition: dict[str, Any] = policy["conditions"][0]["conditionThreshold"]
    return condition


@pytest.mark.parametrize(
    ("template", "mistake", "expected"),
    [
        ("dashboard.json", lambda d: d["mosaicLayout"]["tiles"][1].update(widgets=[]), "widgets"),
        ("dashboard.json", lambda d: _aggregation(d, 1).update(perSeriesAligner="P99"), "P99"),
        ("dashboard.json", lambda d: _aggregation(d, 3).update(crossSeriesReducer="P_99"), "P_99"),
        ("dashboard.json", lambda d: _aggregation(d, 1).update(alignmentPeriod=60), "60"),
        ("dashboard.json", lambda d: d["mosaicLayout"].update(columns="48"), "48"),
        ("alert-publish-lag.json", lambda d: _condition(d).update(comparison="GT"), "GT"),
        ("alert-publish-lag.json", lambda d: d.update(channels=[]), "channels"),
        ("metric-publish-lag.json", lambda d: d["metricDescriptor"].update(valueType="X"), "X"),
    ],
)  # fmt: skip
def test_the_schema_check_catches_mistakes(
    api_schemas: dict[str, Any],
    deployments: dict[str, dict[str, Any]],
    template: str,
    mistake: Any,
    expected: str,
) -> None:
    document = copy.deepcopy(deployments["http"]["files"][template])
    assert schema_errors(api_schemas[api_type(template)], document) == []
    mistake(document)
    errors = schema_errors(api_schemas[api_type(template)], document)
    assert errors and any(expected in e for e in errors), errors


# --- the metrics charts and alerts name ----------------------------------------------------------


def created_metrics(deployment: dict[str, Any]) -> dict[str, tuple[str, str, str, set[str]]]:
    """The logs-based metrics deploy.sh creates: type -> (resource, kind, value type, labels)."""
    metrics = {}
    for argv in find(deployment["cmds"], "logging", "metrics", "create"):
        f = flags(argv)
        if "--config-from-file" in f:
            config = deployment["files"][Path(f["--config-from-file"]).name]
            log_filter = config["filter"]
            descriptor = config["metricDescriptor"]
            kind, value = descriptor["metricKind"], descriptor["valueType"]
            labels = {label["key"] for label in descriptor.get("labels", [])}
            assert labels == set(config.get("labelExtractors", {})), argv[4]
        else:
            log_filter, kind, value, labels = f["--log-filter"], "DELTA", "INT64", set()
        resource = re.search(r'resource\.type="([^"]+)"', log_filter)
        assert resource, f"{argv[4]}: a log filter without a resource type"
        metrics[f"logging.googleapis.com/user/{argv[4]}"] = (resource.group(1), kind, value, labels)
    return metrics


def queries(deployment: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """Every (file, filter, aggregation) of the dashboard's charts and the alert conditions."""
    found = []
    for name, document in deployment["files"].items():
        if name == "dashboard.json":
            for tile in document["mosaicLayout"]["tiles"]:
                for data_set in tile["widget"].get("xyChart", {}).get("dataSets", []):
                    query = data_set["timeSeriesQuery"]["timeSeriesFilter"]
                    found.append((name, query["filter"], query["aggregation"]))
        elif name.startswith("alert-"):
            for condition in document["conditions"]:
                threshold = condition["conditionThreshold"]
                for aggregation in threshold["aggregations"]:
                    found.append((name, threshold["filter"], aggregation))
    return found


def _filter_value(text: str, key: str) -> str | None:
    match = re.search(rf'\b{re.escape(key)}\s*=\s*"([^"]*)"', text)
    return match.group(1) if match else None


@pytest.mark.parametrize("trigger", TRIGGERS)
def test_every_chart_and_alert_names_a_metric_that_exists_on_its_resource(
    deployments: dict[str, dict[str, Any]], trigger: str
) -> None:
    deployment = deployments[trigger]
    known = {**GCP_METRICS, **created_metrics(deployment)}
    for name, text, aggregation in queries(deployment):
        metric = _filter_value(text, "metric.type")
        assert metric in known, f"{name}: {metric} is neither created by deploy.sh nor listed"
        resource, kind, value, labels = known[metric]
        if resource:  # "" for a metric every monitored resource has
            assert _filter_value(text, "resource.type") == resource, f"{name}: {metric}"
        used = set(re.findall(r"metric\.labels?\.(\w+)", text))
        used |= {g.rsplit(".", 1)[1] for g in aggregation.get("groupByFields", [])}
        assert used <= labels, f"{name}: {metric} has no label {used - labels}"
        aligner = aggregation["perSeriesAligner"]
        reducer = aggregation.get("crossSeriesReducer", "REDUCE_NONE")
        if kind == "GAUGE":
            assert aligner not in {"ALIGN_DELTA", "ALIGN_RATE"}, f"{name}: {aligner} on a gauge"
        if value == "DISTRIBUTION":
            assert aligner == "ALIGN_DELTA" and reducer.startswith("REDUCE_PERCENTILE_"), name
        else:
            assert not reducer.startswith("REDUCE_PERCENTILE_") or kind == "GAUGE", name
        period = int(aggregation["alignmentPeriod"].removesuffix("s"))
        assert period >= 60, f"{name}: {period} s is below Cloud Monitoring's 60 s sampling"


@pytest.mark.parametrize("trigger", TRIGGERS)
def test_the_dashboard_shows_what_on_call_needs(
    deployments: dict[str, dict[str, Any]], trigger: str
) -> None:
    deployment = deployments[trigger]
    dashboard = deployment["files"]["dashboard.json"]
    source_id = _source_subscription(deployment, trigger)
    charts = {
        tile["widget"]["title"]: [
            (d["timeSeriesQuery"]["timeSeriesFilter"], d.get("legendTemplate"))
            for d in tile["widget"]["xyChart"]["dataSets"]
        ]
        for tile in dashboard["mosaicLayout"]["tiles"]
        if "xyChart" in tile["widget"]
    }

    def chart(metric: str, *, unfiltered: str = "", **where: str) -> list[tuple[Any, Any]]:
        """The one chart of the metric whose queries all have `where` (and not `unfiltered`)."""
        found = [
            data_sets
            for data_sets in charts.values()
            if all(f'metric.type="{metric}"' in q["filter"] for q, _ in data_sets)
            and all(f'{k}="{v}"' in q["filter"] for q, _ in data_sets for k, v in where.items())
            and not (unfiltered and any(unfiltered in q["filter"] for q, _ in data_sets))
        ]
        assert len(found) == 1, (metric, where, list(charts))
        return found[0]

    user = "logging.googleapis.com/user/gigs-svix-relay"
    ((delivered, _),) = chart(f"{user}-events", **{"metric.label.outcome": "delivered"})
    assert delivered["aggregation"]["groupByFields"] == ["metric.label.event_type"]
    assert delivered["aggregation"]["alignmentPeriod"] == "60s"  # per minute
    outcomes = chart(f"{user}-events", unfiltered="metric.label.outcome")
    assert [q["aggregation"]["groupByFields"] for q, _ in outcomes] == [["metric.label.outcome"]]
    lag = chart(f"{user}-publish-lag")
    assert [(q["aggregation"]["crossSeriesReducer"], legend) for q, legend in lag] == [
        ("REDUCE_PERCENTILE_50", "p50"),
        ("REDUCE_PERCENTILE_99", "p99"),
    ]
    pubsub = "pubsub.googleapis.com/subscription"
    where = {"resource.label.subscription_id": source_id}
    chart(f"{pubsub}/num_undelivered_messages", **where)
    chart(f"{pubsub}/oldest_unacked_message_age", **where)
    dead = {"resource.label.subscription_id": "gigs-events-svix-relay-dead-letter-sub"}
    chart(f"{pubsub}/num_undelivered_messages", **dead)
    ((instances, _),) = chart(
        "run.googleapis.com/container/instance_count",
        **{"resource.label.service_name": "gigs-svix-relay"},
    )
    assert instances["aggregation"]["groupByFields"] == ["metric.label.state"]

    # The tiles fit the 48-column grid without overlapping.
    assert dashboard["mosaicLayout"]["columns"] == 48
    cells: set[tuple[int, int]] = set()
    for tile in dashboard["mosaicLayout"]["tiles"]:
        x, y, w, h = (tile.get(k, 0) for k in ("xPos", "yPos", "width", "height"))
        assert w > 0 and h > 0 and x + w <= 48, tile["widget"]["title"]
        area = {(i, j) for i in range(x, x + w) for j in range(y, y + h)}
        assert not cells & area, f"{tile['widget']['title']} overlaps another tile"
        cells |= area


def _source_subscription(deployment: dict[str, Any], trigger: str) -> str:
    """The id of the subscription that feeds the function, as deploy.sh's dry run names it."""
    if trigger == "http":
        return "gigs-events-svix-relay"
    (update,) = [
        c
        for c in find(deployment["cmds"], "pubsub", "subscriptions", "update")
        if "--dead-letter-topic" in flags(c)
    ]
    return update[4].rsplit("/", 1)[1]


def test_the_lag_metric_and_its_alert(tmp_path: Path) -> None:
    deployment = rendered_deployment(tmp_path, "http", LAG_ALERT_P99_MS="15000")
    metric = deployment["files"]["metric-publish-lag.json"]
    assert metric["valueExtractor"] == "EXTRACT(jsonPayload.publish_lag_ms)"
    assert metric["labelExtractors"] == {"event_type": "EXTRACT(jsonPayload.event_type)"}
    assert 'resource.labels.service_name="gigs-svix-relay"' in metric["filter"]
    assert 'jsonPayload.outcome="delivered"' in metric["filter"]
    assert (metric["metricDescriptor"]["valueType"], metric["metricDescriptor"]["unit"]) == (
        "DISTRIBUTION",
        "ms",
    )
    buckets = metric["bucketOptions"]["exponentialBuckets"]
    # From 10 ms to past the two hours Pub/Sub retries for, each bucket at most 25 % wide.
    top = buckets["scale"] * buckets["growthFactor"] ** buckets["numFiniteBuckets"]
    assert buckets["scale"] <= 10 and top >= 2 * 3600 * 1000 and buckets["growthFactor"] <= 1.25
    assert buckets["numFiniteBuckets"] <= 200

    alert = deployment["files"]["alert-publish-lag.json"]
    condition = alert["conditions"][0]["conditionThreshold"]
    assert "logging.googleapis.com/user/gigs-svix-relay-publish-lag" in condition["filter"]
    assert condition["aggregations"] == [
        {
            "alignmentPeriod": "300s",
            "perSeriesAligner": "ALIGN_DELTA",
            "crossSeriesReducer": "REDUCE_PERCENTILE_99",
        }
    ]
    assert (condition["comparison"], condition["thresholdValue"]) == ("COMPARISON_GT", 15000)
    assert condition["duration"] == "600s"
    thresholds = [
        t["value"]
        for tile in deployment["files"]["dashboard.json"]["mosaicLayout"]["tiles"]
        for t in tile["widget"].get("xyChart", {}).get("thresholds", [])
    ]
    assert 15000 in thresholds


def test_the_reconcile_alerts(deployments: dict[str, dict[str, Any]]) -> None:
    files = deployments["http"]["files"]
    missing = files["alert-reconcile-missing.json"]["conditions"]
    assert [c["conditionThreshold"]["filter"] for c in missing] == [
        'metric.type = "logging.googleapis.com/user/gigs-svix-relay-reconcile-missing"'
        ' AND resource.type = "cloud_run_job"'
    ]
    failed = [c["conditionThreshold"] for c in files["alert-reconcile-failed.json"]["conditions"]]
    assert 'resource.labels.job_name = "gigs-svix-relay-reconcile"' in failed[0]["filter"]
    assert 'metric.labels.result = "failed"' in failed[0]["filter"]
    assert 'resource.labels.job_id = "gigs-svix-relay-reconcile-daily"' in failed[1]["filter"]
    for condition in [*failed, missing[0]["conditionThreshold"]]:
        assert (condition["comparison"], condition["thresholdValue"]) == ("COMPARISON_GT", 0)


# --- the daily reconcile job ---------------------------------------------------------------------


def test_the_job_reconciles_the_previous_utc_day() -> None:
    ledger = "projects/p/subscriptions/gigs-events-ledger"
    now = datetime(2026, 11, 28, 3, 30, tzinfo=UTC)
    assert reconcile_arguments(now, {"RECONCILE_SUBSCRIPTION": ledger}) == [
        "--log-format=json",
        "reconcile",
        f"--subscription={ledger}",
        "--since=2026-11-27T00:00:00+00:00",
        "--until=2026-11-28T00:00:00+00:00",
        "--grace-minutes=180.0",
    ]
    # At 01:30 on the 28th three hours ahead of UTC, the 27th has not ended in UTC: the 26th it is.
    ahead = datetime(2026, 11, 28, 1, 30, tzinfo=timezone(timedelta(hours=3)))
    assert reconcile_arguments(ahead, {"RECONCILE_SUBSCRIPTION": ledger})[3:5] == [
        "--since=2026-11-26T00:00:00+00:00",
        "--until=2026-11-27T00:00:00+00:00",
    ]
    chosen = reconcile_arguments(
        now,
        {
            "RECONCILE_SUBSCRIPTION": ledger,
            "RECONCILE_DAY": "2026-11-20",
            "RECONCILE_GRACE_MINUTES": "30",
        },
    )
    assert chosen[3:] == [
        "--since=2026-11-20T00:00:00+00:00",
        "--until=2026-11-21T00:00:00+00:00",
        "--grace-minutes=30.0",
    ]
    with pytest.raises(ValueError, match="has not ended yet"):
        reconcile_arguments(now, {"RECONCILE_SUBSCRIPTION": ledger, "RECONCILE_DAY": "2026-11-28"})
    with pytest.raises(ValueError, match="RECONCILE_SUBSCRIPTION is not set"):
        reconcile_arguments(now, {})


def run_job(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_python(["reconcile_job.py"], env)


def test_the_job_against_the_emulators(
    deployments: dict[str, dict[str, Any]], relay: Any, relay_env: dict[str, str], pubsub: Any
) -> None:
    """Yesterday's events on a ledger subscription, one of them never delivered: the job exits 0
    (it got to its report) and names the missing one; nothing is taken off the ledger; without a
    readable ledger it exits 2, "could not tell"."""
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    noon = f"{yesterday.isoformat()}T12:00:00Z"
    base = own_events()["user-created"]
    delivered = {**base, "id": "evt_job_delivered_1", "time": noon}
    never_sent = {**base, "id": "evt_job_never_sent_1", "time": noon}
    older = {**base, "id": "evt_job_older_1", "time": "2020-01-01T00:00:00Z"}
    assert relay.post("/", data=json.dumps(delivered)).status_code == 200

    topic = pubsub.create_topic(unique_name("events"))
    ledger = pubsub.create_pull_subscription(unique_name("ledger"), topic)
    pubsub.publish(topic, [(json.dumps(e).encode(), {}) for e in (delivered, never_sent, older)])
    env = {
        **relay_env,
        **pubsub.env(),
        "RECONCILE_SUBSCRIPTION": ledger,
        "RECONCILE_DAY": yesterday.isoformat(),
        # Svix stamps the messages with today's time: list them up to now.
        "RECONCILE_GRACE_MINUTES": str(_minutes_since_midnight() + 60),
    }
    result = run_job(env)
    assert result.returncode == 0, result.stdout + result.stderr
    # The line the reconcile-missing metric counts, with every field its filter names.
    (finished,) = [line for line in json_lines(result.stderr) if "reconcile_missing" in line]
    assert metric_filter_fields(deployments["http"], "reconcile-missing") <= set(finished)
    assert finished["message"] == "reconcile finished"
    assert (finished["reconcile_missing"], finished["reconcile_errors"]) == (1, 0)
    assert finished["severity"] == "ERROR"
    assert re.search(r"expected events\s+2\b", result.stdout), result.stdout
    assert re.search(r"missing in Svix\s+1\b", result.stdout), result.stdout
    assert "evt_job_never_sent_1" in result.stdout
    assert "evt_job_older_1" not in result.stdout  # another day
    left = pubsub.pull_all(ledger, quiet_seconds=0.5, timeout=20, min_messages=3)
    assert len(left) == 3

    assert relay.post("/", data=json.dumps(never_sent)).status_code == 200
    complete = run_job(env)
    assert complete.returncode == 0, complete.stdout + complete.stderr
    assert re.search(r"missing in Svix\s+0\b", complete.stdout), complete.stdout

    unreadable = run_job({**env, "RECONCILE_SUBSCRIPTION": f"{ledger}-does-not-exist"})
    assert unreadable.returncode == 2, unreadable.stdout + unreadable.stderr
    assert f"Pub/Sub pull on {ledger}-does-not-exist failed" in unreadable.stderr


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def metric_filter_fields(deployment: dict[str, Any], metric: str) -> set[str]:
    """The jsonPayload fields a logs-based metric of deploy.sh's dry run filters on or extracts."""
    (argv,) = [
        c
        for c in find(deployment["cmds"], "logging", "metrics", "create")
        if c[4] == f"gigs-svix-relay-{metric}"
    ]
    f = flags(argv)
    text = f.get("--log-filter") or json.dumps(
        deployment["files"][Path(f["--config-from-file"]).name]
    )
    return set(re.findall(r"jsonPayload\.(\w+)", text))


def test_the_relay_logs_what_the_metrics_extract(
    deployments: dict[str, dict[str, Any]], relay: Any, capsys: Any
) -> None:
    """A delivered event's line has every field the outcome and lag metrics filter on or
    extract, of the type the extractors need."""
    capsys.readouterr()
    event = own_events()["user-created"]
    response = relay.post("/", data=json.dumps(push_envelope(event)))
    assert response.status_code == 200, response.get_json()
    (line,) = [x for x in json_lines(capsys.readouterr().out) if x.get("outcome") == "delivered"]
    for metric in ("events", "publish-lag"):
        assert metric_filter_fields(deployments["http"], metric) <= set(line), metric
    assert line["event_type"] == "user.created"
    assert isinstance(line["publish_lag_ms"], int | float) and line["publish_lag_ms"] >= 0


def test_the_job_without_its_settings_could_not_tell(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SVIX_", "RECONCILE_"))}
    result = subprocess.run(
        [sys.executable, "reconcile_job.py"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "RECONCILE_SUBSCRIPTION is not set" in result.stderr


def _minutes_since_midnight() -> int:
    now = datetime.now(UTC)
    midnight = datetime.combine(now.date(), datetime.min.time(), tzinfo=UTC)
    return int((now - midnight).total_seconds() // 60) + 1
