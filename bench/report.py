"""The verdicts against the project's targets, the printed table and the JSON file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Target:
    name: str
    text: str  # how the target reads in the table
    value: float | None
    limit: float
    higher_is_better: bool

    @property
    def verdict(self) -> str:
        if self.value is None:
            return "n/a"
        ok = self.value >= self.limit if self.higher_is_better else self.value <= self.limit
        return "PASS" if ok else "FAIL"

    def as_json(self) -> dict[str, Any]:
        return {"target": self.text, "value": self.value, "verdict": self.verdict}


def _get(results: dict[str, Any], *path: str) -> Any:
    value: Any = results
    for part in path:
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def targets(results: dict[str, Any]) -> list[Target]:
    out: list[Target] = []
    if "throughput" in results:
        relay = _get(results, "throughput", "relay", "ok_per_second")
        floor = _get(results, "throughput", "floor", "ok_per_second")
        out.append(Target("throughput", "relay/floor >= 0.90", _ratio(relay, floor), 0.9, True))
    if "cpu" in results:
        out.append(
            Target("cpu", "relay/hello CPU <= 2.00", _get(results, "cpu", "ratio"), 2.0, False)
        )
        # Issue 14: all the relay does, for no more CPU than a bare forwarder.
        relay_cpu = _get(results, "cpu", "relay_cpu_seconds_per_1000")
        forward_cpu = _get(results, "cpu", "forward_cpu_seconds_per_1000")
        out.append(
            Target(
                "cpu_forward",
                "relay/forward CPU <= 1.00",
                _ratio(relay_cpu, forward_cpu),
                1.0,
                False,
            )
        )
    if "batch" in results:
        out.append(
            Target("batch", "batch/single <= 5.0", _get(results, "batch", "ratio"), 5.0, False)
        )
    for case in _get(results, "ratelimit", "cases") or []:
        label = case["label"]
        out += [
            Target(
                f"ratelimit_delivered[{label}]",
                "delivered/R >= 0.90",
                case["delivered_share_of_limit"],
                0.9,
                True,
            ),
            Target(
                f"ratelimit_429s[{label}]",
                "Svix 429s per delivered <= 0.10",
                case["svix_429_per_delivered"],
                0.1,
                False,
            ),
            Target(
                f"ratelimit_lost_or_duplicated[{label}]",
                "lost + duplicated = 0",
                case["lost"] + case["duplicated"],
                0,
                False,
            ),
        ]
    if "coldstart" in results:
        # Issue 14: against a bare hello-world, no longer one that imports svix.
        out.append(
            Target(
                "coldstart",
                "relay/hello <= 1.60",
                _get(results, "coldstart", "ratio_to_hello"),
                1.6,
                False,
            )
        )
    return out


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _row(*cells: Any) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _figure(label: str, relay: Any, baseline: Any, ratio: Any = "") -> str:
    """A row under a scenario's first one: a figure beside its baseline, judged by no target."""
    return _row("", label, relay, baseline, ratio, "", "")


