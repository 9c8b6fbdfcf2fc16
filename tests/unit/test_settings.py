"""Settings: defaults, and errors that name the variable but never echo a secret."""

from __future__ import annotations

import os

import pytest

from relay.core.errors import SettingsError
from relay.settings import load_settings


def test_only_the_token_is_required_and_defaults_are_sane():
    settings = load_settings({"SVIX_AUTH_TOKEN": "sk_test"})
    assert settings.svix_server_url is None
    assert settings.svix_app_id is None
    assert 0 < settings.time_budget_seconds < 60
    assert settings.max_in_flight >= 1
    assert settings.push_audience is None


def test_a_missing_token_is_named():
    with pytest.raises(SettingsError, match="SVIX_AUTH_TOKEN is required"):
        load_settings({})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RELAY_TIME_BUDGET_SECONDS", "-1"),
        ("RELAY_TIME_BUDGET_SECONDS", "soon"),
        ("RELAY_MAX_IN_FLIGHT", "0"),
        ("SVIX_SERVER_URL", "localhost:8071"),
        ("SVIX_APP_ID", "app:with:colons"),
        ("RELAY_LOG_FORMAT", "xml"),
        ("RELAY_PARKING_TOPIC", "just-a-name"),
    ],
)
def test_an_invalid_value_is_named(name: str, value: str):
    with pytest.raises(SettingsError, match=name):
        load_settings({"SVIX_AUTH_TOKEN": "sk_test", name: value})


def test_the_token_never_appears_in_an_error_or_a_repr():
    token = "sk_secret_value_123"
    with pytest.raises(SettingsError) as error:
        load_settings({"SVIX_AUTH_TOKEN": token, "RELAY_MAX_IN_FLIGHT": token})
    assert token not in str(error.value)
    assert token not in repr(load_settings({"SVIX_AUTH_TOKEN": token}))


def test_blank_optional_values_are_unset_and_accounts_are_a_list():
    accounts = "a@p.iam.gserviceaccount.com,  b@p.iam.gserviceaccount.com"
    settings = load_settings(
        {
            "SVIX_AUTH_TOKEN": "sk",
            "SVIX_APP_ID": " ",
            "RELAY_PUSH_AUDIENCE": "https://relay.example",
            "RELAY_PUSH_SERVICE_ACCOUNTS": accounts,
        }
    )
    assert settings.svix_app_id is None
    assert settings.push_service_accounts == {
        "a@p.iam.gserviceaccount.com",
        "b@p.iam.gserviceaccount.com",
    }


def test_accounts_without_an_audience_are_refused():
    with pytest.raises(SettingsError, match="RELAY_PUSH_AUDIENCE"):
        load_settings({"SVIX_AUTH_TOKEN": "sk", "RELAY_PUSH_SERVICE_ACCOUNTS": "a@b"})


def test_a_token_pasted_with_a_newline_is_trimmed_and_one_with_spaces_refused():
    assert (
        load_settings({"SVIX_AUTH_TOKEN": "sk_abc.eu\n"}).svix_auth_token.get_secret_value()
        == "sk_abc.eu"
    )
    with pytest.raises(SettingsError, match="SVIX_AUTH_TOKEN is invalid"):
        load_settings({"SVIX_AUTH_TOKEN": "sk_abc\nX-Injected: 1"})


@pytest.mark.parametrize("app_id", [".", "..", "...", " .. ", "a" * 257])
def test_an_application_id_of_dots_or_too_long_stops_the_start(app_id: str):
    assert load_settings({"SVIX_AUTH_TOKEN": "sk", "SVIX_APP_ID": "a" * 256}).svix_app_id
    with pytest.raises(SettingsError, match="SVIX_APP_ID is invalid"):
        load_settings({"SVIX_AUTH_TOKEN": "sk", "SVIX_APP_ID": app_id})


@pytest.mark.parametrize(
    "accounts", [{}, {"RELAY_PUSH_SERVICE_ACCOUNTS": ""}, {"RELAY_PUSH_SERVICE_ACCOUNTS": " , "}]
)
def test_an_audience_without_accounts_stops_the_start_and_names_both_variables(
    accounts: dict[str, str],
):
    # Anyone can mint a Google ID token for any audience: the audience alone proves nothing.
    audience = {"RELAY_PUSH_AUDIENCE": "https://relay.example"}
    with pytest.raises(SettingsError) as error:
        load_settings({"SVIX_AUTH_TOKEN": "sk", **audience, **accounts})
    assert "RELAY_PUSH_AUDIENCE" in str(error.value)
    assert "RELAY_PUSH_SERVICE_ACCOUNTS" in str(error.value)


