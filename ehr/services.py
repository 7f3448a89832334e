"""Integration writes: connect a location, test it, sync it, book through it, keep its health.

The booking flow's entry points are here (`post_appointment`, `cancel_appointment`,
`find_or_create_patient`); the EHR itself is reached through the connection's port
(`ehr.registry.port_for`), whose adapter keeps the retry and idempotency rules. Everything that
reads or writes PHI for a practice passes the BAA gate (`compliance.gate.require_phi_allowed`)
first.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import date
from typing import Any, Unpack

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import Location
from compliance.gate import require_phi_allowed
from compliance.support_policy import SupportForbidden, refused_in_support_session
from core.tenancy import tenant_context
from ehr import health as live_health
from ehr.errors import RESET_REQUIRED, EHRCredentialsNeedReset, EHRError
from ehr.models import (
    ConnectionHealth,
    ConnectionKind,
    ConnectionState,
    ConnectionStatus,
    EHRConnection,
    new_rate_limit_key,
    state_for,
)
from ehr.native_slots import is_native, refresh_horizon
from ehr.port import AppointmentDetails, Capability, WebhookSource
from ehr.registry import port_for
from ehr.sync import Mirror, SyncReport, full_sync, reconcile_near
from ehr.types import EHRAppointment, EHRPatient, clean_name, phone_e164

log = logging.getLogger("ehr.services")


# --- connecting ------------------------------------------------------------------------------


def webhook_target_url(connection: EHRConnection, public_url: str | None = None) -> str:
    base = (public_url or settings.PORTAL_PUBLIC_URL).rstrip("/")
    return f"{base}/integrations/webhooks/nexhealth/{connection.pk}"


@refused_in_support_session(SupportForbidden.CREDENTIALS)
def connect_location(
    location: Location,
    *,
    kind: str = ConnectionKind.NEXHEALTH,
    base_url: str,
    subdomain: str,
    api_key: str,
    ehr_location_id: int,
    public_url: str | None = None,
    rate_limit_per_minute: int | None = None,
    rate_limits: dict[str, Any] | None = None,
    register_webhooks: bool = True,
) -> EHRConnection:
    """Create or update the location's connection, prove it works, register our webhooks.

    Idempotent: a second call updates the settings, keeps the webhook endpoint (re-activating
    it if the EHR switched it off) and re-subscribes (subscriptions are upserts). Connections of
    one practice that share an API key share one rate-limit scope (NexHealth limits per key).
    """
    require_phi_allowed(location.practice_id)
    with tenant_context(location.practice_id), transaction.atomic():
        conn = EHRConnection.objects.select_related("location").filter(location=location).first()
        sibling_key = next(
            (
                c.rate_limit_key
                for c in EHRConnection.objects.filter(
                    practice_id=location.practice_id, base_url=base_url.rstrip("/")
                ).exclude(location=location)
                if c.api_key == api_key
            ),
            None,
        )
        if conn is None:
            conn = EHRConnection(practice_id=location.practice_id, location=location)
            conn.rate_limit_key = sibling_key or new_rate_limit_key()
        elif conn.api_key != api_key:
            conn.rate_limit_key = sibling_key or new_rate_limit_key()
        conn.kind = kind
        conn.base_url = base_url.rstrip("/")
        conn.subdomain = subdomain
        conn.api_key = api_key
        conn.ehr_location_id = ehr_location_id
        conn.rate_limit_per_minute = rate_limit_per_minute
        conn.rate_limits = rate_limits or {}
        save_connection(conn, location, ehr_location_id)
    check = check_connection(conn)
    if not check.ok:
        raise EHRError(f"connection test failed: {check.detail}")
    if register_webhooks:
        register_webhook_endpoint(conn, public_url=public_url)
    return conn


def save_connection(conn: EHRConnection, location: Location, ehr_location_id: int) -> None:
    """Store a location's connection (any kind) with its health row, and the EHR's id of the
    location on the location itself; inside the caller's tenant context and transaction."""
    conn.save()
    ConnectionHealth.objects.get_or_create(
        connection=conn, defaults={"practice_id": conn.practice_id}
    )
    if location.ehr_id != ehr_location_id:
        location.ehr_id = ehr_location_id
        location.save(update_fields=["ehr_id"])


