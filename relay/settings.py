"""The relay's settings: read once from the environment, checked, errors naming the variable.

Strategy: each variable is checked by pydantic-core, the engine under pydantic's models, against
a schema written here (its type, bounds and checks). So a setting is read and refused by
pydantic's rules and in pydantic's words, without pydantic's model machinery or pydantic-settings
at start: the model and its settings source cost about 85 ms of a 550 ms `import main`
(NOTES.md), for reading one dictionary. tests/unit/test_settings_model.py holds this to the
model it replaced.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic_core import PydanticKnownError, SchemaValidator, ValidationError, core_schema

from relay.core.channels import parse_channel_templates
from relay.core.errors import SettingsError
from relay.core.ids import ANY_ACCOUNT, is_svix_id

# The variables the relay reads all start with one of these.
PREFIXES = ("SVIX_", "RELAY_", "GOOGLE_")


class Secret:
    """A setting that never shows in a repr: the Svix token."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Settings:
    svix_auth_token: Secret
    svix_server_url: str | None = None
    svix_app_id: str | None = None
    # `direct`: the SDK's models over a lean keep-alive connection; `sdk`: svix.message.create.
    svix_client: Literal["direct", "sdk"] = "direct"

    # Time from the first attempt after which no new attempt to Svix starts: keep it well under the
    # Pub/Sub ack deadline and the function timeout, with room for one Svix timeout on top.
    time_budget_seconds: float = 25.0
    svix_timeout_seconds: float = 10.0
    max_in_flight: int = 32
    max_request_bytes: int = 16 * 1024 * 1024
    max_events_per_request: int = 1000
    # Backoff for transient failures and for 429 answers that carry no Retry-After.
    backoff_initial_seconds: float = 0.2
    backoff_max_seconds: float = 5.0

    log_format: Literal["json", "text"] = "json"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Cloud Logging needs the project to link a log line to its trace.
    gcp_project: str | None = None

    parking_topic: str | None = None

    push_audience: str | None = None
    push_service_accounts: frozenset[str] = frozenset()
    # Unset: Google's (relay/pubsub/push_auth.py names it once).
    push_certs_url: str | None = None

    # Comma-separated channel templates such as `{data.object}:{data.id}` (relay/core/channels.py);
    # unset: messages carry no channels.
    channels: str | None = None
    # Create, once per instance, the Svix event type of an event whose type the catalogue lacks.
    create_event_types: bool = True


# ---- the checks, each after the variable's type ----------------------------------------------


def _blank_is_unset(value: str | None) -> str | None:
    return value.strip() or None if value is not None else None


def _min_length_one(value: str) -> str:
    if not value:
        # pydantic's words for a secret's min_length.
        raise PydanticKnownError(
            "too_short", {"field_type": "Value", "min_length": 1, "actual_length": 0}
        )
    return value


def _token(value: str) -> Secret:
    # A newline pasted along with the token would end the request's headers early.
    token = value.strip()
    if not token or not all("!" <= c <= "~" for c in token):
        raise ValueError("must be printable ASCII without spaces (is there a stray newline?)")
    return Secret(token)


def _url(value: str | None) -> str | None:
    if value is not None and not re.match(r"^https?://[^/\s]+", value):
        raise ValueError("must be an http(s) URL such as http://127.0.0.1:8071")
    return value.rstrip("/") if value else value


def _app_id(value: str | None) -> str | None:
    if value is not None and not is_svix_id(value):
        raise ValueError(
            "must match ^[a-zA-Z0-9-_.]+$, be at most 256 characters and not only dots"
        )
    return value


def _topic(value: str | None) -> str | None:
    if value is not None and not re.match(r"^projects/[^/]+/topics/[^/]+$", value):
        raise ValueError("must be a full topic name: projects/PROJECT/topics/TOPIC")
    return value


def _channels(value: str | None) -> str | None:
    if value is not None:
        parse_channel_templates(value)  # ValueError says what is wrong
    return value


def _accounts(value: object) -> object:
    if isinstance(value, str):
        return frozenset(part.strip() for part in value.split(",") if part.strip())
    return value


def _any_account_alone(value: frozenset[str]) -> frozenset[str]:
    if ANY_ACCOUNT in value and len(value) > 1:
        raise ValueError(f"{ANY_ACCOUNT!r} means any account: list accounts, or only '*'")
    return value


def _consistent(settings: dict[str, Any]) -> dict[str, Any]:
    if settings["backoff_initial_seconds"] > settings["backoff_max_seconds"]:
        raise ValueError("RELAY_BACKOFF_INITIAL_SECONDS must not exceed RELAY_BACKOFF_MAX_SECONDS")
    if settings["push_service_accounts"] and not settings["push_audience"]:
        raise ValueError("RELAY_PUSH_SERVICE_ACCOUNTS needs RELAY_PUSH_AUDIENCE")
    if settings["push_audience"] and not settings["push_service_accounts"]:
        # Anyone can get a Google-signed ID token for any audience: the audience alone would let
        # every Google account in.
        raise ValueError(
            "RELAY_PUSH_AUDIENCE needs RELAY_PUSH_SERVICE_ACCOUNTS: the push service "
            "accounts allowed, comma-separated, or '*' for any Google account"
        )
    return settings


# ---- the schema: one entry per variable, in the order problems are named ---------------------

