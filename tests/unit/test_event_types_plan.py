"""The sync's plan and its application, against a store in memory: what is created, updated,
kept archived or left alone, and that nothing is called for what is in sync."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pytest

from relay.core.errors import SvixEventTypeError
from relay.operations.catalogue import Catalogue, CatalogueEntry
from relay.operations.event_types import Action, apply, plan, wanted_types
from relay.svix.event_types import Field, SvixEventType

SCHEMAS = {"1": {"type": "object", "title": "user.created"}}


def wanted(name: str = "user.created", **changes: Any) -> SvixEventType:
    fields: dict[str, Any] = {
        "name": name,
        "description": "A user was created.",
        "group": "user",
        "deprecated": False,
        "archived": None,
        "schemas": SCHEMAS,
    }
    return SvixEventType(**{**fields, **changes})


def held(name: str = "user.created", **changes: Any) -> SvixEventType:
    return wanted(name, **{"archived": False, **changes})


class FakeStore:
    """Svix's event types in memory; records every call that would change something."""

    def __init__(self, types: list[SvixEventType], *, fail_on: str | None = None) -> None:
        self.types = {t.name: t for t in types}
        self.created: list[SvixEventType] = []
        self.updated: list[tuple[str, dict[Field, object]]] = []
        self.appears_meanwhile: SvixEventType | None = None
        self.fail_on = fail_on

    def list_all(self) -> list[SvixEventType]:
        return list(self.types.values())

    def create(self, type_in: SvixEventType) -> bool:
        if type_in.name == self.fail_on:
            raise SvixEventTypeError(f"Svix refused to create event type {type_in.name} (500)")
        if self.appears_meanwhile is not None and self.appears_meanwhile.name == type_in.name:
            self.types[type_in.name] = self.appears_meanwhile
            return False
        self.created.append(type_in)
        self.types[type_in.name] = replace(type_in, archived=bool(type_in.archived))
        return True

    def update(self, name: str, changes: Mapping[Field, object]) -> None:
        self.updated.append((name, dict(changes)))
        self.types[name] = replace(self.types[name], **changes)  # type: ignore[arg-type]


def sync(store: FakeStore, *types: SvixEventType) -> list[str]:
    done = list(apply(plan(types, store.list_all()), store))
    return [t.diff_line() for t in done]


def test_a_type_svix_lacks_is_created_with_every_field() -> None:
    store = FakeStore([])
    assert sync(store, wanted()) == ["+ user.created  created"]
    assert store.created == [wanted()]
    assert store.updated == []


def test_a_type_in_sync_costs_no_call() -> None:
    store = FakeStore([held()])
    assert sync(store, wanted()) == ["= user.created"]
    assert store.created == [] and store.updated == []


def test_only_the_fields_that_differ_are_updated() -> None:
    store = FakeStore([held(description="Old words.", schemas=None)])
    assert sync(store, wanted()) == ["~ user.created  description, schemas"]
    assert store.updated == [
        ("user.created", {"description": "A user was created.", "schemas": SCHEMAS})
    ]


def test_a_second_sync_changes_nothing() -> None:
    store = FakeStore([held(group=None), held("user.deleted", deprecated=True)])
    first = sync(store, wanted(), wanted("user.deleted"), wanted("user.updated"))
    assert first == [
        "~ user.created  group",
        "~ user.deleted  deprecated",
        "+ user.updated  created",
    ]
    calls = (len(store.created), len(store.updated))
    assert sync(store, wanted(), wanted("user.deleted"), wanted("user.updated")) == [
        "= user.created",
        "= user.deleted",
        "= user.updated",
    ]
    assert (len(store.created), len(store.updated)) == calls


def test_a_type_archived_in_svix_stays_archived_and_untouched() -> None:
    # Even with another description: someone archived it on purpose, and the catalogue is silent.
    store = FakeStore([held(archived=True, description="Old words.")])
    assert sync(store, wanted()) == ["! user.created  archived in Svix, kept archived"]
    assert store.created == [] and store.updated == []
    assert store.types["user.created"].archived is True


