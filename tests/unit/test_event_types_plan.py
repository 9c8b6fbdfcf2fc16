"""The sync's plan and its application, against a store in memory: what is created, updated,
kept archived or left alone, and that nothing is called for what is in sync."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from relay.core.errors import SvixEventTypeError
from relay.operations.catalogue import Catalogue, CatalogueEntry, CatalogueError
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

    def __init__(
        self, types: list[SvixEventType], *, fail_on: str | None = None, keeps_groups: bool = True
    ) -> None:
        self.types = {t.name: t for t in types}
        self.created: list[SvixEventType] = []
        self.updated: list[tuple[str, dict[Field, object]]] = []
        self.appears_meanwhile: SvixEventType | None = None
        self.vanishes_meanwhile: str | None = None
        self.fail_on = fail_on
        self.keeps_groups = keeps_groups  # False: as a Svix without groups

    def list_all(self) -> list[SvixEventType]:
        return list(self.types.values())

    def create(self, type_in: SvixEventType) -> SvixEventType | None:
        if type_in.name == self.fail_on:
            raise SvixEventTypeError(f"Svix refused to create event type {type_in.name} (500)")
        if self.appears_meanwhile is not None and self.appears_meanwhile.name == type_in.name:
            self.types[type_in.name] = self.appears_meanwhile
            return None
        self.created.append(type_in)
        self.types[type_in.name] = self._kept(replace(type_in, archived=bool(type_in.archived)))
        return self.types[type_in.name]

    def update(self, name: str, changes: Mapping[Field, object]) -> SvixEventType | None:
        self.updated.append((name, dict(changes)))
        if name == self.vanishes_meanwhile:
            del self.types[name]
            return None
        self.types[name] = self._kept(replace(self.types[name], **changes))  # type: ignore[arg-type]
        return self.types[name]

    def _kept(self, event_type: SvixEventType) -> SvixEventType:
        return event_type if self.keeps_groups else replace(event_type, group=None)


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
    catalogue = Catalogue(Path("catalogue/event-types.toml"), entries)
    first, second = wanted_types(catalogue, spec, spec_path=Path("spec.json"))
    assert (first.archived, second.archived, second.deprecated) == (None, False, True)
    assert first.schemas is not None
    assert first.schemas["1"]["properties"]["type"]["const"] == "user.created"


def fingerprinted(schema: dict[str, Any], fingerprint: str) -> dict[str, Any]:
    return {"1": {**schema, "$comment": fingerprint}}


def test_schemas_svix_gives_back_in_another_form_are_no_change() -> None:
    sent = fingerprinted({"type": "object", "examples": [{"id": "evt_1"}]}, "fp-1")
    reshaped = fingerprinted({"$schema": "draft-07", "type": "object", "example": {}}, "fp-1")
    store = FakeStore([held(schemas=reshaped)])
    assert sync(store, wanted(schemas=sent)) == ["= user.created"]
    assert store.updated == []


def test_schemas_with_another_fingerprint_are_updated() -> None:
    store = FakeStore([held(schemas=fingerprinted({"type": "object"}, "fp-0"))])
    sent = fingerprinted({"type": "object"}, "fp-1")
    assert sync(store, wanted(schemas=sent)) == ["~ user.created  schemas"]
    # Without any fingerprint in Svix's copy, only equal schemas are no change.
    store = FakeStore([held(schemas={"1": {"type": "object"}})])
    assert sync(store, wanted(schemas=sent)) == ["~ user.created  schemas"]


def test_a_type_gone_from_svix_before_its_update_is_created() -> None:
    store = FakeStore([held(description="Old words."), held("user.deleted", description="Old.")])
    sync_plan = plan([wanted(), wanted("user.deleted")], store.list_all())
    store.vanishes_meanwhile = "user.created"
    done = list(apply(sync_plan, store))
    assert [t.diff_line() for t in done] == [
        "+ user.created  created",
        "~ user.deleted  description",
    ]
    assert store.created == [wanted()]
    assert store.types["user.created"] == held()


def test_a_field_svix_does_not_keep_as_sent_is_reported() -> None:
    store = FakeStore([held(description="Old words.")], keeps_groups=False)
    done = list(apply(plan([wanted(), wanted("user.deleted")], store.list_all()), store))
    # user.created: the group was not sent (only the description differed), so nothing to say.
    assert [(t.name, t.not_kept) for t in done] == [
        ("user.created", ()),
        ("user.deleted", ("group",)),
    ]


def test_wanted_types_refuse_a_schema_that_is_no_json_schema() -> None:
    spec = {"type": "object", "properties": {"type": {"type": "string"}}, "required": "type"}
    entries = (CatalogueEntry("user.created", "A user was created.", "user", None, False),)
    catalogue = Catalogue(Path("catalogue/event-types.toml"), entries)
    with pytest.raises(
        CatalogueError,
        match=r"spec\.json: the schema built for user\.created is "
        r"not a JSON Schema draft 7, which Svix refuses \(required: ",
    ):
        wanted_types(catalogue, spec, spec_path=Path("spec.json"))
