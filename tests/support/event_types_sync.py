"""What the tests of `python -m relay event-types sync` share: a small event spec, the command
run as the on-call runs it, and what the emulator holds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from relay.operations.catalogue import catalogue_names
from tests.support import ROOT, run_python

CATALOGUE_NAMES = sorted(catalogue_names())
# A spec of our own, shaped like the Gigs event spec, so that these tests run without ../shared.
SMALL_SPEC: dict[str, Any] = {
    "type": "object",
    "title": "event",
    "properties": {
        "object": {"type": "string", "const": "event"},
        "id": {"type": "string"},
        "data": {"type": "object"},
        "type": {"type": "string"},
    },
    "required": ["object", "id", "data", "type"],
}


def write_spec(folder: Path, spec: object = SMALL_SPEC) -> Path:
    path = folder / "spec.json"
    path.write_text(json.dumps(spec))
    return path


def copy_catalogue(folder: Path) -> Path:
    """The repository's catalogue and examples, copied to be edited."""
    shutil.copytree(ROOT / "catalogue", folder / "catalogue")
    return folder / "catalogue" / "event-types.toml"


def sync(env: dict[str, str], *args: str) -> tuple[int, list[str], str]:
    """Exit status, stdout's lines and stderr of one sync."""
    done = run_python(["-m", "relay", "event-types", "sync", *args], env)
    return done.returncode, done.stdout.splitlines(), done.stderr


def summary(created: int = 0, updated: int = 0, unchanged: int = 0) -> str:
    return (
        f"event types: {created} created, {updated} updated, {unchanged} unchanged, "
        "0 kept archived, 0 only in Svix"
    )


def created_lines(names: list[str]) -> list[str]:
    return [f"+ {name}  created" for name in names]


def held(svix: Any) -> dict[str, dict[str, Any]]:
    """The event types in the emulator, by name, archived ones and schemas included."""
    return {t["name"]: t for t in svix.event_types()}
