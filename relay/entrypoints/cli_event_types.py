"""`python -m relay event-types sync [--dry-run]`: publish the event catalogue to Svix, so that
customers find every Gigs event type in the App Portal with a description, a group, a schema and
an example. It prints one line per type, then the counts:

    + name  created                        ~ name  description, schemas (the fields that differ)
    ! name  archived in Svix, kept archived ? name  only in Svix: left alone
    = name  (unchanged, with --verbose)

Exit status 0 when Svix is in sync or was brought in sync, 2 on any error (a bad catalogue or
spec, Svix unreachable or refusing); a run stopped half-way is finished by running it again.
Stdout is the diff alone; warnings and errors go to stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from relay.bootstrap import build_event_type_store
from relay.operations.catalogue import (
    DEFAULT_CATALOGUE,
    CatalogueError,
    can_check_schemas,
    load_catalogue,
    load_spec,
)
from relay.operations.event_types import Action, apply, plan, wanted_types

if TYPE_CHECKING:
    from relay.settings import Settings

COMMAND = "event-types"
SPEC_VARIABLE = "RELAY_EVENT_SPEC"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    event_types = commands.add_parser(
        COMMAND,
        help="publish the event catalogue (catalogue/event-types.toml) to Svix",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = event_types.add_subparsers(dest="event_types_command", required=True)
    sync = actions.add_parser(
        "sync",
        help="create and update Svix's event types from the catalogue",
        description="Create the catalogue's event types Svix lacks and update those whose "
        "description, group, deprecation, schemas or (when the catalogue says) archived state "
        "differ. A type archived in Svix stays archived unless the catalogue says "
        "`archived = false`; types only in Svix are listed, never touched.",
    )
    sync.add_argument("--dry-run", action="store_true", help="print the diff; change nothing")
    sync.add_argument(
        "--catalogue",
        type=Path,
        default=DEFAULT_CATALOGUE,
        help="the catalogue file; examples are read from examples/ beside it "
        "(default: catalogue/event-types.toml)",
    )
    sync.add_argument(
        "--spec",
        type=Path,
        help=f"the Gigs event spec (JSON Schema) each type's schema is built from "
        f"(default: ${SPEC_VARIABLE})",
    )
    # SUPPRESS: `python -m relay --verbose event-types sync` keeps working too.
    sync.add_argument(
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,
        help="also list unchanged types",
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    catalogue = load_catalogue(args.catalogue)
    spec_path = _spec_path(args.spec)
    spec = load_spec(spec_path)
    if not can_check_schemas():
        _warn("jsonschema is not installed (requirements-dev.txt): schemas and examples unchecked")
    wanted = wanted_types(catalogue, spec, spec_path=spec_path)
    store = build_event_type_store(settings)
    try:
        sync_plan = plan(wanted, store.list_all())
        planned = iter(sync_plan.types) if args.dry_run else apply(sync_plan, store)
        for planned_type in planned:
            if planned_type.action is not Action.UNCHANGED or args.verbose:
                print(planned_type.diff_line(), flush=True)
            for field in planned_type.not_kept:
                _warn(
                    f"Svix did not keep the {field} of {planned_type.name} as sent: every sync "
                    "will set it again"
                )
    finally:
        store.close()
    print(sync_plan.summary())
    if args.dry_run:
        print("dry run: nothing was changed in Svix")
    elif not sync_plan.changes:
        print("Svix is in sync with the catalogue")
    return 0


def _warn(text: str) -> None:
    print(f"warning: {text}", file=sys.stderr, flush=True)


def _spec_path(given: Path | None) -> Path:
    if given is not None:
        return given
    from_environment = os.environ.get(SPEC_VARIABLE)
    if from_environment:
        return Path(from_environment)
    raise CatalogueError(
        "each event type's schema is built from the Gigs event spec: give --spec FILE or set "
        f"{SPEC_VARIABLE}"
    )
