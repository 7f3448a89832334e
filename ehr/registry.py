"""Which adapter serves a connection: the one place that knows the adapters by name."""

from __future__ import annotations

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


def process_webhook(delivery_id: int, practice_id: int | None = None) -> str:
    """Apply one stored webhook delivery, through the receiver of the adapter that took it in
    (only NexHealth's receives webhooks so far). Safe to run twice, or concurrently."""
    from ehr.nexhealth import webhooks

    return webhooks.process_delivery(delivery_id, practice_id)
