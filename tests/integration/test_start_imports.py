"""What a cold instance imports: only what the request path uses. Every module loaded at start is
paid for again by every new instance of a function that scales from zero."""

from __future__ import annotations

import json

from tests.support import run_python

# Loaded by `import main`, but never on the request path of the default setup: the SDK (the SDK
# sender and the tools import it), Google's libraries (push tokens, parking: imported when
# used), and pydantic-settings with what it brings (the settings are one dictionary).
NOT_AT_START = (
    "svix",
    "httpx",
    "google.auth",
    "google.cloud.pubsub",
    "google.api_core",
    "grpc",
    "requests",
    "cryptography",
    "pydantic_settings",
    "dotenv",
)


def loaded_after(statement: str, env: dict[str, str]) -> list[str]:
    """The modules a fresh interpreter holds after the statement."""
    program = f"""
import json, sys
{statement}
print(json.dumps(sorted(sys.modules)))
"""
    done = run_python(["-c", program], env)
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout.splitlines()[-1]))


def test_the_function_starts_without_what_its_request_path_does_not_use():
    environment = {"SVIX_AUTH_TOKEN": "testsk_start", "RELAY_LOG_LEVEL": "ERROR"}
    loaded = loaded_after("import main", environment)
    assert "relay.bootstrap" in loaded
    assert [name for name in NOT_AT_START if name in loaded] == []


def test_reading_a_request_needs_no_pydantic():
    # The event check is a dozen type checks: no model, no validation library.
    loaded = loaded_after(
        "from relay.pubsub.push import read_request\n"
        'read_request(b\'{"type": "user.created"}\', {}, max_events=10)',
        {},
    )
    assert "relay.pubsub.push" in loaded
    assert "pydantic" not in loaded
    assert "pydantic_core" not in loaded
