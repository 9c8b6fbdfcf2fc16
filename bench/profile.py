"""Where the relay's CPU goes under load: py-spy on the gunicorn worker, summarised.

py-spy runs with `--gil`, so a sample is taken only when a thread holds the GIL: the profile is
Python CPU time, not time spent waiting for Svix. Native work done without the GIL (socket
system calls) is not in it. The raw file (collapsed stacks) opens in https://www.speedscope.app.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

# Packages a sample is charged to: the innermost frame from one of these wins, so standard
# library work (json, logging, threading) counts for the package that asked for it.
PACKAGES = (
    "relay",
    "svix",
    "httpx",
    "httpcore",
    "h11",
    "pydantic",
    "pydantic_core",
    "tenacity",
    "flask",
    "werkzeug",
    "functions_framework",
    "gunicorn",
)
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def py_spy() -> str | None:
    """The py-spy beside this interpreter (the venv's), else one on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def start_recording(
    pid: int, seconds: float, output: Path, rate: int = 100
) -> subprocess.Popen[bytes]:
    executable = py_spy()
    if executable is None:
        raise FileNotFoundError("py-spy is not installed: `.venv/bin/pip install py-spy`")
    command = [
        executable, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))),
        "--rate", str(rate), "--gil", "--nonblocking", "--format", "raw", "-o", str(output),
    ]  # fmt: skip
    return subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def _package(file: str) -> str | None:
    if file == "main.py":  # the function's own module, as py-spy names it from its folder
        return "relay"
    first = file.split("/", 1)[0]
    return first if first in PACKAGES else None


def _function(frame: str) -> tuple[str, str | None]:
    """`Relay._send (relay/delivery/service.py:135)` -> (`relay/delivery/service.py:Relay._send`,
    `relay`)."""
    match = _FRAME.match(frame)
    if match is None:
        return frame, None
    file = match.group("file")
    return f"{file}:{match.group('function')}", _package(file)


def summarise(raw: Path, top: int = 15) -> dict[str, Any]:
    """Shares of the samples: by package (innermost known frame), inclusive per relay and SDK
    function, and the hottest leaf frames."""
    by_package: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rstrip().rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_function(f) for f in stack.split(";")]
        charged = next((pkg for _, pkg in reversed(frames) if pkg is not None), "other")
        by_package[charged] += count
        leaves[frames[-1][0]] += count
        for name in {name for name, pkg in frames if pkg in ("relay", "svix")}:
            inclusive[name] += count

    def shares(counter: Counter[str], limit: int | None = None) -> dict[str, float]:
        return {k: round(v / total * 100, 1) for k, v in counter.most_common(limit)}

    if total == 0:
        return {"samples": 0}
    return {
        "samples": total,
        "by_package_percent": shares(by_package),
        "relay_and_svix_functions_inclusive_percent": shares(inclusive, top * 2),
        "hottest_leaf_frames_percent": shares(leaves, top),
    }
