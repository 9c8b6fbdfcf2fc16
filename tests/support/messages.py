"""Outgoing messages made by hand, for the senders' tests."""

from __future__ import annotations

import itertools
from typing import Any

from relay.core.batch import IncomingEvent
from relay.core.events import parse_event
from relay.core.messages import OutgoingMessage, to_message
from tests.support import own_events


def message(**changes: Any) -> OutgoingMessage:
    raw = {**USER, "id": f"evt_sender_{next(_ids)}", **changes}
    return to_message(IncomingEvent(0, raw, raw["id"], event=parse_event(raw)), fixed_app_id=None)


USER = own_events()["user-created"]


_ids = itertools.count(1)
