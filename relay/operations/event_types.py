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
  meets outside the catalogue.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from relay.operations.catalogue import Catalogue, build_schemas
from relay.svix.event_types import FIELDS, Field, SvixEventType


class EventTypeStore(Protocol):
    """Svix's event types for the whole environment (not per application). Every call raises a
    RelayError subclass when Svix cannot answer or refuses."""

    def list_all(self) -> list[SvixEventType]:
        """Every event type, archived ones included, with schemas."""
        ...

    def create(self, wanted: SvixEventType) -> bool:
        """Create it; False when a type of that name exists already (made since the listing)."""
        ...

    def update(self, name: str, changes: Mapping[Field, object]) -> None:
        """Change the given fields only; the others (feature flags too) stay as they are."""
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


def wanted_types(catalogue: Catalogue, spec: Mapping[str, Any]) -> list[SvixEventType]:
    """What the catalogue asks of Svix, schemas built from the Gigs event spec."""
    return [
        SvixEventType(
            name=entry.name,
            description=entry.description,
            group=entry.group,
            deprecated=entry.deprecated,
            archived=entry.archived,
            schemas=build_schemas(entry, spec),
        )
        for entry in catalogue.entries
    ]


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
            changed = tuple(f for f in _managed(want) if _differs(want.value(f), have.value(f)))
            action = Action.UPDATE if changed else Action.UNCHANGED
            planned.append(PlannedType(name, action, want, changed))
    return Plan(tuple(planned))


def apply(sync_plan: Plan, store: EventTypeStore) -> Iterator[PlannedType]:
    """Carry out the plan in name order, yielding each type once it is done (changed or not), so
    that the caller can report as it goes and a failure stops with what is done known."""
    for planned in sync_plan.types:
        if planned.action is Action.CREATE:
            assert planned.wanted is not None
            if not store.create(planned.wanted):
                # Made since the listing (an instance with an older catalogue creates the types
                # it meets, bare): make it the catalogue's. Archived state as the catalogue says.
                wanted = planned.wanted
                store.update(planned.name, {f: wanted.value(f) for f in _managed(wanted)})
        elif planned.action is Action.UPDATE:
            assert planned.wanted is not None
            store.update(planned.name, {f: planned.wanted.value(f) for f in planned.changed})
        yield planned


def _managed(wanted: SvixEventType) -> tuple[Field, ...]:
    """The fields the catalogue decides for this type: `archived` only when it says."""
    return FIELDS if wanted.archived is not None else tuple(f for f in FIELDS if f != "archived")


def _differs(wanted: object, held: object) -> bool:
    # Svix gives the schemas back as JSON; equal JSON is no change, whatever the key order.
    return wanted != held
