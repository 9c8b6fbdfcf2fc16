"""Both senders (the direct one and the SDK's own create) against the Svix emulator: every answer
Svix can give must mean the same thing whichever path sent the message."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from relay.core.batch import IncomingEvent
from relay.core.errors import PermanentFailure, RateLimited, ServiceRefused, TransientFailure
from relay.core.events import parse_event
from relay.core.messages import OutgoingMessage, to_message
from relay.svix.answers import region_url
from relay.svix.direct import DirectSvixSender
from relay.svix.sdk import SdkSvixSender
from tests.support.messages import USER, message

SENDERS: dict[str, Any] = {"direct": DirectSvixSender, "sdk": SdkSvixSender}


@pytest.fixture(params=sorted(SENDERS))
def sender(request: pytest.FixtureRequest, svix: Any) -> Any:
    return SENDERS[request.param](token=svix.token, server_url=svix.url, timeout_seconds=1.0)


def test_create_then_replay_with_the_same_key(sender: Any, svix: Any):
    outgoing = message()
    first = sender.send(outgoing)
    again = sender.send(outgoing)
    assert first.svix_message_id is not None and first.svix_message_id.startswith("msg_")
    assert again.svix_message_id == first.svix_message_id
    (stored,) = svix.messages()
    assert stored["idempotencyKey"] == outgoing.idempotency_key
    assert stored["eventId"] == outgoing.svix_event_id
    assert stored["payload"] == outgoing.payload
    assert svix.stats()["idempotent_replays"] == 1


def test_the_application_is_created_on_first_use_only_when_routing_by_project(
    sender: Any, svix: Any
):
    sender.send(message(project="fresh-project"))
    assert svix.stats()["messages_per_app"] == {"fresh-project": 1}
    fixed = to_message(
        IncomingEvent(0, USER, USER["id"], event=parse_event(USER)),
        fixed_app_id="app_missing",
    )
    with pytest.raises(ServiceRefused, match="404"):
        sender.send(fixed)


def test_a_409_for_our_event_id_is_success_with_the_existing_message(sender: Any, svix: Any):
    outgoing = message()
    first = sender.send(outgoing)
    other_key = OutgoingMessage(**{**outgoing.__dict__, "idempotency_key": "another-key"})
    accepted = sender.send(other_key)
    assert accepted.already_existed
    assert accepted.svix_message_id == first.svix_message_id
    assert svix.stats()["conflicts"] == 1


def test_a_409_that_is_not_about_our_event_id_is_retried_not_taken_for_success(
    sender: Any, svix: Any
):
    # Svix can answer 409 when two requests race to create the application of a new project.
    outgoing = message()
    svix.set_faults(errors=[{"status": 409, "next": 1}])
    with pytest.raises(TransientFailure, match="holds no message with eventId"):
        sender.send(outgoing)
    assert svix.messages() == []
    assert sender.send(outgoing).already_existed is False
    assert len(svix.messages()) == 1


def test_a_422_is_permanent_and_says_why(sender: Any):
    # The mapping refuses such a type itself; a body written by hand gets it to Svix.
    outgoing = message()
    body = {**json.loads(outgoing.body), "eventType": "t" * 300}
    with pytest.raises(PermanentFailure, match="422") as failure:
        sender.send(dataclasses.replace(outgoing, body=json.dumps(body).encode()))
    assert failure.value.status == 422


@pytest.mark.parametrize("kind", sorted(SENDERS))
def test_a_wrong_token_is_refused_service(svix: Any, kind: str):
    wrong: Any = SENDERS[kind](token="sk_wrong", server_url=svix.url, timeout_seconds=1.0)
    with pytest.raises(ServiceRefused, match="SVIX_AUTH_TOKEN"):
        wrong.send(message())


@pytest.mark.parametrize("with_header", [True, False])
def test_429_carries_retry_after_when_svix_sends_it(sender: Any, svix: Any, with_header: bool):
    svix.set_faults(rate_limit={"per_second": 0.1, "burst": 1, "retry_after": with_header})
    sender.send(message())
    with pytest.raises(RateLimited) as limited:
        sender.send(message())
    assert (limited.value.retry_after is not None) is with_header


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_transient_html_or_not(sender: Any, svix: Any, status: int):
    svix.set_faults(errors=[{"status": status, "next": 1}])
    with pytest.raises(TransientFailure, match=str(status)):
        sender.send(message())
    assert sender.send(message()).svix_message_id is not None


@pytest.mark.parametrize("fault", ["drop_before_store", "drop_after_store"])
def test_dropped_connections_are_transient_or_recovered_at_once(sender: Any, svix: Any, fault: str):
    outgoing = message()
    svix.set_faults(**{fault: {"next": 1}})
    try:
        accepted = sender.send(outgoing)
    except TransientFailure:
        accepted = sender.send(outgoing)  # what the delivery layer does next
    assert accepted.svix_message_id is not None
    assert len(svix.messages()) == 1


def test_a_slow_answer_is_a_timeout_and_the_retry_gets_the_stored_message(sender: Any, svix: Any):
    outgoing = message()
    svix.set_faults(slow_after_store={"seconds": 1.5, "next": 1})
    with pytest.raises(TransientFailure, match="in time"):
        sender.send(outgoing)
    assert sender.send(outgoing).svix_message_id == svix.messages()[0]["id"]


def test_the_connection_is_reused_across_sends(svix: Any):
    direct = DirectSvixSender(token=svix.token, server_url=svix.url, timeout_seconds=1.0)
    direct.send(message())
    first = direct._local.connection._sock
    direct.send(message())
    assert first is not None and direct._local.connection._sock is first


@pytest.mark.parametrize(
    "token", ["sk_abc.us", "sk_abc.eu", "sk_abc.in", "sk_abc.ca", "sk_abc.au", "sk_abc", "x.y"]
)
def test_region_routing_matches_the_sdk(token: str):
    from svix.api import Svix

    assert region_url(token) == Svix(token)._client.base_url


def test_a_409_for_a_deeply_nested_payload_is_still_found(sender: Any, svix: Any):
    # Svix takes payloads nested deeper than the SDK's JSON parser reads back (about 200
    # levels): the look-up after a 409 must not ask for the payload it could not read.
    nested: Any = "leaf"
    for _ in range(220):
        nested = [nested]
    outgoing = message(data={"nested": nested})
    first = sender.send(outgoing)
    other_key = dataclasses.replace(outgoing, idempotency_key="another-key")
    accepted = sender.send(other_key)
    assert accepted.already_existed
    assert accepted.svix_message_id == first.svix_message_id