def register_webhook_endpoint(conn: EHRConnection, *, public_url: str | None = None) -> None:
    """Make sure the EHR posts our events to this connection's URL, signed with a secret we
    hold (encrypted), and that the endpoint is active and subscribed to what we process. An
    EHR without webhooks is polled instead: nothing to register."""
    port = port_for(conn)
    if Capability.WEBHOOKS not in port.capabilities or not isinstance(port, WebhookSource):
        return
    registered = port.register_webhooks(
        webhook_target_url(conn, public_url), conn.webhook_endpoint_id
    )
    with tenant_context(conn.practice_id):
        conn.webhook_endpoint_id = registered.endpoint_id
        conn.webhook_target_url = registered.target_url
        if registered.secret:
            conn.webhook_secret = registered.secret
        conn.save(update_fields=["webhook_endpoint_id", "webhook_target_url", "webhook_secret"])


@dataclass(frozen=True)
class ConnectionCheck:
    state: ConnectionState
    detail: str
    latency_ms: float
    location_name: str = ""

    @property
    def ok(self) -> bool:
        return self.state == ConnectionState.CONNECTED

    def line(self, location_name: str) -> str:
        """What the page and `manage.py test_connection` say about it, in the same words."""
        detail = self.detail.removeprefix(f"{self.state.label}: ")
        return f"{location_name}: {self.state.label} ({self.latency_ms:.0f} ms) — {detail}"


def check_connection(conn: EHRConnection) -> ConnectionCheck:
    """ "Test connection": authenticate afresh and read the location. Records the status and
    the state (`models.state_for`: the one mapping of what went wrong onto its words)."""
    require_phi_allowed(conn.practice_id)
    started = time.monotonic()
    try:
        name = port_for(conn).check()
    except EHRCredentialsNeedReset as exc:
        result = ConnectionCheck(state_for(exc), f"{RESET_REQUIRED}: {exc.advice}", _ms(started))
    except (EHRError, ValueError) as exc:
        result = ConnectionCheck(state_for(exc), f"{type(exc).__name__}: {exc}", _ms(started))
    else:
        result = ConnectionCheck(state_for(None), f"reached location {name!r}", _ms(started), name)
    with tenant_context(conn.practice_id):
        conn.status = ConnectionStatus.CONNECTED if result.ok else ConnectionStatus.ERROR
        conn.state = result.state
        conn.status_detail = result.detail[:1000]
        conn.save(update_fields=["status", "state", "status_detail", "updated_at"])
    return result


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)


# --- syncing ---------------------------------------------------------------------------------


def get_connection(connection_id: int, practice_id: int) -> EHRConnection:
    with tenant_context(practice_id):
        return EHRConnection.objects.select_related("location", "location__practice").get(
            pk=connection_id
        )


def sync_connection(conn: EHRConnection, *, reconcile: bool = False) -> SyncReport:
    """Full sync of one location into the mirror; a reconcile is the same run, and what it had
    to change is the drift it repaired (stored on the connection's health)."""
    require_phi_allowed(conn.practice_id)
    try:
        report = full_sync(conn)
        if is_native(conn):
            # The whole horizon of the EHR's own free slots: the location's free time.
            refresh = refresh_horizon(conn)
            report.fetched["native_slots"] = refresh.stored
    except EHRError as exc:
        with tenant_context(conn.practice_id):
            conn.state = state_for(exc)
            conn.status_detail = f"sync failed: {exc}"[:1000]
            conn.save(update_fields=["state", "status_detail", "updated_at"])
        raise
    now = timezone.now()
    with tenant_context(conn.practice_id), transaction.atomic():
        conn.last_successful_sync_at = now
        if conn.status != ConnectionStatus.DISABLED:
            conn.status = ConnectionStatus.CONNECTED
        conn.status_detail = (
            f"synced: {report.changes} change(s)"
            + (f", {len(report.problems)} problem(s)" if report.problems else "")
        )[:1000]
        conn.save(update_fields=["last_successful_sync_at", "status", "status_detail"])
        health, _ = ConnectionHealth.objects.get_or_create(
            connection=conn, defaults={"practice_id": conn.practice_id}
        )
        health.last_successful_sync_at = now
        health.last_sync_report = report.as_dict()
        fields = ["last_successful_sync_at", "last_sync_report", "updated_at"]
        if reconcile:
            health.last_reconcile_at = now
            health.last_drift = report.changes_by_kind()
            health.drift_total += report.changes
            fields += ["last_reconcile_at", "last_drift", "drift_total"]
        health.save(update_fields=fields)
    if reconcile and report.changes:
        log.warning(
            "reconcile of connection %s repaired drift: %s", conn.pk, report.changes_by_kind()
        )
    return report


