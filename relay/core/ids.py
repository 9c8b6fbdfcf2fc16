"""The names the relay checks: Svix's rule for ids, uids and event types, and the wildcard of
the push accounts."""

from __future__ import annotations

import re

# Svix's own rule for ids, uids and event types (use fullmatch: `$` would let a newline through).
SVIX_ID_PATTERN = re.compile(r"[a-zA-Z0-9\-_.]+")
MAX_ID_LENGTH = 256


def is_svix_id(value: str) -> bool:
    """Svix's id rule, minus ids of dots only: "." and ".." are path segments, not names (a URL
    holding one addresses another resource, or none)."""
    return (
        len(value) <= MAX_ID_LENGTH
        and SVIX_ID_PATTERN.fullmatch(value) is not None
        and value.strip(".") != ""
    )


# RELAY_PUSH_SERVICE_ACCOUNTS for "any Google service account", said on purpose.
ANY_ACCOUNT = "*"
