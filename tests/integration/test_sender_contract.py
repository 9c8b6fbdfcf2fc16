"""The svix SDK stays the contract of the direct sender, which no longer imports it: the answer
to a create is read exactly as `svix.api.MessageOut.model_validate_json` reads it (same id,
failing where the SDK fails), and sending a message loads no module of the SDK."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.svix.answers import MESSAGE_OUT_FIELDS, SVIX_SDK_VERSION, created_message_id
from relay.svix.http11 import Http11Connection
from tests.support import ROOT
from tests.support.messages import message

MESSAGE = {
    "eventType": "user.created",
    "payload": {},
    "id": "msg_2f1VdJcBGXEkH5P0yK3xWz",
    "timestamp": "2026-11-28T10:00:00.123456Z",
}


def sdk_reading(body: bytes) -> str | None:
    """The id the SDK reads from a 2xx answer, or None where it refuses the answer."""
    from svix.api import MessageOut

    try:
        return MessageOut.model_validate_json(body).id
    except ValueError:
        return None


def with_fields(**changes: Any) -> bytes:
    document = {**MESSAGE, **changes}
    return json.dumps({k: v for k, v in document.items() if v is not _GONE}).encode()


_GONE = object()

ODD_ANSWERS: dict[str, bytes] = {
    "as Svix sends it": with_fields(),
    "every optional field": with_fields(
        eventId="evt_1", channels=["a"], tags=["t"], deliverAt="2026-11-28T10:00:00Z"
    ),
    "optional fields null": with_fields(eventId=None, channels=None, tags=None, deliverAt=None),
    "extra fields": with_fields(status="ok", nested={"a": [1, 2.5, None]}, id_="x"),
    "field names in snake case": json.dumps(
        {"event_type": "t", "payload": {}, "id": "msg_1", "timestamp": "2026-11-28T10:00:00Z"}
    ).encode(),
    "alias and name both, alias wrong": with_fields(event_type="t", eventType=5),
    "alias and name both, name wrong": with_fields(event_type=5),
    "missing id": with_fields(id=_GONE),
    "id in upper case": json.dumps(
        {**{k: v for k, v in MESSAGE.items() if k != "id"}, "ID": "msg_1"}
    ).encode(),
    "id null": with_fields(id=None),
    "id a number": with_fields(id=12345),
    "id a list": with_fields(id=["msg_1"]),
    "id an object": with_fields(id={"id": "msg_1"}),
    "id true": with_fields(id=True),
    "id unicode": with_fields(id="msg_ünïcødé_☃_𝄞"),
    "id with an escaped surrogate pair": b'{"id":"msg_\\ud834\\udd1e","eventType":"t",'
    b'"payload":{},"timestamp":"2026-11-28T10:00:00Z"}',
    "id with a lone surrogate": b'{"id":"msg_\\ud800","eventType":"t","payload":{},'
    b'"timestamp":"2026-11-28T10:00:00Z"}',
    "id written with escapes": b'{"\\u0069d":"msg_\\u0041","eventType":"t","payload":{},'
    b'"timestamp":"2026-11-28T10:00:00Z"}',
    "id twice, the last wins": b'{"id":"msg_first","id":"msg_last","eventType":"t",'
    b'"payload":{},"timestamp":"2026-11-28T10:00:00Z"}',
    "missing eventType": with_fields(eventType=_GONE),
    "missing payload": with_fields(payload=_GONE),
    "payload a list": with_fields(payload=[]),
    "missing timestamp": with_fields(timestamp=_GONE),
    "timestamp a number": with_fields(timestamp=1764324000),
    "timestamp digits in a string": with_fields(timestamp="1764324000"),
    "timestamp a date": with_fields(timestamp="2026-11-28"),
    "timestamp garbage": with_fields(timestamp="yesterday"),
    "timestamp true": with_fields(timestamp=True),
    "timestamp null": with_fields(timestamp=None),
    "channels a string": with_fields(channels="a"),
    "tags of numbers": with_fields(tags=[1]),
    "eventId a number": with_fields(eventId=5),
    "deliverAt garbage": with_fields(deliverAt="soon"),
    "null": b"null",
    "an array of one message": json.dumps([MESSAGE]).encode(),
    "an empty array": b"[]",
    "a string": b'"msg_1"',
    "a number": b"42",
    "empty": b"",
    "whitespace around": b"  \n" + with_fields() + b"\n\t ",
    "trailing bytes": with_fields() + b" x",
    "two documents": with_fields() + with_fields(),
    "truncated": with_fields()[:-3],
    "HTML": b"<html>202 Accepted</html>",
    "NaN in an extra field": with_fields()[:-1] + b', "x": NaN}',
    "a UTF-8 byte order mark": b"\xef\xbb\xbf" + with_fields(),
    "UTF-16": with_fields().decode().encode("utf-16"),
    "not UTF-8": with_fields(id="msg_X").replace(b"X", b"\xff"),
    "nesting 150 deep": with_fields()[:-1] + b', "x": ' + b"[" * 150 + b"]" * 150 + b"}",
    "nesting 300 deep": with_fields()[:-1] + b', "x": ' + b"[" * 300 + b"]" * 300 + b"}",
    "a 5000-digit number": with_fields()[:-1] + b', "x": ' + b"9" * 5000 + b"}",
}


@pytest.mark.parametrize("case", sorted(ODD_ANSWERS))
def test_the_direct_sender_reads_an_answer_as_the_sdk_does(case: str):
    body = ODD_ANSWERS[case]
    assert created_message_id(body) == sdk_reading(body)


def test_an_empty_id_is_the_one_answer_read_more_strictly_than_the_sdk():
    # The SDK takes "" for an id; a delivered event logged with no message id helps no one,
    # and a retry replays the answer Svix stored. Nothing else is stricter (the cases above).
    body = with_fields(id="")
    assert sdk_reading(body) == ""
    assert created_message_id(body) is None


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=6,
)
FIELDS = [
    "id",
    "eventType",
    "event_type",
    "payload",
    "timestamp",
    "eventId",
    "event_id",
    "channels",
    "tags",
    "deliverAt",
    "deliver_at",
    "other",
]


@given(
    st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES, max_size=8),
    st.dictionaries(st.sampled_from(FIELDS), st.sampled_from(list(MESSAGE.values())), max_size=4),
)
def test_any_document_near_a_message_is_read_as_the_sdk_reads_it(
    changes: dict[str, Any], plausible: dict[str, Any]
):
    document = {**MESSAGE, **plausible, **changes}
    body = json.dumps(document).encode()
    expected = sdk_reading(body)
    assert created_message_id(body) == (expected or None)


def test_the_mirrored_fields_are_the_sdks():
    from svix.api import MessageOut

    # The same fields, aliases and required ones; the property above holds the readings equal.
    ours = {
        name: (field["validation_alias"], field["schema"]["type"] != "default")
        for name, field in MESSAGE_OUT_FIELDS.items()
    }
    theirs = {
        name: (field.alias, field.is_required()) for name, field in MessageOut.model_fields.items()
    }
    assert ours == theirs
    assert MessageOut.model_config.get("populate_by_name") is True


def test_the_user_agent_names_the_installed_sdk():
    import svix

    assert SVIX_SDK_VERSION == svix.__version__ == importlib.metadata.version("svix")


def test_the_emulators_answers_are_read_as_the_sdk_reads_them(svix: Any):
    # The raw bytes of each answer the direct sender reads: a create, its idempotent replay,
    # the same with content, and the look-up by eventId after a 409.
    outgoing = message()
    headers = {
        "Authorization": f"Bearer {svix.token}",
        "Content-Type": "application/json",
        "idempotency-key": outgoing.idempotency_key,
    }
    host, port = svix.url.removeprefix("http://").split(":")
    connection = Http11Connection(host, int(port), timeout=2)
    target = f"/api/v1/app/{outgoing.app_id}/msg"
    answers = [
        connection.post(f"{target}?with_content=false", headers, outgoing.body),
        connection.post(f"{target}?with_content=false", headers, outgoing.body),
        connection.post(target, {**headers, "idempotency-key": "other"}, message().body),
        connection.get(f"{target}/{outgoing.svix_event_id}", headers),
    ]
    assert [answer.status for answer in answers] == [202, 202, 202, 200]
    for answer in answers:
        assert created_message_id(answer.body) == sdk_reading(answer.body)
        assert created_message_id(answer.body) is not None


def test_sending_with_the_direct_sender_loads_nothing_of_the_svix_sdk(svix: Any):
    # A clean interpreter: the message is built by hand, so that the way the mapping builds it
    # plays no part.
    program = textwrap.dedent(
        """
        import json, sys
        from relay.core.messages import OutgoingMessage
        from relay.svix.direct import DirectSvixSender

        url, token = sys.argv[1], sys.argv[2]
        body = json.dumps(
            {"eventType": "user.created", "eventId": "evt_no_sdk_1", "payload": {"a": 1},
             "application": {"name": "no-sdk", "uid": "no-sdk"}}
        ).encode()
        message = OutgoingMessage(
            app_id="no-sdk", event_id="evt_no_sdk_1", event_type="user.created",
            payload={"a": 1}, svix_event_id="evt_no_sdk_1",
            idempotency_key="gigs-relay-v1-no-sdk-1", create_app_named="no-sdk", body=body,
        )
        sender = DirectSvixSender(token=token, server_url=url, timeout_seconds=5)
        accepted = sender.send(message)
        loaded = sorted(m for m in sys.modules if m == "svix" or m.startswith("svix."))
        print(json.dumps({"id": accepted.svix_message_id, "svix_modules": loaded}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", program, svix.url, svix.token],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("PYTHON")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    (stored,) = svix.messages("no-sdk")
    assert result == {"id": stored["id"], "svix_modules": []}