def render(results: dict[str, Any], config: dict[str, Any]) -> str:
    verdicts = {t.name: t for t in targets(results)}

    def judged(name: str) -> tuple[str, str]:
        target = verdicts.get(name)
        return (target.text, target.verdict) if target else ("", "")

    lines = [
        f"Relay benchmark: C={config['clients']} clients, T={_fmt(config['seconds'])} s, "
        f"Svix latency {_fmt(config['latency_ms'])} ms, gunicorn THREADS={config['threads']}, "
        f"RELAY_MAX_IN_FLIGHT={config['max_in_flight']}, rate limit R={_fmt(config['rate'])}/s",
        "",
        _row("Scenario", "Figure", "Relay", "Baseline", "Ratio", "Target", "Result"),
        _row(*["---"] * 7),
    ]
    throughput = results.get("throughput")
    if throughput:
        relay, floor = throughput["relay"], throughput["floor"]
        lines.append(
            _row(
                "1 throughput",
                "events/s (floor: SDK direct)",
                _fmt(relay["ok_per_second"]),
                _fmt(floor["ok_per_second"]),
                _fmt(_ratio(relay["ok_per_second"], floor["ok_per_second"]), 2),
                *judged("throughput"),
            )
        )
        for q in ("p50_ms", "p99_ms"):
            lines.append(
                _figure(
                    f"{q[:3]} latency ms",
                    _fmt(relay[q]),
                    _fmt(floor[q]),
                    _fmt(_ratio(relay[q], floor[q]), 2),
                )
            )
        lines.append(
            _figure(
                "load generator CPU (cores)",
                _fmt(relay["load_generator_cpu_share_of_core"], 2),
                _fmt(floor["load_generator_cpu_share_of_core"], 2),
            )
        )
        lines.append(
            _figure(
                "other processes' CPU (cores)",
                _fmt(relay["other_processes_cpu_cores"], 2),
                _fmt(floor["other_processes_cpu_cores"], 2),
            )
        )
        lines.append(
            _figure(
                "non-200 answers / errors",
                _fmt(relay["completed"] - relay["ok"]),
                _fmt(floor["completed"] - floor["ok"]),
            )
        )
    cpu = results.get("cpu")
    if cpu:
        lines.append(
            _row(
                "2 CPU",
                "CPU s per 1,000 (baseline: hello-world)",
                _fmt(cpu["relay_cpu_seconds_per_1000"], 3),
                _fmt(cpu["hello_cpu_seconds_per_1000"], 3),
                _fmt(cpu["ratio"], 2),
                *judged("cpu"),
            )
        )
        lines.append(
            _figure(
                "requests/s during the window",
                _fmt(cpu["relay"]["ok_per_second"]),
                _fmt(cpu["hello"]["ok_per_second"]),
            )
        )
        lines.append(
            _figure(
                "server tree CPU (cores)",
                _fmt(cpu["relay"]["server_cpu_seconds"] / cpu["relay"]["window_seconds"], 2),
                _fmt(cpu["hello"]["server_cpu_seconds"] / cpu["hello"]["window_seconds"], 2),
            )
        )
        if cpu.get("forward_cpu_seconds_per_1000"):
            forward = cpu["forward_cpu_seconds_per_1000"]
            lines.append(
                _row(
                    "",
                    "CPU s per 1,000 (reference: one bare http.client call to Svix per request)",
                    _fmt(cpu["relay_cpu_seconds_per_1000"], 3),
                    _fmt(forward, 3),
                    _fmt(cpu["relay_cpu_seconds_per_1000"] / forward, 2),
                    *judged("cpu_forward"),
                )
            )
        if cpu.get("forward_cpu_seconds_per_1000") and cpu.get("lean_cpu_seconds_per_1000"):
            # Not judged: where the relay stands between a bare call and the least a relay does.
            lean = cpu["lean_cpu_seconds_per_1000"]
            lines.append(
                _figure(
                    "CPU s per 1,000 (reference: the least a relay does, no checks)",
                    _fmt(cpu["relay_cpu_seconds_per_1000"], 3),
                    _fmt(lean, 3),
                    _fmt(cpu["relay_cpu_seconds_per_1000"] / lean, 2),
                )
            )
            lines.append(
                _figure(
                    "the least a relay does, against the bare http.client call",
                    _fmt(lean, 3),
                    _fmt(cpu["forward_cpu_seconds_per_1000"], 3),
                    _fmt(lean / cpu["forward_cpu_seconds_per_1000"], 2),
                )
            )
        floor_client = _get(results, "throughput", "floor")
        if floor_client and floor_client.get("ok"):
            per_1000 = floor_client["load_generator_cpu_seconds"] / floor_client["ok"] * 1000
            lines.append(
                _figure(
                    "svix SDK client CPU s per 1,000 (the floor's own process)",
                    "",
                    _fmt(per_1000, 3),
                )
            )
    batch = results.get("batch")
    if batch:
        lines.append(
            _row(
                "3 batch",
                f"{batch['batch_size']}-event request ms (baseline: 1 event)",
                _fmt(batch["batch_ms_median"]),
                _fmt(batch["single_ms_median"]),
                _fmt(batch["ratio"], 2),
                *judged("batch"),
            )
        )
    cold = results.get("coldstart")
    if cold:
        lines.append(
            _row(
                "5 cold start",
                "start to first 200 ms (baseline: hello-world)",
                _fmt(cold["relay"]["first_answer_ms_median"]),
                _fmt(cold["hello"]["first_answer_ms_median"]),
                _fmt(cold["ratio_to_hello"], 2),
                *judged("coldstart"),
            )
        )
        lines.append(
            _figure(
                "fastest start to first 200 ms (baseline: hello-world)",
                _fmt(cold["relay"]["first_answer_ms_min"]),
                _fmt(cold["hello"]["first_answer_ms_min"]),
                _fmt(cold.get("ratio_to_hello_of_minimums"), 2),
            )
        )
        lines.append(
            _figure(
                "start to first 200 ms (baseline: hello+svix)",
                _fmt(cold["relay"]["first_answer_ms_median"]),
                _fmt(cold["hello_svix"]["first_answer_ms_median"]),
                _fmt(cold["ratio_to_hello_svix"], 2),
            )
        )
        lines.append(
            _figure(
                "start to listening ms (relay / hello+svix)",
                _fmt(cold["relay"]["listening_ms_median"]),
                _fmt(cold["hello_svix"]["listening_ms_median"]),
            )
        )
        imports = cold["imports"]
        lines += [
            "",
            f"Import time of `import main`: {_fmt(imports['import_main_ms'])} ms "
            "(cumulative; nested packages also count in their importer's figure)",
            "",
            _row("Module", "Cumulative ms", "First imported by"),
            _row("---", "---", "---"),
        ]
        packages = imports["packages_cumulative_us"]
        importers = imports["package_first_imported_by"]
        shown = [(k, v) for k, v in packages.items() if k != "relay"][:15]
        for name, us in shown:
            lines.append(_row(name, _fmt(us / 1000), importers.get(name, "")))
        for name, us in imports["relay_modules_cumulative_us"].items():
            lines.append(
                _row(
                    name,
                    _fmt(us / 1000),
                    f"self {_fmt(imports['relay_modules_self_us'].get(name, 0) / 1000)} ms",
                )
            )
    limit = results.get("ratelimit")
    if limit and limit["cases"]:
        lines += ["", *_ratelimit_table(limit, verdicts)]
    prof = results.get("profile")
    if prof and prof.get("samples"):
        lines += [
            "",
            f"Profile of the relay's worker (py-spy --gil, {prof['samples']} samples, "
            f"{_fmt(prof['per_second_while_profiled'])} events/s while profiled; raw stacks in "
            f"{prof['raw']}): share of Python CPU",
            "",
            _row("Charged to (innermost known package)", "%"),
            _row("---", "---"),
            *(_row(k, _fmt(v)) for k, v in prof["by_package_percent"].items()),
            "",
            _row("Relay / svix function (inclusive)", "%"),
            _row("---", "---"),
            *(
                _row(k, _fmt(v))
                for k, v in list(prof["relay_and_svix_functions_inclusive_percent"].items())[:20]
            ),
        ]
    elif prof:
        lines += ["", f"Profile: {prof.get('error', 'no samples')}"]
    noise = [
        _get(results, *path, "other_processes_cpu_cores")
        for path in (("throughput", "relay"), ("throughput", "floor"), ("cpu", "hello"))
    ] + [case["other_processes_cpu_cores"] for case in (limit or {}).get("cases", [])]
    seen = [n for n in noise if n is not None]
    if seen:
        lines += [
            "",
            f"Other processes used up to {max(seen):.2f} of the machine's cores during the "
            "timed windows" + (" (noisy: figures may be low)." if max(seen) > 0.2 else "."),
        ]
    return "\n".join(lines)