def near_reconcile_days() -> int:
    return int(getattr(settings, "EHR_NEAR_RECONCILE_DAYS", 3))


def reconcile_near_days(conn: EHRConnection, days: int | None = None) -> SyncReport:
    """Incremental reconcile of the next `days` days' calendar (EHR_NEAR_RECONCILE_DAYS): the
    repair for a dropped webhook, between full reconciles. Rate-limited like every call."""
    require_phi_allowed(conn.practice_id)
    report = reconcile_near(conn, near_reconcile_days() if days is None else days)
    if report.changes:
        log.warning(
            "near reconcile of connection %s repaired drift: %s",
            conn.pk,
            report.changes_by_kind(),
        )
    return report


def mirror_appointments(conn: EHRConnection, appointments: list[EHRAppointment]) -> None:
    """What a live read found in the EHR goes into the mirror at once (order-safe: an older
    state never overwrites a newer one), so availability stops offering a slot the EHR has
    already given away instead of waiting for a webhook or a reconcile."""
    if not appointments:
        return
    with tenant_context(conn.practice_id), transaction.atomic():
        mirror = Mirror(conn)
        for appointment in appointments:
            mirror.apply_appointment(appointment)


def flush_health(conn: EHRConnection) -> ConnectionHealth:
    """Move the live Redis counters into the dashboard's `ConnectionHealth` row."""
    deltas = live_health.take_counters(conn.health_key)
    latency = live_health.samples(conn.health_key, "latency")
    lag = live_health.samples(conn.health_key, "lag")
    with tenant_context(conn.practice_id), transaction.atomic():
        health, _ = ConnectionHealth.objects.select_for_update().get_or_create(
            connection=conn, defaults={"practice_id": conn.practice_id}
        )
        health.calls += int(deltas.get("calls", 0))
        health.requests += int(deltas.get("requests", 0))
        health.first_try_ok += int(deltas.get("first_try_ok", 0))
        health.errors = live_health.add_counts(health.errors, deltas, "err:")
        health.failures = live_health.add_counts(health.failures, deltas, "fail:")
        health.rate_limit_waits += int(deltas.get("rl_waits", 0))
        health.rate_limit_wait_seconds += float(deltas.get("rl_wait_s", 0.0))
        health.throttled_429 += int(deltas.get("429", 0))
        health.retries += int(deltas.get("retries", 0))
        health.webhooks_received += int(deltas.get("webhooks", 0))
        health.latency_p50_ms = live_health.percentile(latency, 50)
        health.latency_p95_ms = live_health.percentile(latency, 95)
        health.latency_samples = len(latency)
        health.freshness_lag_p50_ms = live_health.percentile(lag, 50)
        health.freshness_lag_p95_ms = live_health.percentile(lag, 95)
        health.last_successful_sync_at = conn.last_successful_sync_at
        health.save()
    return health


# --- booking-side operations (for the booking flow) ------------------------------------------


