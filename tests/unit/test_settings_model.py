"""The settings are checked as the pydantic model they replaced checked them: the same values
for what it took, the same words for what it refused. The model is kept here as the oracle."""

from __future__ import annotations

import re
from typing import Literal

from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from relay.core.channels import parse_channel_templates
from relay.core.errors import SettingsError
from relay.core.ids import ANY_ACCOUNT, is_svix_id
from relay.settings import Settings, describe_problems, load_settings


class ModelSettings(BaseModel):
    """The pydantic model the settings were read with before (fed by pydantic-settings)."""

    # validate_default: the checks below run on defaults too, as they did under pydantic-settings.
    model_config = ConfigDict(extra="ignore", frozen=True, validate_default=True)

    svix_auth_token: SecretStr = Field(validation_alias="SVIX_AUTH_TOKEN", min_length=1)
    svix_server_url: str | None = Field(default=None, validation_alias="SVIX_SERVER_URL")
    svix_app_id: str | None = Field(default=None, validation_alias="SVIX_APP_ID")
    # `direct`: the SDK's models over a lean keep-alive connection; `sdk`: svix.message.create.
    svix_client: Literal["direct", "sdk"] = Field(default="direct", alias="RELAY_SVIX_CLIENT")

    # Time from the first attempt after which no new attempt to Svix starts: keep it well under the
    # Pub/Sub ack deadline and the function timeout, with room for one Svix timeout on top.
    time_budget_seconds: float = Field(
        default=25.0, gt=0, le=540, alias="RELAY_TIME_BUDGET_SECONDS"
    )
    svix_timeout_seconds: float = Field(
        default=10.0, gt=0, le=120, alias="RELAY_SVIX_TIMEOUT_SECONDS"
    )
    max_in_flight: int = Field(default=32, ge=1, le=256, alias="RELAY_MAX_IN_FLIGHT")
    max_request_bytes: int = Field(
        default=16 * 1024 * 1024, ge=1024, alias="RELAY_MAX_REQUEST_BYTES"
    )
    max_events_per_request: int = Field(default=1000, ge=1, alias="RELAY_MAX_EVENTS_PER_REQUEST")
    # Backoff for transient failures and for 429 answers that carry no Retry-After.
    backoff_initial_seconds: float = Field(default=0.2, gt=0, alias="RELAY_BACKOFF_INITIAL_SECONDS")
    backoff_max_seconds: float = Field(default=5.0, gt=0, alias="RELAY_BACKOFF_MAX_SECONDS")

    log_format: Literal["json", "text"] = Field(default="json", alias="RELAY_LOG_FORMAT")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", alias="RELAY_LOG_LEVEL"
    )
    # Cloud Logging needs the project to link a log line to its trace.
    gcp_project: str | None = Field(default=None, alias="GOOGLE_CLOUD_PROJECT")

    parking_topic: str | None = Field(default=None, alias="RELAY_PARKING_TOPIC")

    push_audience: str | None = Field(default=None, alias="RELAY_PUSH_AUDIENCE")
    push_service_accounts: frozenset[str] = Field(
        default=frozenset(), alias="RELAY_PUSH_SERVICE_ACCOUNTS"
    )
    # Unset: Google's (relay/pubsub/push_auth.py names it once).
    push_certs_url: str | None = Field(default=None, alias="RELAY_PUSH_CERTS_URL")

    # Comma-separated channel templates such as `{data.object}:{data.id}` (relay/core/channels.py);
    # unset: messages carry no channels.
    channels: str | None = Field(default=None, alias="RELAY_CHANNELS")
    # Create, once per instance, the Svix event type of an event whose type the catalogue lacks.
    create_event_types: bool = Field(default=True, alias="RELAY_CREATE_EVENT_TYPES")

    @field_validator(
        "svix_server_url",
        "svix_app_id",
        "parking_topic",
        "push_audience",
        "push_certs_url",
        "gcp_project",
        "channels",
    )
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @field_validator("svix_auth_token")
    @classmethod
    def _token(cls, value: SecretStr) -> SecretStr:
        # A newline pasted along with the token would end the request's headers early.
        token = value.get_secret_value().strip()
        if not token or not all("!" <= c <= "~" for c in token):
            raise ValueError("must be printable ASCII without spaces (is there a stray newline?)")
        return SecretStr(token)

    @field_validator("svix_server_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http(s) URL such as http://127.0.0.1:8071")
        return value.rstrip("/") if value else value

    @field_validator("svix_app_id")
    @classmethod
    def _app_id(cls, value: str | None) -> str | None:
        if value is not None and not is_svix_id(value):
            raise ValueError(
                "must match ^[a-zA-Z0-9-_.]+$, be at most 256 characters and not only dots"
            )
        return value

    @field_validator("parking_topic")
    @classmethod
    def _topic(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^projects/[^/]+/topics/[^/]+$", value):
            raise ValueError("must be a full topic name: projects/PROJECT/topics/TOPIC")
        return value

    @field_validator("channels")
    @classmethod
    def _channels(cls, value: str | None) -> str | None:
        if value is not None:
            parse_channel_templates(value)  # ValueError says what is wrong
        return value

    @field_validator("push_service_accounts", mode="before")
    @classmethod
    def _accounts(cls, value: object) -> object:
        if isinstance(value, str):
            return frozenset(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("push_service_accounts")
    @classmethod
    def _any_account_alone(cls, value: frozenset[str]) -> frozenset[str]:
        if ANY_ACCOUNT in value and len(value) > 1:
            raise ValueError(f"{ANY_ACCOUNT!r} means any account: list accounts, or only '*'")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ModelSettings:
        if self.backoff_initial_seconds > self.backoff_max_seconds:
            raise ValueError(
                "RELAY_BACKOFF_INITIAL_SECONDS must not exceed RELAY_BACKOFF_MAX_SECONDS"
            )
        if self.push_service_accounts and not self.push_audience:
            raise ValueError("RELAY_PUSH_SERVICE_ACCOUNTS needs RELAY_PUSH_AUDIENCE")
        if self.push_audience and not self.push_service_accounts:
            # Anyone can get a Google-signed ID token for any audience: the audience alone
            # would let every Google account in.
            raise ValueError(
                "RELAY_PUSH_AUDIENCE needs RELAY_PUSH_SERVICE_ACCOUNTS: the push service "
                "accounts allowed, comma-separated, or '*' for any Google account"
            )
        return self


NAMES = {
    str(field.validation_alias or field.alias): name
    for name, field in ModelSettings.model_fields.items()
}


def model_verdict(environ: dict[str, str]) -> tuple[str, object]:
    try:
        settings = ModelSettings.model_validate(environ)
    except ValidationError as exc:
        return "refused", describe_problems(exc.errors())
    values = settings.model_dump()
    values["svix_auth_token"] = settings.svix_auth_token.get_secret_value()
    return "read", values


def check_verdict(environ: dict[str, str]) -> tuple[str, object]:
    try:
        settings = load_settings(environ)
    except SettingsError as exc:
        return "refused", str(exc)
    values = {name: getattr(settings, name) for name in NAMES.values()}
    values["svix_auth_token"] = settings.svix_auth_token.get_secret_value()
    return "read", values


def test_every_setting_of_the_model_is_read() -> None:
    assert set(NAMES.values()) == {f.name for f in Settings.__dataclass_fields__.values()}


# Values of the shapes the variables take, near their bounds, and odd ones.
NUMBERS = ["0", "-1", "1", "0.2", "5", "25", "256", "257", "540", "541", "1024", "1023", "1e3",
           " 7 ", "1_0", "+5", "5.0", "inf", "nan", "-0", "0x10", "soon", "", "\u0661"]  # fmt: skip
TEXTS = ["", " ", "json", "text", "xml", "direct", "sdk", "SDK", "DEBUG", "info", "true", "false",
         "no", "maybe", "0", "1", "http://127.0.0.1:8071/", "https://api.svix.com", "localhost:1",
         "projects/p/topics/t", "just-a-name", "app_1", "..", "a:b", "a" * 257, "*", "*,a@b",
         " a@b , c@d ", ",", "{data.object}:{data.id}", "user:usr", "{data.id},{data.id}",
         "sk_test", "sk_abc.eu\n", "sk abc", "sk\u00e9", "\ud800"]  # fmt: skip
values = st.sampled_from(NUMBERS + TEXTS) | st.text(max_size=8)
environments = st.dictionaries(st.sampled_from(sorted(NAMES)), values, max_size=8)


# Mostly a good token, so that the other variables get checked too.
tokens = st.fixed_dictionaries({"SVIX_AUTH_TOKEN": st.just("sk_test")}) | st.fixed_dictionaries(
    {}, optional={"SVIX_AUTH_TOKEN": values}
)


@given(environ=st.builds(lambda token, rest: {**rest, **token}, tokens, environments))
@example(environ={})
@example(environ={"SVIX_AUTH_TOKEN": ""})
@example(environ={"SVIX_AUTH_TOKEN": "sk", "RELAY_BACKOFF_INITIAL_SECONDS": "9"})
@example(environ={"SVIX_AUTH_TOKEN": "sk", "RELAY_PUSH_AUDIENCE": "a"})
@example(environ={"SVIX_AUTH_TOKEN": "sk", "RELAY_PUSH_SERVICE_ACCOUNTS": "a"})
@example(
    environ={
        "SVIX_AUTH_TOKEN": "sk",
        "RELAY_PUSH_AUDIENCE": "a",
        "RELAY_PUSH_SERVICE_ACCOUNTS": "*",
    }
)
@example(environ={"RELAY_PUSH_AUDIENCE": "a", "RELAY_PUSH_SERVICE_ACCOUNTS": "*,b"})
@example(environ={"RELAY_MAX_IN_FLIGHT": "x", "RELAY_TIME_BUDGET_SECONDS": "nan"})
def test_the_settings_read_and_refuse_as_the_model_did(environ: dict[str, str]) -> None:
    assert check_verdict(environ) == model_verdict(environ)
