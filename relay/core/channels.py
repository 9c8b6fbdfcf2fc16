"""Svix channels from an event's fields: the templates of RELAY_CHANNELS, and the sanitising that
keeps every channel one Svix accepts.

A template is literal text with `{dotted.path}` fields of the event as the customer sees it, for
example `{data.object}:{data.id}` (`user:usr_123`) or `user:{data.user.id}`. Each template gives
at most one channel; one whose field is missing, empty or not a string or integer gives none, so
an event that lacks a field just gets fewer channels. A channel that fits Svix's rules as it is
stays as it is; any other keeps its start, with `_` for each character Svix refuses, and ends in
`+` and a digest of the whole, so that two values never share a channel (an endpoint on one
would get the other's events) and a megabyte-long value costs no more than a short one.

Strategy: everything that can be checked is checked once, when the settings are read (at most
ten templates, literal text of channel characters only), so that per event the only work is a few
dictionary look-ups, and the only failure is a missing field, which is not one.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from relay.core.jsontext import utf8

# Svix's rules for MessageIn.channels: at most 10, unique, each 1-128 of these characters.
MAX_CHANNELS = 10
MAX_CHANNEL_LENGTH = 128
CHANNEL_PATTERN = re.compile(r"[a-zA-Z0-9\-_.:+]+")
_NOT_CHANNEL_CHARACTER = re.compile(r"[^a-zA-Z0-9\-_.:+]")
_FIELD = re.compile(r"\{([^{}]*)\}")
_PATH_PART = re.compile(r"[A-Za-z0-9_\-]+")
# The digest that ends a channel whose text had to be changed to fit.
_DIGEST_CHARACTERS = 16
_KEPT_CHARACTERS = MAX_CHANNEL_LENGTH - _DIGEST_CHARACTERS - 1


@dataclass(frozen=True)
class ChannelTemplate:
    text: str
    # Literal text, or the path of a field (the keys from the event's top level down).
    parts: tuple[str | tuple[str, ...], ...]

    def channel(self, payload: dict[str, Any]) -> str | None:
        pieces: list[str] = []
        fits = True
        for part in self.parts:
            if isinstance(part, str):
                pieces.append(part)  # checked at start: channel characters only
                continue
            value = _field(payload, part)
            if value is None:
                return None
            # Length first: a long value is never scanned whole.
            if len(value) > MAX_CHANNEL_LENGTH or not CHANNEL_PATTERN.fullmatch(value):
                fits = False
            pieces.append(value)
        text = "".join(pieces)
        if fits and len(text) <= MAX_CHANNEL_LENGTH:
            return text
        return _fitted(text)


def parse_channel_templates(text: str) -> tuple[ChannelTemplate, ...]:
    """The templates of a comma-separated RELAY_CHANNELS, or ValueError saying what is wrong."""
    templates: list[ChannelTemplate] = []
    for raw in text.split(","):
        raw = raw.strip()
        if not raw:
            continue
        templates.append(_template(raw))
    if len(templates) > MAX_CHANNELS:
        raise ValueError(
            f"at most {MAX_CHANNELS} channel templates (Svix takes at most {MAX_CHANNELS} "
            f"channels on a message), got {len(templates)}"
        )
    if len({t.text for t in templates}) != len(templates):
        raise ValueError("a channel template is listed twice")
    return tuple(templates)


def channels_for(templates: tuple[ChannelTemplate, ...], payload: dict[str, Any]) -> list[str]:
    """The channels of one event, in template order, without repeats (Svix wants them unique)."""
    channels: list[str] = []
    for template in templates:
        channel = template.channel(payload)
        if channel is not None and channel not in channels:
            channels.append(channel)
    return channels


def _template(raw: str) -> ChannelTemplate:
    parts: list[str | tuple[str, ...]] = []
    at = 0
    for match in _FIELD.finditer(raw):
        parts.extend(_literal(raw, raw[at : match.start()]))
        path = tuple(match.group(1).strip().split("."))
        if not all(_PATH_PART.fullmatch(key) for key in path):
            raise ValueError(
                f"channel template {raw!r}: {{{match.group(1)}}} is not a field path such as "
                "{data.id} (keys of letters, digits, '_' and '-', joined by '.')"
            )
        parts.append(path)
        at = match.end()
    parts.extend(_literal(raw, raw[at:]))
    if not any(isinstance(part, tuple) for part in parts):
        raise ValueError(
            f"channel template {raw!r} names no event field: write fields in braces, such as "
            "{data.object}:{data.id}"
        )
    return ChannelTemplate(raw, tuple(parts))


def _literal(raw: str, text: str) -> list[str]:
    if not text:
        return []
    if not CHANNEL_PATTERN.fullmatch(text):
        raise ValueError(
            f"channel template {raw!r}: the text {text!r} has characters Svix does not take in a "
            "channel (only letters, digits and -_.:+), or an unmatched brace"
        )
    return [text]


def _field(payload: dict[str, Any], path: tuple[str, ...]) -> str | None:
    value: Any = payload
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    if isinstance(value, str):
        return value or None
    if isinstance(value, bool) or not isinstance(value, int):
        return None  # a bool, number with a fraction, object or list names no resource
    try:
        return str(value)
    except ValueError:  # past Python's 4,300 digits: no resource is named so
        return None


def _fitted(text: str) -> str:
    """A channel Svix takes for text it would not: its start with `_` for each character Svix
    refuses, then `+` and a digest of the whole text as it was."""
    digest = hashlib.sha256(utf8(text)).hexdigest()[:_DIGEST_CHARACTERS]
    return f"{_NOT_CHANNEL_CHARACTER.sub('_', text[:_KEPT_CHARACTERS])}+{digest}"
