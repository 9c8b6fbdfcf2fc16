"""The emulator's parts in process: ids, timestamps, paging, fault parsing, idempotency waits."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from svix_emulator import api
from svix_emulator.faults import FaultConfigError, FaultState, parse_faults
from svix_emulator.ids import IdFactory, format_timestamp, parse_timestamp
from svix_emulator.state import Settings, State
from svix_emulator.store import Store
from svix_emulator.validation import ApplicationSpec, ListQuery, MessageSpec, check_message_in
from svix_emulator.wire import Reply, Request, json_reply, validation_error


def test_ids_are_svix_shaped_ordered_and_seeded() -> None:
    first = IdFactory(5)
    ids = [first.new("msg") for _ in range(100)]
    assert all(len(i) == 31 and i.startswith("msg_") and i[4:].isalnum() for i in ids)
    assert ids == sorted(ids)
    again = IdFactory(5)
    assert [again.new("msg") for _ in range(100)] == ids
    assert IdFactory(6).new("msg") != ids[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-01T00:00:00Z", datetime(2026, 1, 1, tzinfo=UTC)),
        ("2026-01-01T01:30:00.5+01:30", datetime(2026, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)),
        ("2026-01-01t00:00:00.123456789z", datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)),
        ("2026-01-01T00:00:00", None),
        ("2026-02-30T00:00:00Z", None),
        ("2026-01-01", None),
        ("2026-01-01T00:00:00+24:00", None),
    ],
)
def test_parse_timestamp(text: str, expected: datetime | None) -> None:
    assert parse_timestamp(text) == expected


def test_format_timestamp_round_trips() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    assert format_timestamp(moment) == "2026-01-02T03:04:05.678Z"
    assert parse_timestamp(format_timestamp(moment)) == moment
    assert datetime.fromisoformat(format_timestamp(moment)).tzinfo == timezone(timedelta(0))


def test_application_in_is_checked_inside_message_in() -> None:
    errors: list[dict[str, object]] = []
    body = {
        "eventType": "a",
        "payload": {},
        "application": {"name": "", "uid": "a b", "throttleRate": 0, "metadata": {"k": 1}},
    }
    assert check_message_in(body, errors) is None
    assert {tuple(e["loc"]) for e in errors} == {  # type: ignore[arg-type]
        ("body", "application", "name"),
        ("body", "application", "uid"),
        ("body", "application", "throttleRate"),
        ("body", "application", "metadata"),
    }


def _query(**fields: object) -> ListQuery:
    base: dict[str, object] = {
        "limit": 50,
        "iterator": None,
        "channel": None,
        "tag": None,
        "event_types": None,
        "before": None,
        "after": None,
        "with_content": True,
    }
    return ListQuery(**{**base, **fields})  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(
    kinds=st.lists(st.sampled_from(["a", "b", "c"]), max_size=40),
    limit=st.integers(1, 12),
    wanted=st.none() | st.frozensets(st.sampled_from(["a", "b", "c"]), min_size=1),
)
def test_paging_visits_every_message_once_newest_first(
    kinds: list[str], limit: int, wanted: frozenset[str] | None
) -> None:
    store = Store(0)
    app = store.create_app(ApplicationSpec("n", "u", None, {}))
    ids = [
        store.create_message(app, MessageSpec(k, None, {}, None, None, None, None), None).id
        for k in kinds
    ]
    expected = [i for i, k in zip(ids, kinds, strict=True) if wanted is None or k in wanted][::-1]

    seen: list[str] = []
    iterator = None
    while True:
        page, done = store.list_messages(
            app, _query(limit=limit, iterator=iterator, event_types=wanted)
        )
        assert len(page) <= limit
        seen += [m.id for m in page]
        if done:
            break
        iterator = page[-1].id
    assert seen == expected

    # And back again with prevIterator, from the oldest page towards the newest.
    if expected:
        back: list[str] = []
        iterator = f"-{expected[-1]}"
        while True:
            page, done = store.list_messages(
                app, _query(limit=limit, iterator=iterator, event_types=wanted)
            )
            back = [m.id for m in page] + back
            if done or not page:
                break
            iterator = f"-{page[0].id}"
        assert back == expected[:-1]


def test_fault_triggers_count_down_then_roll() -> None:
    state = FaultState(parse_faults({"drop_before_store": {"next": 2}}), 0)
    assert [state.drop_before_store() for _ in range(4)] == [True, True, False, False]
    never = FaultState(parse_faults({"errors": [{"status": 500, "probability": 0.0}]}), 0)
    assert never.injected_error() is None
    always = FaultState(parse_faults({"errors": [{"status": 502, "probability": 1.0}]}), 0)
    assert always.injected_error() == 502


def test_token_bucket() -> None:
    state = FaultState(parse_faults({"rate_limit": {"per_second": 10, "burst": 2}}), 0)
    assert state.rate_limited("t", 0.0) is None
    assert state.rate_limited("t", 0.0) is None
    assert state.rate_limited("t", 0.0) == pytest.approx(0.1)
    assert state.rate_limited("other", 0.0) is None
    assert state.rate_limited("t", 0.1) is None


def test_fault_config_rejects_booleans_as_numbers() -> None:
    with pytest.raises(FaultConfigError):
        parse_faults({"latency_ms": True})
    with pytest.raises(FaultConfigError):
        parse_faults([])


def _run_idempotent(state: State, compute: object, results: list[object]) -> threading.Thread:
    request = Request("POST", "/api/v1/app/x/msg", {"idempotency-key": "k"})
    thread = threading.Thread(
        target=lambda: results.append(api._idempotent(state, request, "tok", compute))  # type: ignore[arg-type]
    )
    thread.start()
    return thread


def test_waiter_proceeds_itself_when_the_first_request_fails() -> None:
    state = State(Settings())
    started, release = threading.Event(), threading.Event()

    def failing() -> tuple[Reply, None]:
        started.set()
        release.wait(10)
        return validation_error([]), None

    first: list[object] = []
    second: list[object] = []
    first_thread = _run_idempotent(state, failing, first)
    assert started.wait(10)
    second_thread = _run_idempotent(state, lambda: (json_reply(202, {"n": 2}), None), second)
    release.set()
    first_thread.join(10)
    second_thread.join(10)

    assert first[0].status == 422  # type: ignore[attr-defined]
    assert second[0] == json_reply(202, {"n": 2})
    assert state.idempotency == {("tok", "k"): json_reply(202, {"n": 2})}


def test_waiter_gives_up_after_the_wait_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "IDEMPOTENCY_WAIT_SECONDS", 0.2)
    state = State(Settings())
    started, release = threading.Event(), threading.Event()

    def stuck() -> tuple[Reply, None]:
        started.set()
        release.wait(10)
        return json_reply(202, {}), None

    first: list[object] = []
    second: list[object] = []
    first_thread = _run_idempotent(state, stuck, first)
    assert started.wait(10)
    _run_idempotent(state, lambda: (json_reply(202, {"n": 2}), None), second).join(10)
    release.set()
    first_thread.join(10)

    assert second[0].status == 500  # type: ignore[attr-defined]
    assert first[0].status == 202  # type: ignore[attr-defined]
