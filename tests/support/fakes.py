"""Test doubles shared by tests: time that moves only when the code under test sleeps, and
keys and certificates made on the spot."""

from __future__ import annotations

import datetime as dt
from typing import Any


class FakeTime:
    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def private_key_pem(key: Any) -> str:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def self_signed_certificate(key: Any, *, common_name: str, dns_names: tuple[str, ...] = ()) -> str:
    """A PEM certificate for `key`, valid from yesterday to tomorrow. With `dns_names` it can
    also serve TLS for those names and act as its own certificate authority."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
    )
    if dns_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False
        ).add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


class FakeEventTypeRegistry:
    """Svix's event types in memory, with a failure to raise on the next calls if set."""

    def __init__(self, states: dict[str, Any] | None = None) -> None:
        from relay.delivery.ports import EventTypeState

        self.states: dict[str, EventTypeState] = dict(states or {})
        self.asked: list[str] = []
        self.created: list[tuple[str, str, str | None]] = []
        self.failure: Exception | None = None

    def event_type_state(self, name: str) -> Any:
        from relay.delivery.ports import EventTypeState

        self.asked.append(name)
        if self.failure is not None:
            raise self.failure
        return self.states.get(name, EventTypeState.MISSING)

    def create_event_type(self, name: str, *, description: str, group: str | None) -> None:
        from relay.delivery.ports import EventTypeState

        if self.failure is not None:
            raise self.failure
        self.created.append((name, description, group))
        self.states[name] = EventTypeState.ACTIVE


class CollectingParkingLot:
    """A parking lot that keeps what it is given, in order."""

    def __init__(self) -> None:
        self.parked: list[Any] = []

    def park(self, event: Any) -> None:
        self.parked.append(event)
