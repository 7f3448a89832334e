"""Which adapter serves a connection: the one place that knows the adapters by name."""

from __future__ import annotations

from typing import Any

from accounts.models import Location
from ehr.models import ConnectionKind, EHRConnection
from ehr.port import EHRPort


def port_for(connection: EHRConnection) -> EHRPort:
    """The connection's EHR, through its adapter (cached per connection and credentials)."""
    if connection.kind in (ConnectionKind.NEXHEALTH, ConnectionKind.SANDBOX):
        from ehr.nexhealth.client import client_for

        return client_for(connection)
    if connection.kind == ConnectionKind.NEXTECH:
        from ehr.nextech.config import NextechConfig
        from ehr.nextech.port import port_for_config

        return port_for_config(NextechConfig.from_connection(connection), connection.pk)
    raise ValueError(f"no EHR adapter for connection kind {connection.kind!r}")


def is_polled(connection: EHRConnection) -> bool:
    """Whether we learn of the EHR's changes by asking (Nextech: no webhooks) rather than by
    webhook; known from the kind alone, so pages need no credentials to say it."""
    return connection.kind == ConnectionKind.NEXTECH


def connect_nextech(location: Location, **settings: Any) -> tuple[EHRConnection, Any]:
    """Connect a location to Nextech (``ehr.nextech.connect.connect_location``'s arguments:
    practice id, location id, client and service user credentials, URLs); returns the
    connection and its test (``services.ConnectionCheck``)."""
    from ehr.nextech.connect import connect_location

    return connect_location(location, **settings)


def webhook_is_urgent(event: str) -> bool:
    """Whether someone may be waiting on a delivery of `event` (a booking's insertion result):
    it goes to the bookings queue, ahead of mirror updates."""
    from ehr.nexhealth import webhooks

    return event in webhooks.URGENT_EVENTS


def process_webhook(delivery_id: int, practice_id: int | None = None) -> str:
    """Apply one stored webhook delivery, through the receiver of the adapter that took it in
    (only NexHealth's receives webhooks so far). Safe to run twice, or concurrently."""
    from ehr.nexhealth import webhooks

    return webhooks.process_delivery(delivery_id, practice_id)
