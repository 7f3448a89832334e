"""Inbound EHR webhooks: verify, record once, acknowledge fast, process in a task.

`POST /integrations/webhooks/nexhealth/<connection_id>` (public: the EHR authenticates by
signature, see `portal.middleware.PUBLIC_PREFIXES`):

1. The connection's secret verifies `X-Signature` = hex HMAC-SHA256 over
   `"{X-Timestamp}.{raw body}"` (constant-time compare); a timestamp more than 5 minutes old or
   ahead is refused. Bad or missing signature, or an unknown connection id -> the same 401 and
   nothing is stored; no BAA in force for the practice -> 403 and nothing is stored (the PHI
   gate).
2. The message is stored once per (connection, `delivery_id` of the signed body; a body without
   one -> 400) in `WebhookDelivery` (payload encrypted: it can carry PHI). A duplicate gets 200
   and is not processed again. The unsigned `X-Delivery-Id` header is not used.
3. 200 goes back at once; `integrations.process_webhook` does the work (booking insertion
   results on the `bookings` queue, the rest on `sync`). If the broker refuses the task we answer
   503, so the EHR retries the delivery and the stored row is re-queued then.

Processing (`process_delivery`) is idempotent (the row is locked and its status checked) and
order-safe (`sync.Mirror.apply_appointment` keeps the newest state per appointment).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from compliance.gate import phi_allowed
from core import safejson
from core.bounds import BIGINT_MAX, BIGINT_MIN, instant_in_range
from core.tenancy import cross_tenant, tenant_context
from ehr import events
from ehr.health import Figure, HealthRecorder
from ehr.models import ConnectionStatus, DeliveryStatus, EHRConnection, WebhookDelivery
from ehr.nexhealth import normalize as norm
from ehr.nexhealth.client import client_for
from ehr.sync import Mirror, SyncReport

log = logging.getLogger("ehr.nexhealth.webhooks")

SIGNATURE_HEADER = "X-Signature"
TIMESTAMP_HEADER = "X-Timestamp"
REQUEUE_DUPLICATE_AFTER = timedelta(seconds=10)
# A caller may be on the line for these (the insertion result of a booking we posted).
URGENT_EVENTS = frozenset({"appointment_insertion"})

# --- signature -------------------------------------------------------------------------------


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_problem(
    secret: str,
    timestamp: str | None,
    body: bytes,
    signature: str | None,
    *,
    now: float | None = None,
    tolerance: int | None = None,
) -> str | None:
    """Why this message must be refused, or None if it is authentic and fresh."""
    if tolerance is None:
        tolerance = int(getattr(settings, "EHR_WEBHOOK_TOLERANCE_SECONDS", 300))
    if not secret:
        return "no webhook secret on this connection"
    if not timestamp or not signature:
        return "missing signature or timestamp"
    if not timestamp.strip().isdigit():
        return "malformed timestamp"
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > tolerance:
        return "timestamp outside the tolerance window"
    expected = sign(secret, timestamp.strip(), body)
    if not hmac.compare_digest(expected.encode(), signature.strip().lower().encode()):
        return "signature mismatch"
    return None


# --- the receiver ----------------------------------------------------------------------------


def _connection_practice(connection_id: int) -> int | None:
    """Which practice a connection belongs to: the one read the receiver makes across tenants
    (the URL names a connection, not a practice); everything after runs in that tenant."""
    with cross_tenant("webhook receiver: resolve the connection's practice"):
        return (
            EHRConnection.objects.filter(pk=connection_id)
            .values_list("practice_id", flat=True)
            .first()
        )


REFUSED = {"error": "invalid signature"}
# Verified against for an unknown connection, so it costs what a known one's refusal costs.
_NO_SECRET = "no-such-connection"


def _refused() -> JsonResponse:
    return JsonResponse(REFUSED, status=401)


@csrf_exempt
@require_POST
def nexhealth_webhook(request: HttpRequest, connection_id: int) -> HttpResponse:
    body = request.body
    timestamp = request.headers.get(TIMESTAMP_HEADER)
    signature = request.headers.get(SIGNATURE_HEADER)
    practice_id = _connection_practice(connection_id)
    if practice_id is None:
        # Answered exactly as a known connection's bad signature: the endpoint must not tell a
        # prober which connection ids exist.
        signature_problem(_NO_SECRET, timestamp, body, signature)
        return _refused()
    with tenant_context(practice_id):
        conn = EHRConnection.objects.select_related("location").get(pk=connection_id)
        problem = signature_problem(conn.webhook_secret, timestamp, body, signature)
        if problem:
            log.warning("webhook for connection %s refused: %s", connection_id, problem)
            return _refused()
        if conn.status == ConnectionStatus.DISABLED:
            return JsonResponse({"error": "connection disabled"}, status=403)
        if not phi_allowed(practice_id):
            # No BAA in force: store nothing (the payload may be PHI). The EHR retries for two
            # days, so an agreement signed meanwhile still gets the events.
            return JsonResponse({"error": "baa_required"}, status=403)
        try:
            payload = safejson.loads(body)
        except ValueError:
            return JsonResponse({"error": "body must be JSON"}, status=400)
        if not isinstance(payload, dict) or not isinstance(payload.get("event"), str):
            return JsonResponse({"error": "not a webhook event"}, status=400)
        # Deduplication keys on the id inside the signed body only: a header is not signed, so
        # a captured body replayed under a fresh header would otherwise be processed again.
        delivery_id = payload.get("delivery_id")
        if not isinstance(delivery_id, str) or not delivery_id.strip():
            return JsonResponse({"error": "delivery_id is required in the signed body"}, status=400)
        refused = malformed(payload, delivery_id)
        if refused:
            log.warning("webhook for connection %s refused: %s", connection_id, refused)
            return JsonResponse({"error": refused}, status=400)
        delivery, created = record_delivery(conn, delivery_id, payload)
        requeue = (
            not created
            and delivery.status == DeliveryStatus.PENDING
            and delivery.received_at < timezone.now() - REQUEUE_DUPLICATE_AFTER
        )
    if created or requeue:
        from ehr.tasks import enqueue_webhook

        try:
            enqueue_webhook(delivery)
        except Exception:
            log.exception("could not queue webhook delivery %s", delivery.pk)
            return JsonResponse({"error": "try again"}, status=503)
    return JsonResponse({"ok": True, "duplicate": not created}, status=200)


def _resource_id(payload: dict[str, Any]) -> int | None:
    data = payload.get("data") or {}
    if not isinstance(data, dict):
        return None
    for key in ("appointment", "document", "patient"):
        if isinstance(data.get(key), dict):
            return norm.to_int(data[key].get("id"))
    return norm.to_int(data.get("provider_id"))


def _created_at(payload: dict[str, Any]) -> datetime | None:
    """The EHR's creation time, or None when absent or unusable (it only feeds the lag)."""
    try:
        value = norm.to_datetime(payload.get("created_at"), "created_at")
    except (ValueError, OverflowError):
        return None
    return value if value is not None and instant_in_range(value) else None


