"""Svix channels from an event's fields: the templates of RELAY_CHANNELS, and the sanitising that
keeps every channel one Svix accepts.

A template is literal text with `{dotted.path}` fields of the event as the customer sees it, for
example `{data.object}:{data.id}` (`user:usr_123`) or `user:{data.user.id}`. Each template gives
at most one channel; one whose field is missing, empty or not a string or integer gives none, so
an event that lacks a field just gets fewer channels.

Strategy: everything that can be checked is checked once, when the settings are read (at most
ten templates, literal text of channel characters only), so that per event the only work is a few
dictionary look-ups, and the only failure is a missing field, which is not one.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

# Svix's rules for MessageIn.channels: at most 10, unique, each 1-128 of these characters.
MAX_CHANNELS = 10
MAX_CHANNEL_LENGTH = 128
CHANNEL_PATTERN = re.compile(r"[a-zA-Z0-9\-_.:+]+")
_NOT_CHANNEL_CHARACTER = re.compile(r"[^a-zA-Z0-9\-_.:+]")
_FIELD = re.compile(r"\{([^{}]*)\}")
_PATH_PART = re.compile(r"[A-Za-z0-9_\-]+")
# A value too long keeps its start and a digest of the whole, so that two long values that
# share their first 111 characters still give two channels.
_DIGEST_CHARACTERS = 16


@dataclass(frozen=True)
class ChannelTemplate:
    text: str
    # Literal text, or the path of a field (the keys from the event's top level down).
    parts: tuple[str | tuple[str, ...], ...]

    def channel(self, payload: dict[str, Any]) -> str | None:
        pieces: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                pieces.append(part)
                continue
            value = _field(payload, part)
            if value is None:
                return None
            pieces.append(_NOT_CHANNEL_CHARACTER.sub("_", value))
        return _bounded("".join(pieces))


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
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None  # a bool, number with a fraction, object or list names no resource
    text = str(value)
    return text or None


def _bounded(channel: str) -> str:
    if len(channel) <= MAX_CHANNEL_LENGTH:
        return channel
    digest = hashlib.sha256(channel.encode()).hexdigest()[:_DIGEST_CHARACTERS]
    return f"{channel[: MAX_CHANNEL_LENGTH - _DIGEST_CHARACTERS - 1]}+{digest}"