def test_archived_false_in_the_catalogue_unarchives() -> None:
    store = FakeStore([held(archived=True)])
    assert sync(store, wanted(archived=False)) == ["~ user.created  archived"]
    assert store.updated == [("user.created", {"archived": False})]


def test_archived_true_in_the_catalogue_archives() -> None:
    store = FakeStore([held()])
    assert sync(store, wanted(archived=True)) == ["~ user.created  archived"]
    assert store.updated == [("user.created", {"archived": True})]


def test_archived_true_keeps_an_archived_type_up_to_date() -> None:
    store = FakeStore([held(archived=True, description="Old words.")])
    assert sync(store, wanted(archived=True)) == ["~ user.created  description"]
    assert store.updated == [("user.created", {"description": "A user was created."})]


def test_a_new_type_archived_in_the_catalogue_is_created_archived() -> None:
    store = FakeStore([])
    assert sync(store, wanted(archived=True)) == ["+ user.created  created (archived)"]
    assert store.created[0].archived is True


def test_a_type_only_in_svix_is_listed_and_never_touched() -> None:
    only_in_svix = held("sim.swapped", description="Bare, created by the relay.", group="sim")
    store = FakeStore([only_in_svix])
    assert sync(store, wanted()) == [
        "? sim.swapped  only in Svix: left alone",
        "+ user.created  created",
    ]
    assert store.updated == [] and store.types["sim.swapped"] == only_in_svix


def test_a_type_created_since_the_listing_is_made_the_catalogues() -> None:
    # The relay creates the types it meets bare; one may appear between listing and creating.
    store = FakeStore([])
    sync_plan = plan([wanted()], store.list_all())
    store.appears_meanwhile = held(description="Bare.", group=None, schemas=None)
    assert [t.action for t in apply(sync_plan, store)] == [Action.CREATE]
    assert store.updated == [
        (
            "user.created",
            {
                "description": "A user was created.",
                "group": "user",
                "deprecated": False,
                "schemas": SCHEMAS,
            },
        )
    ]
    assert store.types["user.created"] == held()


def test_a_failure_stops_the_sync_with_what_is_done_reported() -> None:
    store = FakeStore([], fail_on="user.deleted")
    progress = apply(plan([wanted(), wanted("user.deleted")], []), store)
    assert next(progress).name == "user.created"
    with pytest.raises(SvixEventTypeError, match=r"user\.deleted"):
        next(progress)
    assert [t.name for t in store.created] == ["user.created"]


def test_the_summary_counts_each_kind() -> None:
    current = [held(), held("a.b", archived=True), held("z.z"), held("user.updated", group="x")]
    types = [wanted(), wanted("a.b"), wanted("new.one"), wanted("user.updated")]
    summary = plan(types, current).summary()
    assert summary == (
        "event types: 1 created, 1 updated, 1 unchanged, 1 kept archived, 1 only in Svix"
    )


def test_the_plan_is_in_name_order() -> None:
    names = [t.name for t in plan([wanted("b.b"), wanted("a.a")], [held("c.c")]).types]
    assert names == ["a.a", "b.b", "c.c"]


def test_wanted_types_carry_the_catalogues_archived_word_and_schemas() -> None:
    spec = {"type": "object", "properties": {"type": {"type": "string"}}}
    entries = (
        CatalogueEntry("user.created", "A user was created.", "user", None, False),
        CatalogueEntry("user.deleted", "A user was deleted.", "user", False, True),
    )
    first, second = wanted_types(Catalogue(path=None, entries=entries), spec)  # type: ignore[arg-type]
    assert (first.archived, second.archived, second.deprecated) == (None, False, True)
    assert first.schemas is not None
    assert first.schemas["1"]["properties"]["type"]["const"] == "user.created"
