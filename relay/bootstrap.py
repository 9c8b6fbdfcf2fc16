"""The composition root: the one place that turns settings into a wired relay.

Tests and tools build their own relay from here with other adapters (a sender that talks to the
local Svix emulator, a parking lot of their own) instead of patching anything.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from relay.core.channels import parse_channel_templates
from relay.core.errors import SettingsError
from relay.delivery.event_types import UnknownEventTypes
from relay.delivery.pacer import Pacer
from relay.delivery.ports import EventTypeRegistry, MessageSender, ParkingLot
from relay.delivery.service import Relay, RetryPolicy
from relay.logs import configure_logging, log
from relay.operations.catalogue import DEFAULT_CATALOGUE, CatalogueError, catalogue_names
from relay.pubsub.parking import PubSubParkingLot
from relay.settings import Settings, load_settings
from relay.svix.direct import DirectSvixSender
from relay.svix.event_types import SvixEventTypes
from relay.svix.listing import SvixReader
from relay.svix.sdk import SdkSvixSender

if TYPE_CHECKING:
    from relay.pubsub.push_auth import PushAuthenticator

# A Retry-After longer than this is taken for this long (an answer of hours is a bug somewhere,
# not a reason to hold an event that long); past the time budget the event is answered 429.
RETRY_AFTER_CAP_SECONDS = 60.0


@dataclass(frozen=True)
class Application:
    """What an entry point needs: the settings, the service, and the caller check if any."""

    settings: Settings
    relay: Relay
    authenticator: PushAuthenticator | None


def build_relay(
    settings: Settings,
    *,
    sender: MessageSender | None = None,
    parking: ParkingLot | None = None,
    event_types: EventTypeRegistry | None = None,
    catalogue: Path = DEFAULT_CATALOGUE,
) -> Relay:
    """`event_types`: where to create the types the catalogue lacks; by default the sender,
    when it is one of ours (both speak to Svix's event-type API as well)."""
    if sender is None:
        kind = DirectSvixSender if settings.svix_client == "direct" else SdkSvixSender
        sender = kind(
            token=settings.svix_auth_token.get_secret_value(),
            server_url=settings.svix_server_url,
            timeout_seconds=settings.svix_timeout_seconds,
        )
    if parking is None and settings.parking_topic:
        parking = PubSubParkingLot(settings.parking_topic)
    return Relay(
        sender=sender,
        pacer=Pacer(
            retry_floor=settings.backoff_initial_seconds, retry_cap=RETRY_AFTER_CAP_SECONDS
        ),
        policy=RetryPolicy(
            time_budget=settings.time_budget_seconds,
            backoff_initial=settings.backoff_initial_seconds,
            backoff_max=settings.backoff_max_seconds,
        ),
        max_in_flight=settings.max_in_flight,
        fixed_app_id=settings.svix_app_id,
        parking=parking,
        channel_templates=parse_channel_templates(settings.channels or ""),
        event_types=_unknown_event_types(settings, event_types or sender, catalogue),
    )


def _unknown_event_types(
    settings: Settings, registry: object, catalogue_path: Path
) -> UnknownEventTypes | None:
    if not settings.create_event_types or not isinstance(
        registry, DirectSvixSender | SdkSvixSender
    ):
        return None
    if not catalogue_path.exists():
        # A deployment without the catalogue still runs: each event type is looked up once.
        log.warning("no event catalogue at %s: each event type is checked in Svix", catalogue_path)
        return UnknownEventTypes(registry, catalogue=frozenset())
    try:
        catalogue = catalogue_names(catalogue_path)
    except CatalogueError as exc:
        raise SettingsError(f"the event catalogue cannot be read: {exc}") from None
    return UnknownEventTypes(registry, catalogue=catalogue)


def build_svix_reader(settings: Settings) -> SvixReader:
    """What the on-call's tools list and look up in Svix with."""
    return SvixReader(
        token=settings.svix_auth_token.get_secret_value(),
        server_url=settings.svix_server_url,
        timeout_seconds=settings.svix_timeout_seconds,
    )


def build_event_type_store(settings: Settings) -> SvixEventTypes:
    """What `event-types sync` reads and writes Svix's event types with (the svix SDK)."""
    return SvixEventTypes(
        token=settings.svix_auth_token.get_secret_value(),
        server_url=settings.svix_server_url,
        timeout_seconds=settings.svix_timeout_seconds,
    )


def build_authenticator(settings: Settings) -> PushAuthenticator | None:
    if not settings.push_audience:
        return None
    # Imported only when used: google-auth and cryptography add to every cold start.
    from relay.pubsub.push_auth import GOOGLE_CERTS_URL, PushAuthenticator

    return PushAuthenticator(
        audience=settings.push_audience,
        allowed_service_accounts=settings.push_service_accounts,
        certs_url=settings.push_certs_url or GOOGLE_CERTS_URL,
    )


def application_from_environment() -> Application:
    """Read the settings once, set up logging, and wire the relay: called at start-up."""
    settings = load_settings()
    configure_logging(
        fmt=settings.log_format,
        level=settings.log_level,
        secrets=[settings.svix_auth_token.get_secret_value()],
    )
    application = Application(settings, build_relay(settings), build_authenticator(settings))
    log.log(
        logging.INFO,
        "relay started: %s; %s; %s; %s; %s",
        f"Svix application {settings.svix_app_id}"
        if settings.svix_app_id
        else "one Svix application per event project",
        f"parking topic {settings.parking_topic}"
        if settings.parking_topic
        else "no parking topic: permanent failures are answered 4xx",
        f"checking push tokens for audience {settings.push_audience}"
        if settings.push_audience
        else "push authentication is left to the platform (RELAY_PUSH_AUDIENCE unset)",
        f"channels {settings.channels}" if settings.channels else "no channels",
        "creating the event types the catalogue lacks"
        if settings.create_event_types
        else "creating no event types (RELAY_CREATE_EVENT_TYPES=false)",
    )
    return application
