"""Integration reads: a location's connection, EHR ids for a booking, health for the dashboard."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from accounts.models import Location, Practice
from ehr import health as live_health
from ehr.models import AppointmentTypeLink, ConnectionHealth, EHRConnection
from ehr.port import Capability
from ehr.registry import port_for
from scheduling.models import AppointmentType, Operatory, Provider


def connection_for_location(location: Location | int) -> EHRConnection | None:
    """The location's EHR connection (call inside the practice's tenant context)."""
    location_id = location if isinstance(location, int) else location.pk
    return EHRConnection.objects.select_related("location").filter(location_id=location_id).first()


def capabilities(connection: EHRConnection | None) -> frozenset[Capability]:
    """What the connection's EHR can do (nothing without a connection): booking asks whether a
    request goes to the EHR's follow-up list and whether a cancel is only a request."""
    if connection is None:
        return frozenset()
    return port_for(connection).capabilities


def connections_for_practice(practice: Practice | int) -> list[EHRConnection]:
    return list(
        EHRConnection.objects.for_practice(practice).select_related("location").order_by("id")
    )


def ehr_type_id(connection: EHRConnection, appointment_type: AppointmentType | int) -> int | None:
    """Our appointment type's id in the EHR at this connection (types are per EHR location)."""
    type_id = appointment_type if isinstance(appointment_type, int) else appointment_type.pk
    return (
        AppointmentTypeLink.objects.filter(connection=connection, appointment_type_id=type_id)
        .values_list("ehr_id", flat=True)
        .first()
    )


@dataclass(frozen=True)
class BookingIds:
    """What `services.post_appointment` needs, in EHR ids."""

    provider_id: int
    operatory_id: int | None
    appointment_type_id: int | None
    descriptor_ids: list[int]


def ehr_ids_for_booking(
    connection: EHRConnection,
    *,
    provider: Provider,
    operatory: Operatory | None,
    appointment_type: AppointmentType,
) -> BookingIds:
    """Map a slot of the mirror onto the EHR's ids. Descriptors: the type's codes at this
    location (posting them explicitly; NexHealth would otherwise use the type's own mapping).
    The room is sent only to an EHR that schedules rooms (`Capability.OPERATORIES`): elsewhere
    it is ours alone, with no EHR id to send."""
    if provider.ehr_id is None:
        raise ValueError(f"provider {provider.pk} has no EHR id (not synced)")
    if Capability.OPERATORIES not in capabilities(connection):
        operatory = None
    if operatory is not None and operatory.ehr_id is None:
        raise ValueError(f"operatory {operatory.pk} has no EHR id (not synced)")
    descriptor_ids = [
        d
        for d in appointment_type.descriptors.filter(
            location_id=connection.location_id, ehr_id__isnull=False
        ).values_list("ehr_id", flat=True)
        if d is not None
    ]
    return BookingIds(
        provider_id=provider.ehr_id,
        operatory_id=operatory.ehr_id if operatory is not None else None,
        appointment_type_id=ehr_type_id(connection, appointment_type),
        descriptor_ids=sorted(descriptor_ids),
    )


def connection_health(connection: EHRConnection) -> dict[str, Any]:
    """The dashboard's figures: persisted totals plus what Redis holds since the last flush."""
    stored = ConnectionHealth.objects.filter(connection=connection).first()
    live = live_health.live(connection.health_key)
    counters = live["counters"]
    errors = dict(stored.errors) if stored else {}
    for name, value in counters.items():
        if name.startswith("err:"):
            errors[name[4:]] = int(errors.get(name[4:], 0)) + int(value)
    return {
        "status": connection.status,
        "status_detail": connection.status_detail,
        "calls": (stored.calls if stored else 0) + int(counters.get("calls", 0)),
        "errors": errors,
        "rate_limit_waits": (stored.rate_limit_waits if stored else 0)
        + int(counters.get("rl_waits", 0)),
        "throttled_429": (stored.throttled_429 if stored else 0) + int(counters.get("429", 0)),
        "retries": (stored.retries if stored else 0) + int(counters.get("retries", 0)),
        "latency_p50_ms": live["latency_p50_ms"],
        "latency_p95_ms": live["latency_p95_ms"],
        "webhooks_received": (stored.webhooks_received if stored else 0)
        + int(counters.get("webhooks", 0)),
        "webhook_lag_p50_ms": live["webhook_lag_p50_ms"],
        "webhook_lag_p95_ms": live["webhook_lag_p95_ms"],
        "last_successful_sync_at": connection.last_successful_sync_at,
        "last_reconcile_at": stored.last_reconcile_at if stored else None,
        "last_drift": stored.last_drift if stored else {},
        "drift_total": stored.drift_total if stored else 0,
    }
