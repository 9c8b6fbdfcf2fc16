"""The event check: it takes and refuses exactly what the pydantic model it replaced did, in the
same words, and reads the same fields out of an event.

The model is kept here, as it was, as the oracle."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from relay.core.errors import InvalidEvent
from relay.core.events import GigsEvent, event_type_name, parse_event
from tests.support import own_events

FIELD_NAMES = (
    "object",
    "id",
    "type",
    "data",
    "project",
    "source",
    "specversion",
    "time",
    "version",
    "datacontenttype",
    "previous_data",
    "actor",
)


class ModelEvent(BaseModel):
    """The pydantic model the relay validated every event with before the check."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    object: str | None = None
    id: str | None = None
    type: str = Field(min_length=1)
    data: dict[str, Any] | None = None
    project: str | None = None
    source: str | None = None
    specversion: str | None = None
    time: str | None = None
    version: str | None = None
    datacontenttype: str | None = None
    previous_data: dict[str, Any] | None = Field(default=None, alias="previousData")
    actor: dict[str, Any] | None = None

    @field_validator("type")
    @classmethod
    def _known_spelling(cls, value: str) -> str:
        return event_type_name(value)

    @field_validator("id")
    @classmethod
    def _blank_id_is_none(cls, value: str | None) -> str | None:
        return value or None


def model_verdict(raw: object) -> tuple[str, object]:
    """("event", the fields) or ("refused", the reason), as the relay's model-based check said."""
    if not isinstance(raw, dict):
        return "refused", "not an object"
    try:
        event = ModelEvent.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "event"
        if first["type"] == "missing":
            return "refused", f"event has no `{field}`"
        return "refused", f"event field `{field}` is invalid: {first['msg']}"
    return "event", {name: getattr(event, name) for name in FIELD_NAMES}


def check_verdict(raw: object) -> tuple[str, object]:
    if not isinstance(raw, dict):
        with pytest.raises(InvalidEvent, match="an event must be a JSON object"):
            parse_event(raw)
        return "refused", "not an object"
    try:
        event = parse_event(raw)
    except InvalidEvent as exc:
        return "refused", str(exc)
    return "event", {name: getattr(event, name) for name in FIELD_NAMES}


# JSON as the relay's decoder hands it over: lone surrogates included, NaN and infinities not.
ascii_texts = st.text(st.characters(max_codepoint=127), max_size=12)
texts = (
    ascii_texts
    | st.text(st.characters(codec=None), max_size=12)
    | st.sampled_from(["", "com.gigs.", "com.gigs.user.created", "\ud800", "a\udfffb", "é"])
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)


def field_values(kind: type) -> st.SearchStrategy[Any]:
    """Mostly what the field takes (null included), sometimes any JSON."""
    right = texts if kind is str else st.dictionaries(texts, json_values, max_size=2)
    return st.one_of(st.none(), right, right, json_values)


KINDS = {name: dict if name in ("data", "previous_data", "actor") else str for name in FIELD_NAMES}
OPTIONAL = {
    **{name: field_values(kind) for name, kind in KINDS.items() if name != "type"},
    "previousData": field_values(dict),
}
# The model's fields under their names and the alias, each present or not (`type` mostly
# present), and unknown fields.
known_fields = st.fixed_dictionaries({"type": field_values(str)}, optional=OPTIONAL) | (
    st.fixed_dictionaries({}, optional={"type": field_values(str), **OPTIONAL})
)
events = st.builds(
    lambda unknown, known: {**unknown, **known},
    st.dictionaries(ascii_texts | texts, json_values, max_size=3),
    known_fields,
)


@given(raw=st.one_of(events, events, events, json_values))
@example(raw={"type": ""})
@example(raw={"type": "com.gigs."})
@example(raw={"type": "\ud800", "data": 5})
@example(raw={"type": "", "actor": []})
@example(raw={"object": 1})
@example(raw={"data": 5})
@example(raw={"type": None})
@example(raw={"type": "a", "previous_data": 5})
@example(raw={"type": "a", "previousData": 5, "previous_data": {}})
@example(raw={"type": "a", "previousData": {}, "previous_data": 5})
@example(raw={"type": "a", "previousData": None, "previous_data": 5})
@example(raw={"type": "a", "id": ""})
@example(raw={"type": "a\ud800", "id": "\ud800", "project": "\udfff"})
def test_the_check_refuses_what_the_model_refused_in_its_words(raw: object) -> None:
    assert check_verdict(raw) == model_verdict(raw)


@pytest.mark.parametrize("name", sorted(own_events()))
def test_our_sample_events_read_as_the_model_read_them(name: str) -> None:
    raw = own_events()[name]
    assert check_verdict(raw) == model_verdict(raw)
    assert check_verdict(raw)[0] == "event"


def test_gigs_fixture_events_read_as_the_model_read_them() -> None:
    from tests.support import shared_path

    for path in sorted(shared_path("fixtures").rglob("*.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        for raw in document if isinstance(document, list) else [document]:
            assert check_verdict(raw) == model_verdict(raw), path.name


def test_an_event_is_read_only() -> None:
    event = parse_event({"type": "com.gigs.user.created", "id": "evt_1"})
    assert isinstance(event, GigsEvent)
    assert (event.type, event.id) == ("user.created", "evt_1")
    with pytest.raises(AttributeError):
        event.type = "other"  # type: ignore[misc]