def malformed(payload: dict[str, Any], delivery_id: str) -> str | None:
    """Why a signed message cannot be stored as it is (a 400: retrying will not help), or None.
    Each value is checked against the column it goes into before it reaches PostgreSQL."""
    if len(delivery_id) > 100 or not delivery_id.isprintable():
        return "delivery_id must be printable text of at most 100 characters"
    event = payload["event"]
    if len(event) > 64 or not event.isprintable():
        return "event must be printable text of at most 64 characters"
    if not isinstance(payload.get("event_name") or "", str):
        return "event_name must be text"
    if not isinstance(payload.get("data") or {}, dict):
        return "data must be an object"
    try:
        resource_id = _resource_id(payload)
    except ValueError:
        return "the resource id is not an integer"
    if resource_id is not None and not BIGINT_MIN <= resource_id <= BIGINT_MAX:
        return "the resource id is out of range"
    return None


def record_delivery(
    conn: EHRConnection, delivery_id: str, payload: dict[str, Any]
) -> tuple[WebhookDelivery, bool]:
    """Store the message once; (row, created). Call inside the connection's tenant context."""
    created_at = _created_at(payload)
    try:
        with transaction.atomic():
            delivery = WebhookDelivery.objects.create(
                practice_id=conn.practice_id,
                connection=conn,
                delivery_id=delivery_id[:100],
                event=str(payload.get("event"))[:64],
                event_name=str(payload.get("event_name") or "")[:100],
                resource_ehr_id=_resource_id(payload),
                ehr_created_at=created_at,
                payload=payload,
            )
    except IntegrityError:
        existing = WebhookDelivery.objects.get(connection=conn, delivery_id=delivery_id[:100])
        return existing, False
    recorder = HealthRecorder(conn.health_key)
    if created_at is not None:
        lag = (timezone.now() - created_at).total_seconds()
        recorder.record(Figure.FRESHNESS, lag, "webhooks")
    else:
        recorder.record(Figure.COUNT, reason="webhooks")
    return delivery, True


# --- processing ------------------------------------------------------------------------------


Handled = tuple[DeliveryStatus, str]  # how the delivery ends, and what was done (its outcome)


def _ignored(why: str) -> Handled:
    return DeliveryStatus.IGNORED, f"ignored: {why}"


def on_appointment_insertion(connection: EHRConnection, data: dict[str, Any]) -> Handled:
    """Hook for the booking flow: NexHealth finished (or failed) writing an appointment we
    posted. `data` is `{"appointment": {...}, "status": "complete" | "failed"}`.

    Mirrors the appointment (a failed insertion cancels its mirror row, if any), then confirms
    or fails our booking of it (announced on `ehr.events`, booking listens). Runs inside the
    connection's tenant context and a transaction.
    """
    raw = data.get("appointment")
    if not isinstance(raw, dict):
        return _ignored("no appointment")
    status = data.get("status")
    if status in ("complete", "failed") and raw.get("insertion_status") != status:
        raw = {**raw, "insertion_status": status}
    appointment = norm.appointment(raw)
    return _with_booking(Mirror(connection).apply_appointment(appointment), connection, appointment)