_Check = Callable[[Any], Any]
_REQUIRED = object()


def _then(schema: core_schema.CoreSchema, *checks: _Check) -> core_schema.CoreSchema:
    for check in checks:
        schema = core_schema.no_info_after_validator_function(check, schema)
    return schema


def _variable(
    name: str, schema: core_schema.CoreSchema, default: object = _REQUIRED
) -> core_schema.TypedDictField:
    if default is _REQUIRED:
        return core_schema.typed_dict_field(schema, validation_alias=name)
    # Defaults go through the checks too, as they did in the model (validate_default).
    return core_schema.typed_dict_field(
        core_schema.with_default_schema(schema, default=default, validate_default=True),
        validation_alias=name,
        required=False,
    )


def _text(*checks: _Check) -> core_schema.CoreSchema:
    """An optional text, blank meaning unset, then the checks."""
    return _then(core_schema.nullable_schema(core_schema.str_schema()), _blank_is_unset, *checks)


_SCHEMA = core_schema.typed_dict_schema(
    {
        "svix_auth_token": _variable(
            "SVIX_AUTH_TOKEN", _then(core_schema.str_schema(), _min_length_one, _token)
        ),
        "svix_server_url": _variable("SVIX_SERVER_URL", _text(_url), None),
        "svix_app_id": _variable("SVIX_APP_ID", _text(_app_id), None),
        "svix_client": _variable(
            "RELAY_SVIX_CLIENT", core_schema.literal_schema(["direct", "sdk"]), "direct"
        ),
        "time_budget_seconds": _variable(
            "RELAY_TIME_BUDGET_SECONDS", core_schema.float_schema(gt=0, le=540), 25.0
        ),
        "svix_timeout_seconds": _variable(
            "RELAY_SVIX_TIMEOUT_SECONDS", core_schema.float_schema(gt=0, le=120), 10.0
        ),
        "max_in_flight": _variable("RELAY_MAX_IN_FLIGHT", core_schema.int_schema(ge=1, le=256), 32),
        "max_request_bytes": _variable(
            "RELAY_MAX_REQUEST_BYTES", core_schema.int_schema(ge=1024), 16 * 1024 * 1024
        ),
        "max_events_per_request": _variable(
            "RELAY_MAX_EVENTS_PER_REQUEST", core_schema.int_schema(ge=1), 1000
        ),
        "backoff_initial_seconds": _variable(
            "RELAY_BACKOFF_INITIAL_SECONDS", core_schema.float_schema(gt=0), 0.2
        ),
        "backoff_max_seconds": _variable(
            "RELAY_BACKOFF_MAX_SECONDS", core_schema.float_schema(gt=0), 5.0
        ),
        "log_format": _variable(
            "RELAY_LOG_FORMAT", core_schema.literal_schema(["json", "text"]), "json"
        ),
        "log_level": _variable(
            "RELAY_LOG_LEVEL",
            core_schema.literal_schema(["DEBUG", "INFO", "WARNING", "ERROR"]),
            "INFO",
        ),
        "gcp_project": _variable("GOOGLE_CLOUD_PROJECT", _text(), None),
        "parking_topic": _variable("RELAY_PARKING_TOPIC", _text(_topic), None),
        "push_audience": _variable("RELAY_PUSH_AUDIENCE", _text(), None),
        "push_service_accounts": _variable(
            "RELAY_PUSH_SERVICE_ACCOUNTS",
            _then(
                core_schema.no_info_before_validator_function(
                    _accounts, core_schema.frozenset_schema(core_schema.str_schema())
                ),
                _any_account_alone,
            ),
            frozenset(),
        ),
        "push_certs_url": _variable("RELAY_PUSH_CERTS_URL", _text(), None),
        "channels": _variable("RELAY_CHANNELS", _text(_channels), None),
        "create_event_types": _variable(
            "RELAY_CREATE_EVENT_TYPES", core_schema.bool_schema(), True
        ),
    },
    extra_behavior="ignore",
)
_VALIDATOR = SchemaValidator(_then(_SCHEMA, _consistent))


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and check the settings; `environ` replaces the process environment (tests, tools)."""
    if environ is None:
        environ = _process_environment()
    try:
        values = _VALIDATOR.validate_python(
            {k: v for k, v in environ.items() if k.startswith(PREFIXES)}
        )
    except ValidationError as exc:
        raise SettingsError(describe_problems(exc.errors())) from None
    return Settings(**values)


def _process_environment() -> dict[str, str]:
    """The environment's variables under upper-case names: pydantic-settings read them whatever
    their case (`relay_log_level` too), so the relay still does; the upper-case spelling wins
    when both are set."""
    found: dict[str, str] = {}
    for name, value in os.environ.items():
        upper = name.upper()
        if upper.startswith(PREFIXES) and (name == upper or upper not in found):
            found[upper] = value
    return found


def describe_problems(errors: list[Any]) -> str:
    """One message naming every problem's variable; never the value, which may be the token."""
    problems = []
    for error in errors:
        where = ".".join(str(part) for part in error["loc"]) or "settings"
        variable = where.upper() if where != "settings" else where
        if error["type"] == "missing":
            problems.append(f"{variable} is required but not set")
        else:
            problems.append(f"{variable} is invalid: {error['msg']}")
    return "invalid relay configuration: " + "; ".join(problems)
