"""Integration reads: a location's connection, EHR ids for a booking, health for the connection
page and the dashboard."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from accounts.models import Location, Practice
from ehr import health as live_health
from ehr.models import AppointmentTypeLink, ConnectionHealth, EHRConnection
from ehr.port import Capability
from ehr.registry import is_polled, port_for
from scheduling.models import AppointmentType, Operatory, Provider

log = logging.getLogger("ehr.selectors")


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


@dataclass(frozen=True)
class HealthFigures:
    """One connection's integration health, the same figures for every adapter (the
    connection page and the dashboard's integration health panel both show these).

    - first-try success: calls answered on their first attempt, of all calls made (a call
      retried, refreshed or looked up after a lost answer was not);
    - failures by reason: calls that failed in the end, by the error's kind;
    - rate-limit waits: how often and how long calls waited for the EHR's rate limit;
    - freshness lag: from a change in the EHR to our seeing it (webhook lag for an EHR that
      posts webhooks, poll lag for one we poll), over the recent window;
    plus the per-attempt figures (attempts, errors by kind, latency)."""

    connection_id: int
    location: str
    kind: str
    state: str
    status_detail: str
    requests: int
    first_try_ok: int
    failures: dict[str, int]
    rate_limit_waits: int
    rate_limit_wait_seconds: float
    freshness_source: str
    freshness_lag_p50_ms: float | None
    freshness_lag_p95_ms: float | None
    calls: int
    errors: dict[str, int]
    throttled_429: int
    retries: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    last_successful_sync_at: datetime | None
    last_reconcile_at: datetime | None
    drift_total: int

    @property
    def first_try_rate(self) -> float | None:
        return self.first_try_ok / self.requests if self.requests else None

    @property
    def first_try_percent(self) -> int | None:
        rate = self.first_try_rate
        return None if rate is None else round(rate * 100)

    @property
    def failed(self) -> int:
        return sum(self.failures.values())


def connections_with_health(practice: Practice | int) -> list[EHRConnection]:
    """The practice's connections with their locations and stored health, in one query;
    credentials deferred (nothing here needs one)."""
    return list(
        EHRConnection.objects.for_practice(practice)
        .select_related("location", "health")
        .defer("api_key", "webhook_secret")
        .order_by("location__name", "id")
    )


def locations_with_connections(practice: Practice | int) -> list[Location]:
    """The practice's locations, each with its connection (if any) and that connection's
    stored health, in one query; credentials deferred (the page never shows one)."""
    return list(
        Location.objects.for_practice(practice)
        .select_related("ehr_connection__health")
        .defer("ehr_connection__api_key", "ehr_connection__webhook_secret")
        .order_by("name", "id")
    )


def health_figures(connection: EHRConnection) -> HealthFigures:
    """Persisted totals plus what Redis holds since the last flush (one round trip); the live
    window's percentiles win over the stored ones. Redis away: the stored figures alone."""
    stored: ConnectionHealth | None = getattr(connection, "health", None)
    try:
        live = live_health.live(connection.health_key)
    except Exception:  # never break a page over the live window
        log.warning("live EHR health unavailable for connection %s", connection.pk, exc_info=True)
        live = {"counters": {}}
    counters: dict[str, float] = live.get("counters", {})

    def total(field: str, counter: str) -> int:
        return (getattr(stored, field) if stored else 0) + int(counters.get(counter, 0))

    def pick(name: str) -> float | None:
        value = live.get(name)
        return getattr(stored, name) if value is None and stored is not None else value

    return HealthFigures(
        connection_id=connection.pk,
        location=connection.location.name,
        kind=connection.get_kind_display(),
        state=connection.state_label,
        status_detail=connection.status_detail,
        requests=total("requests", "requests"),
        first_try_ok=total("first_try_ok", "first_try_ok"),
        failures=live_health.add_counts(stored.failures if stored else {}, counters, "fail:"),
        rate_limit_waits=total("rate_limit_waits", "rl_waits"),
        rate_limit_wait_seconds=(stored.rate_limit_wait_seconds if stored else 0.0)
        + float(counters.get("rl_wait_s", 0.0)),
        freshness_source="poll lag" if is_polled(connection) else "webhook lag",
        freshness_lag_p50_ms=pick("freshness_lag_p50_ms"),
        freshness_lag_p95_ms=pick("freshness_lag_p95_ms"),
        calls=total("calls", "calls"),
        errors=live_health.add_counts(stored.errors if stored else {}, counters, "err:"),
        throttled_429=total("throttled_429", "429"),
        retries=total("retries", "retries"),
        latency_p50_ms=pick("latency_p50_ms"),
        latency_p95_ms=pick("latency_p95_ms"),
        last_successful_sync_at=connection.last_successful_sync_at,
        last_reconcile_at=stored.last_reconcile_at if stored else None,
        drift_total=stored.drift_total if stored else 0,
    )