def _with_booking(mirrored: str, connection: EHRConnection, appointment: Any) -> Handled:
    """The mirror's outcome, plus what the listeners (our booking of it) did, if anything."""
    replies = events.announce_appointment(connection, appointment)
    return DeliveryStatus.PROCESSED, "; ".join([mirrored, *replies])


def on_document_insertion(connection: EHRConnection, data: dict[str, Any]) -> Handled:
    """Hook for the calls/notes flow: an encounter note was written to the record (or failed).
    The note's task polls the document, so nothing is done with it here yet."""
    return _ignored("no document handler yet")


def process_delivery(delivery_pk: int, practice_id: int | None = None) -> str:
    """Apply one stored webhook to the mirror, once. Safe to run twice, or concurrently."""
    if practice_id is None:
        with cross_tenant("webhook task: resolve the delivery's practice"):
            practice_id = (
                WebhookDelivery.objects.filter(pk=delivery_pk)
                .values_list("practice_id", flat=True)
                .first()
            )
        if practice_id is None:
            return "missing"
    with tenant_context(practice_id):
        peek = WebhookDelivery.objects.select_related("connection").filter(pk=delivery_pk).first()
        if peek is None or peek.status != DeliveryStatus.PENDING:
            return peek.status if peek else "missing"
        # Network reads happen before the transaction (never hold row locks across HTTP).
        prefetched: Any = None
        payload = peek.payload or {}
        data = payload.get("data") or {}
        conn = peek.connection
        if peek.event == "working_hours_updated" and _for_this_location(conn, payload):
            provider_id = norm.to_int(data.get("provider_id"))
            if provider_id is not None:
                prefetched = client_for(conn).working_hours(provider_id=provider_id)
        with transaction.atomic():
            # Only the delivery row: a bare FOR UPDATE would also lock the joined connection and
            # location rows, which a booking's commit takes KEY SHARE on (its deferred foreign
            # keys) in the other order: a deadlock, found by the booking benchmark's burst.
            delivery = (
                WebhookDelivery.objects.select_for_update(of=("self",))
                .select_related("connection", "connection__location")
                .get(pk=delivery_pk)
            )
            if delivery.status != DeliveryStatus.PENDING:
                return str(delivery.status)
            delivery.attempts += 1
            try:
                with transaction.atomic():
                    status, outcome = _handle(
                        delivery.connection, delivery.event, payload, prefetched
                    )
            except (KeyError, TypeError, ValueError) as exc:
                # A malformed message will not get better by retrying: keep it, say why.
                # The reason is kept on the row; a log line gets its kind only (values in it
                # can be a patient's).
                log.warning("webhook delivery %s is malformed: %s", delivery_pk, type(exc).__name__)
                outcome, status = f"failed: malformed ({exc})", DeliveryStatus.FAILED
            delivery.status = status
            delivery.outcome = outcome[:200]
            delivery.processed_at = timezone.now()
            delivery.save(update_fields=["attempts", "status", "outcome", "processed_at"])
            return outcome


def _for_this_location(conn: EHRConnection, payload: dict[str, Any]) -> bool:
    location_id = norm.to_int(payload.get("location_id"))
    return location_id is None or conn.ehr_location_id in (None, location_id)


def _handle(conn: EHRConnection, event: str, payload: dict[str, Any], prefetched: Any) -> Handled:
    data = payload.get("data") or {}
    if not _for_this_location(conn, payload):
        return _ignored("another location")
    if event in ("appointment_created", "appointment_updated"):
        raw = data.get("appointment")
        if not isinstance(raw, dict):
            return _ignored("no appointment")
        appointment = norm.appointment(raw)
        mirrored = Mirror(conn).apply_appointment(appointment)
        if appointment.cancelled:  # a cancellation in the EHR cancels our booking of it
            return _with_booking(mirrored, conn, appointment)
        return DeliveryStatus.PROCESSED, mirrored
    if event == "appointment_insertion":
        return on_appointment_insertion(conn, data)
    if event == "working_hours_updated":
        provider_id = norm.to_int(data.get("provider_id"))
        if provider_id is None or prefetched is None:
            return _ignored("no provider")
        report = SyncReport()
        Mirror(conn, report).replace_working_hours(prefetched, provider_ehr_id=provider_id)
        changes = report.changes_by_kind().get("working_hours", 0)
        return DeliveryStatus.PROCESSED, f"working hours: {changes} change(s)"
    if event == "document_insertion":
        return on_document_insertion(conn, data)
    return _ignored(event)
