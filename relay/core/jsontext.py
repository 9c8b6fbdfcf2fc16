"""Strict JSON: what a Gigs event may carry to a customer, decoded with its cost bounded."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from relay.core.errors import RelayError


def utf8(text: str) -> bytes:
    """UTF-8 that keeps lone surrogates ("\\ud800"), which JSON can carry: ids made from such
    text still need stable bytes, for digests and for Pub/Sub attributes."""
    return text.encode("utf-8", "surrogatepass")


class NotJson(RelayError, ValueError):
    """Bytes that are not standard JSON the relay can carry."""


class TooManyItems(RelayError):
    """A top-level array with more elements than allowed; the rest of it was not read."""


def decode_json(data: bytes, *, max_items: int | None = None) -> Any:
    """Standard JSON only: NaN, Infinity and numbers too large for a float would reach customers
    as null, so they are refused; so is nesting deeper than Python's recursion allows.

    With `max_items`, a top-level array is decoded one element at a time and TooManyItems raised
    at the first element past the limit: 16 MiB of `[{},{},...]` would otherwise become 5.6
    million dicts (400 MiB) before anyone counted them.
    """
    try:
        # What json.loads does with bytes, with one decoder made once rather than per call.
        text = data.decode(_encoding(data), "surrogatepass")
        start = _space_end(text, 0)
        if max_items is not None and text.startswith("[", start):
            return _decode_array(text, start + 1, max_items)
        return _DECODER.decode(text)
    except RecursionError:
        raise NotJson("nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise NotJson(str(exc)) from None


def _encoding(data: bytes) -> str:
    """json.detect_encoding's answer, at once for what almost every body starts with: `{` or `[`
    (never the start of a BOM) not followed by a zero byte (which would make it UTF-16/32)."""
    if data.startswith((b"{", b"[")) and data[1:2] != b"\x00":
        return "utf-8"
    return json.detect_encoding(data)


def _decode_array(text: str, index: int, max_items: int) -> list[Any]:
    """The array whose `[` is just before `index`, as strictly as the decoder reads one."""
    items: list[Any] = []
    index = _space_end(text, index)
    if text.startswith("]", index):
        index += 1
    else:
        while True:
            item, index = _DECODER.raw_decode(text, index)
            items.append(item)
            if len(items) > max_items:
                raise TooManyItems(f"more than {max_items} items")
            index = _space_end(text, index)
            if text.startswith(",", index):
                index = _space_end(text, index + 1)
            elif text.startswith("]", index):
                index += 1
                break
            else:
                raise json.JSONDecodeError("Expecting ',' delimiter", text, index)
    index = _space_end(text, index)
    if index != len(text):
        raise json.JSONDecodeError("Extra data", text, index)
    return items


def _space_end(text: str, index: int) -> int:
    """Where the JSON whitespace starting at `index` ends."""
    match = _WHITESPACE.match(text, index)
    return match.end() if match else index


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text[:20]} is too large")
    return value


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)
# JSON's four whitespace characters, as the decoder itself skips them between tokens.
_WHITESPACE = re.compile(r"[ \t\n\r]*")