def post_appointment(conn: EHRConnection, **new: Unpack[AppointmentDetails]) -> EHRAppointment:
    """POST the appointment to the EHR without ever booking it twice, and mirror it (pending).
    `as_request`: on the office's follow-up list (`Capability.REQUEST_MODE` only).

    All ids are EHR ids (`selectors.ehr_ids_for_booking` maps ours). A timeout or 5xx after
    sending makes the adapter look for the appointment (patient, provider, start) before
    retrying. Accepted is not always written: an EHR with `Capability.INSERTION_REPORTS` reports
    the insertion later (announced on `ehr.events`, or read back by the booking's poll).
    Raises `EHRValidationError` (permanent: needs attention), `EHRRateLimited` (re-queue after
    `retry_after`), other `EHRTransientError` (retry with backoff), `EHRWriteUncertain` never
    (the lookup resolves it).
    """
    require_phi_allowed(conn.practice_id)
    accepted = port_for(conn).create_appointment(**new)
    with tenant_context(conn.practice_id), transaction.atomic():
        Mirror(conn).apply_appointment(accepted)
        provisional = new["patient_id"]
        if provisional < 0 and accepted.patient_id is not None and accepted.patient_id > 0:
            adopt_patient_id(conn, provisional, accepted.patient_id)
    refresh_native_soon(conn)
    return accepted


def refresh_native_soon(conn: EHRConnection) -> None:
    """After our own write lands at a native-mode location, re-read the EHR's free slots of the
    near days in the background (the change poll would too; this does not wait for it)."""
    if not is_native(conn):
        return
    from ehr.tasks import queue_for, refresh_native_slots

    args = (conn.pk, conn.practice_id)
    transaction.on_commit(
        lambda: refresh_native_slots.apply_async(args=args, queue=queue_for("sync"))
    )


def adopt_patient_id(conn: EHRConnection, provisional: int, ehr_id: int) -> None:
    """An EHR that creates a patient only with its first appointment (Nextech's prospect) hands
    out a provisional (negative) id until then: from here on the local patient carries the EHR's
    own, so the booking flow recognises the appointment as this patient's."""
    from scheduling.models import Patient

    rows = Patient.objects.filter(location_id=conn.location_id)
    if not rows.filter(ehr_id=ehr_id).exists():
        rows.filter(ehr_id=provisional).update(ehr_id=ehr_id)


def cancel_appointment(conn: EHRConnection, appointment_ehr_id: int) -> EHRAppointment:
    """Cancel in the EHR (idempotent PATCH) and free the slot in the mirror at once."""
    require_phi_allowed(conn.practice_id)
    cancelled = port_for(conn).cancel_appointment(appointment_ehr_id)
    with tenant_context(conn.practice_id), transaction.atomic():
        Mirror(conn).apply_appointment(cancelled)
    refresh_native_soon(conn)
    return cancelled


def find_or_create_patient(
    conn: EHRConnection,
    *,
    first_name: str,
    last_name: str,
    date_of_birth: date,
    phone: str | None = None,
    email: str | None = None,
    provider_id: int | None = None,
) -> tuple[EHRPatient, bool]:
    """The patient in the EHR, never a duplicate: search by name and birth date (preferring the
    same phone), create only when nobody matches. Returns (patient, created)."""
    require_phi_allowed(conn.practice_id)
    ehr = port_for(conn)
    matches = ehr.search_patients(
        name=f"{clean_name(first_name)} {clean_name(last_name)}",
        date_of_birth=date_of_birth,
    )
    first, last = clean_name(first_name).lower(), clean_name(last_name).lower()
    exact = [
        p for p in matches if p.first_name.lower() == first and p.last_name.lower() == last
    ] or matches
    if exact:
        e164 = phone_e164(phone) if phone else ""
        same_phone = [p for p in exact if e164 and p.phone == e164]
        return min(same_phone or exact, key=lambda p: p.id), False
    created = ehr.create_patient(
        first_name=first_name,
        last_name=last_name,
        date_of_birth=date_of_birth,
        phone_number=phone,
        email=email,
        provider_id=provider_id,
    )
    return created, True