def _ratelimit_table(limit: dict[str, Any], verdicts: dict[str, Target]) -> list[str]:
    rate = limit["rate_limit_per_second"]
    lines = [
        f"4 rate limit: Svix allows R={_fmt(rate)}/s per token; instances share the token; "
        f"{_fmt(limit['seconds'])} s windows after a {_fmt(limit['warmup_seconds'])} s warm-up; "
        "push retry pubsub: 10 s, with RELAY_TIME_BUDGET_SECONDS="
        f"{_fmt(limit['pubsub_time_budget_seconds'])}",
        "",
        _row(
            "Bucket",
            "Retry-After",
            "Instances",
            "Push retry",
            "Delivered/s",
            "/R",
            "Svix 429s per delivered",
            "from cold",
            "Lost / dup",
            "Relay 200 / 429 / 503",
            "Other CPU",
            "Result",
        ),
        _row(*["---"] * 12),
    ]
    for case in limit["cases"]:
        label = case["label"]
        names = ("ratelimit_delivered", "ratelimit_429s", "ratelimit_lost_or_duplicated")
        judged = [
            verdicts[f"{name}[{label}]"].verdict for name in names if f"{name}[{label}]" in verdicts
        ]
        spec = case["case"]
        answers = case["relay_answers"]
        bucket = spec["bucket"]
        lines.append(
            _row(
                "R" if bucket == rate else f"R/{rate / bucket:g}",
                spec["retry_after"],
                spec["instances"],
                spec["push_retry"],
                _fmt(case["delivered_per_second"]),
                _fmt(case["delivered_share_of_limit"], 2),
                _fmt(case["svix_429_per_delivered"], 3),
                _fmt(case["whole_run_svix_429_per_delivered"], 3),
                f"{case['lost']} / {case['duplicated']}",
                " / ".join(str(answers.get(s, 0)) for s in ("200", "429", "503")),
                _fmt(case["other_processes_cpu_cores"], 2),
                "FAIL" if "FAIL" in judged else "PASS",
            )
        )
    return lines


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    temporary.replace(path)
