"""The environment's event types in memory. Not locked here: callers hold `State.lock`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from svix_emulator.event_type_validation import EventTypeFields, EventTypeQuery


@dataclass(slots=True)
class EventType:
    name: str
    fields: EventTypeFields
    created_at: str
    updated_at: str

    def to_json(self, with_content: bool = True) -> dict[str, Any]:
        # Null fields are left out, as for messages: strict JSON Schema (where OpenAPI's
        # `nullable` means nothing) accepts an absent key but not a null.
        fields = self.fields
        out: dict[str, Any] = {
            "name": self.name,
            "description": fields.description,
            "archived": fields.archived,
            "deprecated": fields.deprecated,
        }
        if with_content and fields.schemas is not None:
            out["schemas"] = fields.schemas
        out.update(createdAt=self.created_at, updatedAt=self.updated_at)
        if fields.group_name is not None:
            out["groupName"] = fields.group_name
        if fields.feature_flags is not None:
            out["featureFlags"] = fields.feature_flags
        return out


class EventTypeCatalogue:
    """Event types by name. Archived ones stay (and can come back) until expunged."""

    def __init__(self) -> None:
        self._by_name: dict[str, EventType] = {}

    def get(self, name: str) -> EventType | None:
        return self._by_name.get(name)

    def is_archived(self, name: str) -> bool:
        """A type never created (or expunged) is not archived: Svix takes messages for it."""
        event_type = self._by_name.get(name)
        return event_type is not None and event_type.fields.archived

    def put(self, name: str, fields: EventTypeFields, now: str) -> tuple[EventType, bool]:
        """Creates the type or replaces all its fields; True when it was created."""
        existing = self._by_name.get(name)
        if existing is None:
            created = EventType(name, fields, created_at=now, updated_at=now)
            self._by_name[name] = created
            return created, True
        existing.fields = fields
        existing.updated_at = now
        return existing, False

    def patch(self, name: str, changes: dict[str, Any], now: str) -> EventType | None:
        existing = self._by_name.get(name)
        if existing is not None:
            existing.fields = dataclasses.replace(existing.fields, **changes)
            existing.updated_at = now
        return existing

    def expunge(self, name: str) -> bool:
        return self._by_name.pop(name, None) is not None

    def snapshot(self) -> list[EventType]:
        return [self._by_name[name] for name in sorted(self._by_name)]

    def page(self, query: EventTypeQuery) -> tuple[list[EventType], bool]:
        """A page in name order, and whether it is the last one in its direction.

        `iterator` is the last name already seen (go on past it), or with `backwards` the first
        one seen (go back before it), as Svix's `iterator` and `prevIterator`. Names compare by
        code point; Svix's database collation is not documented."""
        kept = sorted(
            name
            for name, event_type in self._by_name.items()
            if query.include_archived or not event_type.fields.archived
        )
        if query.descending:
            kept.reverse()
        mark = query.iterator
        if mark is None:
            ahead = kept
        elif query.backwards:
            behind = [n for n in kept if (n > mark if query.descending else n < mark)]
            names = behind[-query.limit :]
            return [self._by_name[n] for n in names], len(behind) <= query.limit
        else:
            ahead = [n for n in kept if (n < mark if query.descending else n > mark)]
        names = ahead[: query.limit]
        return [self._by_name[n] for n in names], len(ahead) <= query.limit
