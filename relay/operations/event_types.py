"""`event-types sync`: bring Svix's event types in line with the catalogue, and say what changed.

The plan is pure: what Svix holds (archived types included) against what the catalogue wants.
Then it is applied one type at a time, so that a run that stops half-way (Svix down, a refusal)
leaves every type either as it was or as wanted, and the next run does the rest.

The rules:
- a type only in the catalogue is created; one whose description, group, deprecation, schemas
  or (when the catalogue says) archived state differ is updated, those fields only;
- a type archived in Svix stays archived and untouched unless the catalogue says `archived`:
  someone archived it on purpose, and Svix refuses new messages of it (`archived = false`
  unarchives it, `archived = true` keeps it archived and up to date);
- a type only in Svix is never touched, only listed: the relay itself creates the types it
  meets outside the catalogue;
- the plan is only as fresh as the listing: a create answered 409 (made meanwhile) becomes an
  update, an update answered 404 (expunged meanwhile) a create.

Schemas compare by the fingerprint each carries (catalogue.build_schemas) when they are not
equal: Svix may give one back in another form than sent, and that must not be a change each run.
A field Svix does not keep as sent is reported once written, for every run would set it again.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from relay.core.errors import SvixEventTypeError
from relay.operations.catalogue import (
    EXAMPLES_FOLDER,
    FINGERPRINT_KEY,
    Catalogue,
    build_schemas,
    can_check_schemas,
    check_schema,
)
from relay.svix.event_types import FIELDS, Field, SvixEventType


class EventTypeStore(Protocol):
    """Svix's event types for the whole environment (not per application). Every call raises a
    RelayError subclass when Svix cannot answer or refuses."""

    def list_all(self) -> list[SvixEventType]:
        """Every event type, archived ones included, with schemas."""
        ...

    def create(self, wanted: SvixEventType) -> SvixEventType | None:
        """Create it; the type as Svix then holds it, or None when a type of that name exists
        already (made since the listing)."""
        ...

    def update(self, name: str, changes: Mapping[Field, object]) -> SvixEventType | None:
        """Change the given fields only; the others (feature flags too) stay as they are. The
        type as Svix then holds it, or None when Svix has none of that name (expunged)."""
        ...


class Action(enum.Enum):
    CREATE = "created"
    UPDATE = "updated"
    UNCHANGED = "unchanged"
    KEPT_ARCHIVED = "kept archived"
    ONLY_IN_SVIX = "only in Svix"


@dataclass(frozen=True)
class PlannedType:
    name: str
    action: Action
    wanted: SvixEventType | None = None  # for CREATE and UPDATE
    changed: tuple[Field, ...] = ()  # for UPDATE
    # Once applied: the fields written that Svix's answer does not hold as sent.
    not_kept: tuple[Field, ...] = ()

    def diff_line(self) -> str:
        """How the sync prints this type: the same line for a dry run and a real one."""
        if self.action is Action.CREATE:
            archived = " (archived)" if self.wanted is not None and self.wanted.archived else ""
            return f"+ {self.name}  created{archived}"
        if self.action is Action.UPDATE:
            return f"~ {self.name}  {', '.join(self.changed)}"
        if self.action is Action.KEPT_ARCHIVED:
            return f"! {self.name}  archived in Svix, kept archived"
        if self.action is Action.ONLY_IN_SVIX:
            return f"? {self.name}  only in Svix: left alone"
        return f"= {self.name}"


@dataclass(frozen=True)
class Plan:
    types: tuple[PlannedType, ...]  # sorted by name

    @property
    def changes(self) -> tuple[PlannedType, ...]:
        return tuple(t for t in self.types if t.action in (Action.CREATE, Action.UPDATE))

    def counts(self) -> dict[Action, int]:
        counted = Counter(t.action for t in self.types)
        return {action: counted.get(action, 0) for action in Action}

    def summary(self) -> str:
        counts = self.counts()
        return "event types: " + ", ".join(f"{counts[action]} {action.value}" for action in Action)


def wanted_types(
    catalogue: Catalogue, spec: Mapping[str, Any], *, spec_path: Path
) -> list[SvixEventType]:
    """What the catalogue asks of Svix, schemas built from the Gigs event spec (read from
    `spec_path`) and checked, where jsonschema is installed (can_check_schemas)."""
    checked = can_check_schemas()
    wanted: list[SvixEventType] = []
    for entry in catalogue.entries:
        schemas = build_schemas(entry, spec)
        if checked:
            example_path = catalogue.path.parent / EXAMPLES_FOLDER / f"{entry.name}.json"
            for schema in schemas.values():
                check_schema(entry, schema, spec_path=spec_path, example_path=example_path)
        wanted.append(
            SvixEventType(
                name=entry.name,
                description=entry.description,
                group=entry.group,
                deprecated=entry.deprecated,
                archived=entry.archived,
                schemas=schemas,
            )
        )
    return wanted


def plan(wanted: Iterable[SvixEventType], current: Iterable[SvixEventType]) -> Plan:
    """What to do with each type the catalogue wants or Svix holds, in name order."""
    held = {t.name: t for t in current}
    wanted_by_name = {t.name: t for t in wanted}
    planned: list[PlannedType] = []
    for name in sorted(wanted_by_name.keys() | held.keys()):
        want, have = wanted_by_name.get(name), held.get(name)
        if want is None:
            planned.append(PlannedType(name, Action.ONLY_IN_SVIX))
        elif have is None:
            planned.append(PlannedType(name, Action.CREATE, want))
        elif have.archived and want.archived is None:
            planned.append(PlannedType(name, Action.KEPT_ARCHIVED))
        else:
            changed = tuple(f for f in _managed(want) if _differs(f, want.value(f), have.value(f)))
            action = Action.UPDATE if changed else Action.UNCHANGED
            planned.append(PlannedType(name, action, want, changed))
    return Plan(tuple(planned))


def apply(sync_plan: Plan, store: EventTypeStore) -> Iterator[PlannedType]:
    """Carry out the plan in name order, yielding each type once it is done (changed or not), so
    that the caller can report as it goes and a failure stops with what is done known."""
    for planned in sync_plan.types:
        if planned.action is Action.CREATE:
            yield _create(planned, store)
        elif planned.action is Action.UPDATE:
            yield _update(planned, store)
        else:
            yield planned


def _create(planned: PlannedType, store: EventTypeStore) -> PlannedType:
    wanted = planned.wanted
    assert wanted is not None
    sent = _managed(wanted)
    answer = store.create(wanted)
    if answer is None:
        # Made since the listing (an instance with an older catalogue creates the types it
        # meets, bare): make it the catalogue's. Archived state as the catalogue says.
        answer = store.update(planned.name, {f: wanted.value(f) for f in sent})
        if answer is None:
            raise SvixEventTypeError(
                f"event type {planned.name} came and went in Svix during the sync: run it again"
            )
    return replace(planned, not_kept=_not_kept(wanted, answer, sent))


def _update(planned: PlannedType, store: EventTypeStore) -> PlannedType:
    wanted = planned.wanted
    assert wanted is not None
    answer = store.update(planned.name, {f: wanted.value(f) for f in planned.changed})
    if answer is None:
        # Expunged since the listing: the catalogue still lists it, so Svix now lacks it.
        return _create(replace(planned, action=Action.CREATE, changed=()), store)
    return replace(planned, not_kept=_not_kept(wanted, answer, planned.changed))


def _not_kept(
    wanted: SvixEventType, answer: SvixEventType, sent: Iterable[Field]
) -> tuple[Field, ...]:
    return tuple(
        f
        for f in sent
        # A write's answer may leave the schemas out; that says nothing of what Svix keeps.
        if not (f == "schemas" and answer.schemas is None)
        and _differs(f, wanted.value(f), answer.value(f))
    )


def _managed(wanted: SvixEventType) -> tuple[Field, ...]:
    """The fields the catalogue decides for this type: `archived` only when it says."""
    return FIELDS if wanted.archived is not None else tuple(f for f in FIELDS if f != "archived")


def _differs(field: Field, wanted: object, held: object) -> bool:
    # Equal JSON is no change, whatever the key order.
    if wanted == held:
        return False
    if field == "schemas" and isinstance(wanted, Mapping) and isinstance(held, Mapping):
        # Another form of the schemas sent (a `$schema` added, an example moved) is no change
        # either: each version still carries the fingerprint of the one built.
        return wanted.keys() != held.keys() or not all(
            _same_fingerprint(wanted[version], held[version]) for version in wanted
        )
    return True


def _same_fingerprint(wanted: object, held: object) -> bool:
    if not isinstance(wanted, Mapping) or not isinstance(held, Mapping):
        return False
    fingerprint = wanted.get(FINGERPRINT_KEY)
    return isinstance(fingerprint, str) and held.get(FINGERPRINT_KEY) == fingerprint