def test_a_star_lets_any_account_through_deliberately():
    settings = load_settings(
        {
            "SVIX_AUTH_TOKEN": "sk",
            "RELAY_PUSH_AUDIENCE": "https://relay.example",
            "RELAY_PUSH_SERVICE_ACCOUNTS": " * ",
        }
    )
    assert settings.push_service_accounts == {"*"}


def test_a_star_among_named_accounts_is_refused_as_ambiguous():
    with pytest.raises(SettingsError, match="RELAY_PUSH_SERVICE_ACCOUNTS"):
        load_settings(
            {
                "SVIX_AUTH_TOKEN": "sk",
                "RELAY_PUSH_AUDIENCE": "https://relay.example",
                "RELAY_PUSH_SERVICE_ACCOUNTS": "*,a@p.iam.gserviceaccount.com",
            }
        )


def test_channels_are_off_by_default_and_a_bad_template_stops_the_start():
    assert load_settings({"SVIX_AUTH_TOKEN": "t"}).channels is None
    ok = load_settings({"SVIX_AUTH_TOKEN": "t", "RELAY_CHANNELS": "{data.object}:{data.id}"})
    assert ok.channels == "{data.object}:{data.id}"
    with pytest.raises(SettingsError, match=r"RELAY_CHANNELS is invalid: .*names no event field"):
        load_settings({"SVIX_AUTH_TOKEN": "t", "RELAY_CHANNELS": "user:usr"})


def test_event_types_are_created_unless_switched_off():
    assert load_settings({"SVIX_AUTH_TOKEN": "t"}).create_event_types is True
    off = load_settings({"SVIX_AUTH_TOKEN": "t", "RELAY_CREATE_EVENT_TYPES": "false"})
    assert off.create_event_types is False


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The process environment without any of the relay's variables, whatever their case."""
    for name in list(os.environ):
        if name.upper().startswith(("SVIX_", "RELAY_", "GOOGLE_")):
            monkeypatch.delenv(name)
    return monkeypatch


def test_the_process_environment_is_read_like_a_mapping(environment: pytest.MonkeyPatch):
    environment.setenv("SVIX_AUTH_TOKEN", "sk_env")
    environment.setenv("RELAY_MAX_IN_FLIGHT", "7")
    environment.setenv("RELAY_PUSH_AUDIENCE", "https://relay.example")
    environment.setenv("RELAY_PUSH_SERVICE_ACCOUNTS", "a@p.iam.gserviceaccount.com, *x")
    environment.setenv("NOT_RELAY_MAX_EVENTS_PER_REQUEST", "0")
    settings = load_settings()
    assert settings.svix_auth_token.get_secret_value() == "sk_env"
    assert settings.max_in_flight == 7
    assert settings.push_service_accounts == {"a@p.iam.gserviceaccount.com", "*x"}
    assert settings.max_events_per_request == 1000


def test_a_variable_is_read_whatever_the_case_of_its_name(environment: pytest.MonkeyPatch):
    environment.setenv("svix_auth_token", "sk_lower")
    environment.setenv("Relay_Log_Level", "DEBUG")
    settings = load_settings()
    assert settings.svix_auth_token.get_secret_value() == "sk_lower"
    assert settings.log_level == "DEBUG"


def test_the_environment_gets_the_same_errors_as_a_mapping(environment: pytest.MonkeyPatch):
    with pytest.raises(SettingsError) as missing:
        load_settings()
    assert str(missing.value) == (
        "invalid relay configuration: SVIX_AUTH_TOKEN is required but not set"
    )
    environment.setenv("SVIX_AUTH_TOKEN", "sk_env")
    environment.setenv("RELAY_TIME_BUDGET_SECONDS", "soon")
    environment.setenv("RELAY_LOG_FORMAT", "xml")
    with pytest.raises(SettingsError) as invalid:
        load_settings()
    assert str(invalid.value) == (
        "invalid relay configuration: RELAY_TIME_BUDGET_SECONDS is invalid: Input should be a "
        "valid number, unable to parse string as a number; RELAY_LOG_FORMAT is invalid: Input "
        "should be 'json' or 'text'"
    )
