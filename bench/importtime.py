"""What `import main` costs, module by module, from `python -X importtime`.

The interpreter prints one line per module when its import ends (children before parents),
nested two spaces per level: `import time: <self us> | <cumulative us> | <indent><module>`.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bench.processes import child_environment


@dataclass
class ImportNode:
    name: str
    self_us: int
    cumulative_us: int
    depth: int
    children: list[ImportNode] = field(default_factory=list)
    parent: ImportNode | None = None

    @property
    def package(self) -> str:
        return self.name.split(".", 1)[0]

    def walk(self) -> list[ImportNode]:
        out = [self]
        for child in self.children:
            out.extend(child.walk())
        return out


def parse_importtime(text: str) -> list[ImportNode]:
    """The import trees (roots in import order) of `-X importtime` output."""
    pending: list[ImportNode] = []  # finished nodes whose parent has not finished yet
    for line in text.splitlines():
        if not line.startswith("import time:"):
            continue
        parts = line[len("import time:") :].split("|", 2)
        if len(parts) != 3 or not parts[0].strip().isdigit():
            continue  # the header line
        label = parts[2][1:]  # one space follows the bar
        name = label.lstrip(" ")
        node = ImportNode(
            name=name.strip(),
            self_us=int(parts[0]),
            cumulative_us=int(parts[1]),
            depth=(len(label) - len(name)) // 2,
        )
        while pending and pending[-1].depth > node.depth:
            child = pending.pop()
            child.parent = node
            node.children.insert(0, child)
        pending.append(node)
    return pending


@dataclass
class ImportProfile:
    total_us: int  # cumulative time of `import main`
    packages: dict[str, int]  # top-level package -> cumulative us where it was first imported
    relay_modules: dict[str, int]  # relay.* module -> cumulative us
    relay_self: dict[str, int]  # relay.* module -> self us
    importers: dict[str, str]  # top-level package -> the module that first imported it

    def as_json(self) -> dict[str, object]:
        return {
            "import_main_ms": round(self.total_us / 1000, 1),
            "packages_cumulative_us": self.packages,
            "relay_modules_cumulative_us": self.relay_modules,
            "relay_modules_self_us": self.relay_self,
            "package_first_imported_by": self.importers,
        }


def profile(trees: list[ImportNode], module: str = "main") -> ImportProfile:
    """Package costs inside `module`'s import: a package's cost is the cumulative time of each
    place a module of it was imported from another package (so nested packages are also part of
    their importer's figure: cumulative times overlap)."""
    root = next((t for t in trees if t.name == module), None)
    if root is None:
        raise ValueError(f"`import {module}` is not in the -X importtime output")
    packages: dict[str, int] = defaultdict(int)
    relay_modules: dict[str, int] = {}
    relay_self: dict[str, int] = {}
    importers: dict[str, str] = {}
    for node in root.walk()[1:]:
        parent = node.parent
        if parent is None or parent is root or parent.package != node.package:
            packages[node.package] += node.cumulative_us
            importers.setdefault(node.package, (parent or root).name)
        if node.package == "relay":
            relay_modules[node.name] = node.cumulative_us
            relay_self[node.name] = node.self_us
    return ImportProfile(
        total_us=root.cumulative_us,
        packages=dict(sorted(packages.items(), key=lambda kv: -kv[1])),
        relay_modules=dict(sorted(relay_modules.items(), key=lambda kv: -kv[1])),
        relay_self=relay_self,
        importers=importers,
    )


def measure(
    cwd: Path, env: Mapping[str, str], *, module: str = "main", repeats: int = 3
) -> ImportProfile:
    """Runs `python -X importtime -c "import <module>"` `repeats` times; medians per figure."""
    runs: list[ImportProfile] = []
    for _ in range(repeats):
        completed = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", f"import {module}"],
            cwd=cwd,
            env=child_environment(env),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if completed.returncode != 0:
            tail = completed.stderr.strip().splitlines()[-3:]
            raise RuntimeError(f"`import {module}` failed: {' / '.join(tail)}")
        runs.append(profile(parse_importtime(completed.stderr), module))

    def median_of(pick: str) -> dict[str, int]:
        names = {name for run in runs for name in getattr(run, pick)}
        merged = {
            name: int(statistics.median(getattr(run, pick).get(name, 0) for run in runs))
            for name in names
        }
        return dict(sorted(merged.items(), key=lambda kv: -kv[1]))

    return ImportProfile(
        total_us=int(statistics.median(run.total_us for run in runs)),
        packages=median_of("packages"),
        relay_modules=median_of("relay_modules"),
        relay_self=median_of("relay_self"),
        importers={k: v for run in reversed(runs) for k, v in run.importers.items()},
    )
