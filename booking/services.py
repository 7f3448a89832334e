"""Bookings: from a held slot to an appointment the EHR reports written, nothing lost or doubled.

1. `create_booking` (the API): in ONE transaction, lock the hold, mark it booked, write the
   `Booking` (pending) and an `OutboxMessage`. The same Idempotency-Key with the same body
   answers the same booking; with another body, `IdempotencyConflict`.
2. The outbox relay (`relay_outbox`, on commit and on a beat) hands undispatched rows to Celery
   (`SELECT ... FOR UPDATE SKIP LOCKED`): a broker down at commit time loses nothing. A sent row
   whose work is not acknowledged within `BOOKING_OUTBOX_ACK_SECONDS` (the booking still
   pending, no later run scheduled) is sent again: a broker that lost its queue loses nothing.
3. `process_booking` (the task's body) is idempotent: one run per booking at a time (a session
   advisory lock, freed by PostgreSQL if the worker dies), skip unless pending, find or create
   the patient, re-check the slot live in the EHR (adopting our own appointment if an earlier,
   killed run already posted it; at a location in native mode also asking the EHR's own free
   slots, which show blocks and template changes), post through `ehr.services.post_appointment`.
4. The booking turns `confirmed` only when the EHR reports the appointment written
   (`on_ehr_appointment`: announced on `ehr.events` by the adapter's webhook, or read back by
   the polling fallback).
   Permanent failures mark it `failed` with a reason staff can act on and release the hold;
   failed bookings are the practice's "needs attention" queue.

A type in request mode (`BookingMode.REQUEST`) is booked as a request staff confirm. An EHR with
`Capability.REQUEST_MODE` (Nextech) takes it onto its follow-up list: the booking is
`requested` once the EHR holds it and `confirmed` when its staff confirm it there (found by the
change poll), `declined` if they cancel it instead. For any other EHR the request waits in our
front desk's queue: `requested` at once, nothing sent, the slot kept claimed until staff approve
it (then it is booked through the pipeline above) or decline it, for at most
`BOOKING_REQUEST_HOLD_HOURS` and never past the appointment's start (`expire_requests` declines
it then). A cancel asked of an EHR with `Capability.CANCEL_REQUESTS` (Nextech: a request its
staff act on) leaves the booking `cancel_requested`, its slot still claimed, until the EHR
reports the appointment cancelled.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import date, timedelta
from typing import Any, cast

import psycopg.errors
from django.conf import settings
from django.db import IntegrityError, OperationalError, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from accounts.models import Practice, User
from booking.failures import FailureCategory, reason_for
from compliance import context as audit_ctx
from compliance.crypto import blind_index
from core.locks import blocking_lock, session_lock
from core.outcome import Outcome
from core.tenancy import cross_tenant, tenant_context
from ehr.errors import EHRError, EHRNotFound, EHRSlotTaken, EHRTransientError, EHRValidationError
from ehr.events import trouble_listener
from ehr.models import EHRConnection
from ehr.native_slots import is_native, still_offered
from ehr.port import Capability
from ehr.registry import port_for
from ehr.selectors import capabilities, connection_for_location, ehr_ids_for_booking
from ehr.services import (
    adopt_patient_id,
    cancel_appointment,
    find_or_create_patient,
    mirror_appointments,
    post_appointment,
)
from ehr.types import EHRAppointment, EHRTrouble, clean_name
from scheduling.models import (
    ApiClient,
    Booking,
    BookingMode,
    BookingStatus,
    Hold,
    HoldStatus,
    OutboxMessage,
    Patient,
    PendingReason,
)
from scheduling.services import drop_native_slots

log = logging.getLogger("booking.services")

LOCK_NAMESPACE_BOOKING = 0x424F4F4B  # "BOOK"
LOCK_NAMESPACE_PATIENT = 0x50415449  # "PATI"
OUTBOX_PROCESS = "process_booking"
OUTBOX_CANCEL = "cancel_in_ehr"
AUDIT_KEY = "audit"  # the outbox payload's record of who asked for the work


def _origin(payload: dict[str, Any] | None) -> dict[str, Any]:
    return (payload or {}).get(AUDIT_KEY) or {}


_RETRYABLE = (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)


class IdempotencyConflict(Exception):
    """The Idempotency-Key was used before with a different body."""


class HoldExpiredError(Exception):
    """The hold ran out (or was released) before the booking."""


class SlotTakenError(Exception):
    """The hold is already booked under another Idempotency-Key."""


class PatientDetailsMissing(Exception):
    """The hold's EHR cannot create a caller it does not know without these details."""

    def __init__(self, fields: list[str]) -> None:
        super().__init__(", ".join(fields))
        self.fields = fields


class PermanentBookingError(Exception):
    """Retrying cannot help; the message is the reason staff see."""


def fingerprint(body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


# --- accepting a booking ---------------------------------------------------------------------


def _existing(practice: Practice, key: str, digest: str) -> Booking | None:
    found = Booking.objects.for_practice(practice).filter(idempotency_key=key).first()
    if found is not None and found.request_fingerprint != digest:
        raise IdempotencyConflict(key)
    return found


def create_booking(practice: Practice, **kwargs: Any) -> tuple[Booking, bool]:
    """`_create_booking`, retried if PostgreSQL aborts it as a deadlock or serialization victim.
    The audit chain's lock order is fixed (compliance migration 0005: chain locks are taken last
    at commit, in sorted order), so this is a safety net, not the fix."""
    for attempt in range(1, 4):
        try:
            return _create_booking(practice, **kwargs)
        except OperationalError as exc:
            if attempt == 3 or not isinstance(exc.__cause__, _RETRYABLE):
                raise
            log.warning("booking attempt %d: %s", attempt, type(exc.__cause__).__name__)
    raise AssertionError("unreachable")


def _create_booking(
    practice: Practice,
    *,
    idempotency_key: str,
    body: dict[str, Any],
    api_client: ApiClient | None = None,
    now: Any = None,
) -> tuple[Booking, bool]:
    """Accept a booking of a held slot; (booking, created). Call in the practice's tenant
    context. Raises Hold.DoesNotExist, HoldExpiredError, SlotTakenError, IdempotencyConflict."""
    digest = fingerprint(body)
    found = _existing(practice, idempotency_key, digest)
    if found is not None:
        return found, False
    now = now or timezone.now()
    try:
        with transaction.atomic():
            hold = Hold.objects.for_practice(practice).select_for_update().get(pk=body["hold_id"])
            # Concurrent requests with this key queue on the hold's row lock: re-read after it.
            found = _existing(practice, idempotency_key, digest)
            if found is not None:
                return found, False
            if hold.status == HoldStatus.BOOKED:
                raise SlotTakenError(hold.pk)
            if hold.status != HoldStatus.ACTIVE or hold.expires_at <= now:
                raise HoldExpiredError(hold.pk)
            patient_body = body.get("patient") or {}
            missing = new_patient_details_missing(hold, patient_body)
            if missing:
                raise PatientDetailsMissing(missing)
            hold.status = HoldStatus.BOOKED
            hold.save(update_fields=["status"])
            patient = None
            if patient_body.get("id") is not None:
                patient = Patient.objects.for_practice(practice).get(pk=patient_body["id"])
            booking = _booking_of(
                hold,
                practice=practice,
                idempotency_key=idempotency_key,
                request_fingerprint=digest,
                api_client=api_client,
                call_id=body.get("call_id") or None,
                reason=body.get("reason") or "",
                demographics=None if patient is not None else patient_body,
                patient=patient,
            )
            if waits_for_staff(hold):
                booking.status = BookingStatus.REQUESTED
                booking.request_expires_at = request_deadline(hold.start, now)
                booking.save(update_fields=["status", "request_expires_at", "updated_at"])
            else:
                _outbox(booking, OUTBOX_PROCESS)
    except IntegrityError:
        # Another request with this key committed between our read and our insert.
        found = _existing(practice, idempotency_key, digest)
        if found is None:
            raise
        return found, False
    return booking, True


def request_hold() -> timedelta:
    """How long a request waiting in our front desk's queue keeps its slot at most."""
    return timedelta(hours=float(getattr(settings, "BOOKING_REQUEST_HOLD_HOURS", 48.0)))


def request_deadline(start: Any, now: Any) -> Any:
    """Until when a request in our queue keeps its slot: the hold time, never past the start."""
    return min(now + request_hold(), start)


def _booking_of(hold: Hold, **fields: Any) -> Booking:
    """A new booking of the slot `hold` reserved: its type, provider, operatory, location and
    times are the hold's."""
    return Booking.objects.create(
        hold=hold,
        appointment_type_id=hold.appointment_type_id,
        provider_id=hold.provider_id,
        operatory_id=hold.operatory_id,
        location_id=hold.location_id,
        start=hold.start,
        end=hold.end,
        **fields,
    )


def new_patient_details_missing(hold: Hold, patient_body: dict[str, Any]) -> list[str]:
    """What the hold's EHR needs beyond our own required demographics to create a caller it may
    not know. Asked at once, while the caller is still on the line, rather than failing in the
    worker after they hung up (the caller may turn out to be known: asking costs one question)."""
    if patient_body.get("id") is not None or patient_body.get("email"):
        return []
    conn = connection_for_location(hold.location_id)
    return ["email"] if Capability.NEW_PATIENT_EMAIL in capabilities(conn) else []


def waits_for_staff(hold: Hold) -> bool:
    """A request-mode type at a location whose EHR has no follow-up list: the booking waits in
    our front desk's queue (nothing is sent until staff approve it)."""
    if hold.appointment_type.booking_mode != BookingMode.REQUEST:
        return False
    return Capability.REQUEST_MODE not in capabilities(connection_for_location(hold.location_id))


def _outbox(booking: Booking, kind: str) -> OutboxMessage:
    """The message keeps who asked for the work (`payload["audit"]`): whichever path sends it,
    the request's on-commit or the relay minutes later, the task acts for that request."""
    message = OutboxMessage.objects.create(
        practice_id=booking.practice_id,
        kind=kind,
        booking=booking,
        payload={AUDIT_KEY: audit_ctx.carried()},
    )
    message_id = message.pk
    transaction.on_commit(lambda: _dispatch_fast(message_id))
    return message


# --- the outbox relay ------------------------------------------------------------------------


def _enqueue(message: OutboxMessage, *, retry: bool) -> None:
    from booking import tasks

    args = (message.booking_id, message.practice_id)
    options: dict[str, Any] = {"queue": tasks.bookings_queue()}
    if not retry:
        options["retry"] = False
    task = tasks.cancel_booking_in_ehr if message.kind == OUTBOX_CANCEL else tasks.process_booking
    with audit_ctx.acting_for(_origin(message.payload)):
        task.apply_async(args=args, **options)


def _dispatch(rows: QuerySet[OutboxMessage], limit: int, *, retry: bool) -> int:
    sent = 0
    with transaction.atomic():
        batch = list(rows.filter(dispatched_at__isnull=True).order_by("id")[:limit])
        for message in batch:
            try:
                _enqueue(message, retry=retry)
            except Exception as exc:  # the broker is down: the next relay run tries again
                log.warning("outbox %s not dispatched: %s", message.pk, type(exc).__name__)
                OutboxMessage.objects.filter(pk=message.pk).update(attempts=F("attempts") + 1)
                break
            now = timezone.now()
            OutboxMessage.objects.filter(pk=message.pk).update(
                dispatched_at=now, resend_after=now + ack_window(), attempts=F("attempts") + 1
            )
            sent += 1
    return sent


def ack_window() -> timedelta:
    """How long a sent message may go unacknowledged before the relay sends it again."""
    return timedelta(seconds=float(getattr(settings, "BOOKING_OUTBOX_ACK_SECONDS", 60.0)))


def expect_run(booking_id: int, practice_id: int, kind: str, countdown: float) -> None:
    """The task scheduled its own next run `countdown` seconds out (a retry, a poll): the relay
    waits for that run, plus the usual window, before it assumes the message was lost."""
    resend = timezone.now() + timedelta(seconds=max(0.0, countdown)) + ack_window()
    with tenant_context(practice_id):
        OutboxMessage.objects.filter(
            booking_id=booking_id, kind=kind, dispatched_at__isnull=False, acked_at__isnull=True
        ).update(resend_after=resend)


def acknowledge(booking_id: int, practice_id: int, kind: str) -> None:
    """The work the booking's messages of `kind` carried is done: never re-send them."""
    with tenant_context(practice_id):
        OutboxMessage.objects.filter(
            booking_id=booking_id, kind=kind, acked_at__isnull=True
        ).update(acked_at=timezone.now())


def _broker_reachable() -> bool:
    """One quick look, no back-off: Celery's publish would otherwise retry for ~20 s while the
    voice agent's request waits on a silent line. A pooled connection that is up costs nothing."""
    from celery import current_app
    from kombu import Connection

    try:
        # celery-types calls this a Producer; at run time it is kombu's pooled Connection.
        with cast("Connection", current_app.pool.acquire(block=True, timeout=0.5)) as conn:
            conn.ensure_connection(
                max_retries=1, interval_start=0, interval_step=0, interval_max=0, timeout=1
            )
    except Exception:
        return False
    return True


def _dispatch_fast(message_id: int) -> None:
    """After commit: hand the message over at once (no wait for the beat). A failure here is
    harmless: the row stays undispatched for `relay_outbox`."""
    if not _broker_reachable():
        log.warning("broker unreachable; outbox %s waits for the relay", message_id)
        OutboxMessage.objects.filter(pk=message_id).update(attempts=F("attempts") + 1)
        return
    try:
        rows = OutboxMessage.objects.filter(pk=message_id).select_for_update(skip_locked=True)
        _dispatch(rows, 1, retry=False)
    except Exception:
        log.exception("outbox fast path failed for %s; the relay will send it", message_id)


def relay_outbox(limit: int = 500, now: Any = None) -> int:
    """Beat: every undispatched outbox row, to Celery, and every sent one whose work is not
    acknowledged in time again (the broker lost it: a worker killed with a Redis that keeps
    nothing on disk). Rows another relay holds are skipped."""
    with cross_tenant("outbox relay: dispatch booking work of every practice"):
        rows = OutboxMessage.objects.select_for_update(skip_locked=True)
        sent = _dispatch(rows, limit, retry=True)
        return sent + _resend_unacknowledged(limit, now or timezone.now())


def _backlog(queue: str) -> bool:
    """Messages still wait in the queue (or the broker cannot say): the workers are behind,
    which explains an unacknowledged row as well as a loss does. Re-sending then would only
    lengthen the queue; once it has drained, a row still unacknowledged was lost."""
    from celery import current_app

    try:
        with current_app.connection_for_write() as conn:
            channel: Any = conn.default_channel  # kombu's virtual channel declares queues
            declared = channel.queue_declare(queue=queue, passive=True)
    except Exception as exc:  # a queue never declared has nothing in it
        if "NOT_FOUND" in str(exc) or "no queue" in str(exc).lower():
            return False
        log.warning("outbox relay: cannot read the %s queue's length: %s", queue, exc)
        return True
    return bool(declared.message_count)


def _resend_unacknowledged(limit: int, now: Any) -> int:
    """A booking's process message is acknowledged once the booking left `pending` (confirmed,
    failed, cancelled: checked here, lazily); a cancel message once its task ran. A pending
    booking already posted gets the insertion poll, not a second post (the task would find it
    posted anyway)."""
    from booking import tasks

    if _backlog(tasks.bookings_queue()):
        return 0
    sent = 0
    with transaction.atomic():
        overdue = list(
            OutboxMessage.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(dispatched_at__isnull=False, acked_at__isnull=True, resend_after__lt=now)
            .select_related("booking")
            .order_by("resend_after")[:limit]
        )
        for message in overdue:
            booking = message.booking
            if message.kind == OUTBOX_PROCESS and booking.status != BookingStatus.PENDING:
                OutboxMessage.objects.filter(pk=message.pk).update(acked_at=now)
                continue
            try:
                if message.kind == OUTBOX_PROCESS and booking.ehr_appointment_id is not None:
                    with audit_ctx.acting_for(_origin(message.payload)):
                        tasks.poll_booking_insertion.apply_async(
                            args=(booking.pk, booking.practice_id), queue=tasks.bookings_queue()
                        )
                else:
                    _enqueue(message, retry=True)
            except Exception as exc:  # the broker is down: the next relay run tries again
                log.warning("outbox %s not re-sent: %s", message.pk, exc)
                break
            OutboxMessage.objects.filter(pk=message.pk).update(
                dispatched_at=now, resend_after=now + ack_window(), attempts=F("attempts") + 1
            )
            log.warning("outbox %s not acknowledged in time; re-sent", message.pk)
            sent += 1
    return sent


STALE_PENDING = timedelta(minutes=15)


def requeue_stale_pending(
    older_than: timedelta = STALE_PENDING, limit: int = 200, now: Any = None
) -> int:
    """Beat: re-queue pending bookings whose task message was sent but has shown no progress for
    `older_than`. The relay only resends rows it never sent, so a message lost after sending (a
    broker restart that dropped its queue) would leave the booking pending forever. The tasks
    are idempotent (a session lock, a look-up before any post), so re-queueing one that is only
    slow costs a read, not a second appointment."""
    from booking import tasks

    now = now or timezone.now()
    with cross_tenant("booking sweep: re-queue stalled pending bookings of every practice"):
        stale = list(
            Booking.objects.filter(
                status=BookingStatus.PENDING,
                updated_at__lt=now - older_than,
                outbox__kind=OUTBOX_PROCESS,
                outbox__dispatched_at__isnull=False,
            )
            .order_by("updated_at")
            .values_list("pk", "practice_id", "ehr_appointment_id", "outbox__payload")[:limit]
        )
        for booking_id, practice_id, ehr_appointment_id, payload in stale:
            task = (
                tasks.process_booking
                if ehr_appointment_id is None
                else tasks.poll_booking_insertion
            )
            with audit_ctx.acting_for(_origin(payload)):
                task.apply_async(args=(booking_id, practice_id), queue=tasks.bookings_queue())
            # The next sweep waits its own interval again for this one.
            Booking.objects.filter(pk=booking_id).update(updated_at=now)
            log.warning("booking %s stalled while pending; re-queued", booking_id)
    return len(stale)


# --- state changes ---------------------------------------------------------------------------


def _release(booking: Booking) -> None:
    Hold.objects.filter(pk=booking.hold_id, status=HoldStatus.BOOKED).update(
        status=HoldStatus.RELEASED
    )


def mark_failed(booking_id: int, reason: str) -> bool:
    """Pending -> failed with `reason`, hold released. False if it was no longer pending."""
    with transaction.atomic():
        booking = Booking.objects.select_for_update().filter(pk=booking_id).first()
        if booking is None or booking.status != BookingStatus.PENDING:
            return False
        booking.status = BookingStatus.FAILED
        booking.failure_reason = reason[:2000]
        booking.save(update_fields=["status", "failure_reason", "updated_at"])
        _release(booking)
    log.warning("booking %s failed (the reason is on the booking, not in logs)", booking_id)
    return True


def note_pending(booking_id: int, reason: PendingReason) -> None:
    """Record why a pending booking is still pending (one UPDATE, none when unchanged): the
    voice agent reads it while the caller waits."""
    Booking.objects.filter(pk=booking_id, status=BookingStatus.PENDING).exclude(
        pending_reason=reason
    ).update(pending_reason=reason)


TROUBLE_REASONS = {
    EHRTrouble.SLOW: PendingReason.EHR_SLOW,
    EHRTrouble.FAILING: PendingReason.RETRYING,
    EHRTrouble.RATE_LIMITED: PendingReason.EHR_RATE_LIMITED,
}


def mark_confirmed(booking_id: int, ehr_appointment_id: int) -> bool:
    """Pending, or requested and now confirmed by the EHR's staff -> confirmed."""
    with transaction.atomic():
        booking = Booking.objects.select_for_update().filter(pk=booking_id).first()
        if booking is None or booking.status not in (
            BookingStatus.PENDING,
            BookingStatus.REQUESTED,
        ):
            return False
        booking.status = BookingStatus.CONFIRMED
        booking.ehr_appointment_id = ehr_appointment_id
        booking.confirmed_at = timezone.now()
        booking.failure_reason = ""
        booking.save(
            update_fields=[
                "status",
                "ehr_appointment_id",
                "confirmed_at",
                "failure_reason",
                "updated_at",
            ]
        )
        if booking.replaces_id is not None:
            # A move: the new time is in the EHR, so the old one goes now, in this transaction.
            _cancel_locked(Booking.objects.select_for_update().get(pk=booking.replaces_id))
    return True


def mark_requested(booking_id: int, ehr_appointment_id: int) -> bool:
    """Pending -> requested: the EHR holds it on its follow-up list for staff to confirm."""
    with transaction.atomic():
        booking = Booking.objects.select_for_update().filter(pk=booking_id).first()
        if booking is None or booking.status != BookingStatus.PENDING:
            return False
        booking.status = BookingStatus.REQUESTED
        booking.ehr_appointment_id = ehr_appointment_id
        booking.save(update_fields=["status", "ehr_appointment_id", "updated_at"])
    return True


CANCELLABLE = (BookingStatus.PENDING, BookingStatus.CONFIRMED, BookingStatus.REQUESTED)


def cancel_booking(booking: Booking) -> Booking:
    """Cancel ours; the EHR appointment (if any, or if a run in flight posts one) is cancelled
    by a task. An EHR whose cancel is a request its staff act on leaves the booking
    `cancel_requested` (its slot still claimed) until it reports the appointment cancelled.
    Idempotent."""
    with transaction.atomic():
        booking = _cancel_locked(Booking.objects.select_for_update().get(pk=booking.pk))
    return booking


def cancel_is_request(booking: Booking) -> bool:
    """Whether cancelling this booking only asks the EHR's staff to cancel it."""
    if booking.ehr_appointment_id is None:
        return False
    conn = connection_for_location(booking.location_id)
    return Capability.CANCEL_REQUESTS in capabilities(conn)


def _cancel_locked(booking: Booking) -> Booking:
    if booking.status not in CANCELLABLE:
        return booking
    if cancel_is_request(booking):
        booking.status = BookingStatus.CANCEL_REQUESTED
        booking.save(update_fields=["status", "updated_at"])
        _outbox(booking, OUTBOX_CANCEL)
        return booking
    booking.status = BookingStatus.CANCELLED
    booking.save(update_fields=["status", "updated_at"])
    _release(booking)
    if booking.ehr_appointment_id is not None:
        _outbox(booking, OUTBOX_CANCEL)
    return booking


class MoveRefused(Exception):
    """A booking that cannot be moved (its status, or a move already under way)."""


REQUEST_NOT_MOVABLE = "This booking is still a request: approve or decline it before moving it."


def reschedule_booking(booking: Booking, hold: Hold) -> Booking:
    """Staff move a booking to the held slot: a new booking of the same patient, reason and
    call is written to the EHR like any other; the original is cancelled (here and in the EHR)
    only when the new one is confirmed (`mark_confirmed`). Until then both show; if the new one
    fails it waits in the queue with its reason and the original appointment stands."""
    with transaction.atomic():
        old = Booking.objects.select_for_update().get(pk=booking.pk)
        if old.status == BookingStatus.REQUESTED:
            raise MoveRefused(REQUEST_NOT_MOVABLE)
        if old.status not in (BookingStatus.PENDING, BookingStatus.CONFIRMED):
            raise MoveRefused(f"A {old.get_status_display().lower()} booking cannot be moved.")
        moving = Booking.objects.filter(replaces=old, status=BookingStatus.PENDING)
        if moving.exists():
            raise MoveRefused("This booking is already being moved; wait for that to settle.")
        hold = Hold.objects.select_for_update().get(pk=hold.pk, practice_id=old.practice_id)
        if hold.status != HoldStatus.ACTIVE or hold.expires_at <= timezone.now():
            raise HoldExpiredError(hold.pk)
        if hold.appointment_type_id != old.appointment_type_id:
            raise MoveRefused("A move keeps the appointment type.")
        hold.status = HoldStatus.BOOKED
        hold.save(update_fields=["status"])
        body = {"moves": old.pk, "hold_id": hold.pk}
        new = _booking_of(
            hold,
            practice_id=old.practice_id,
            idempotency_key=f"portal-move-{old.pk}-{hold.pk}",
            request_fingerprint=fingerprint(body),
            api_client=None,
            call_id=old.call_id,
            reason=old.reason,
            demographics=old.demographics,
            patient_id=old.patient_id,
            replaces=old,
        )
        _outbox(new, OUTBOX_PROCESS)
    return new


def on_ehr_appointment(connection: EHRConnection, appointment: EHRAppointment) -> Outcome:
    """The EHR reported an appointment written, refused, changed or gone (its webhook, or our
    poll read it back): confirm, fail or cancel our booking of it. `NO_BOOKING` when it is none
    of ours. Runs in the connection's tenant context and a transaction."""
    booking = (
        Booking.objects.for_practice(connection.practice_id)
        .filter(ehr_appointment_id=appointment.id)
        .first()
    )
    if booking is None and appointment.patient_id is not None:
        # The insertion can be reported before the task stored the id it got back.
        booking = (
            Booking.objects.for_practice(connection.practice_id)
            .filter(
                status=BookingStatus.PENDING,
                ehr_appointment_id__isnull=True,
                location_id=connection.location_id,
                provider__ehr_id=appointment.provider_id,
                patient__ehr_id=appointment.patient_id,
                start=appointment.start,
            )
            .first()
        )
    if booking is None:
        return Outcome.NO_BOOKING
    if appointment.cancelled:
        if booking.status == BookingStatus.REQUESTED:
            # Staff took the request off the EHR's follow-up list instead of confirming it.
            Booking.objects.filter(pk=booking.pk).update(
                status=BookingStatus.DECLINED,
                resolved_at=timezone.now(),
                resolution_note="Declined in the EHR.",
                updated_at=timezone.now(),
            )
            _release(booking)
            return Outcome.DECLINED
        if booking.status in (
            BookingStatus.PENDING,
            BookingStatus.CONFIRMED,
            BookingStatus.CANCEL_REQUESTED,
        ):
            Booking.objects.filter(pk=booking.pk).update(
                status=BookingStatus.CANCELLED, updated_at=timezone.now()
            )
            _release(booking)
            return Outcome.CANCELLED
        return Outcome.UNCHANGED
    if appointment.held:
        requested = mark_requested(booking.pk, appointment.id)
        return Outcome.REQUESTED if requested else Outcome.UNCHANGED
    if appointment.confirmed:
        confirmed = mark_confirmed(booking.pk, appointment.id)
        return Outcome.CONFIRMED if confirmed else Outcome.UNCHANGED
    if appointment.refused:
        Booking.objects.filter(pk=booking.pk, ehr_appointment_id__isnull=True).update(
            ehr_appointment_id=appointment.id
        )
        mark_failed(
            booking.pk,
            f"The EHR refused to write appointment {appointment.id}"
            + (f": {appointment.note}" if appointment.note else "")
            + ". Check the schedule for a clash, then retry or book by hand.",
        )
        return Outcome.FAILED
    return Outcome.PENDING


# --- the task's body -------------------------------------------------------------------------


def _demographic(booking: Booking) -> dict[str, Any]:
    data = booking.demographics or {}
    missing = [k for k in ("first_name", "last_name", "date_of_birth") if not data.get(k)]
    if missing:
        raise PermanentBookingError(f"Patient details missing ({', '.join(missing)}).")
    return data


def ensure_patient(conn: EHRConnection, booking: Booking) -> Patient:
    """The booking's patient, in the EHR and locally; never a duplicate (one finder/creator
    per name and birth date at a time, across workers)."""
    provisional = None
    if booking.patient_id is not None:
        patient = Patient.objects.get(pk=booking.patient_id)
        if patient.ehr_id is None:
            raise PermanentBookingError(f"Patient {patient.pk} has no EHR record to book for.")
        if patient.ehr_id > 0:
            return patient
        # A provisional id (an EHR that creates a new patient with their first appointment): an
        # earlier run's appointment may have created them though its answer was lost, so they
        # are looked for again and, if found, the local patient takes the EHR's id.
        provisional = patient.ehr_id
    data = _demographic(booking)
    dob = date.fromisoformat(str(data["date_of_birth"]))
    key_bytes = blind_index(booking.practice_id, f"{data['last_name']}|{dob}", "text") or b""
    lock_key = int.from_bytes(hashlib.sha256(key_bytes).digest()[:4], "big")
    provider_ehr_id = booking.provider.ehr_id
    with blocking_lock(LOCK_NAMESPACE_PATIENT, lock_key):
        found, created = find_or_create_patient(
            conn,
            first_name=str(data["first_name"]),
            last_name=str(data["last_name"]),
            date_of_birth=dob,
            phone=data.get("phone") or None,
            email=data.get("email") or None,
            provider_id=provider_ehr_id,
        )
        with transaction.atomic():
            if provisional is not None and found.id > 0:
                adopt_patient_id(conn, provisional, found.id)
            patient = (
                Patient.objects.for_practice(booking.practice_id)
                .filter(location_id=booking.location_id, ehr_id=found.id)
                .first()
            )
            if patient is None:
                patient = Patient.objects.create(
                    practice_id=booking.practice_id,
                    location_id=booking.location_id,
                    ehr_id=found.id,
                    first_name=clean_name(str(data["first_name"])),
                    last_name=clean_name(str(data["last_name"])),
                    date_of_birth=dob.isoformat(),
                    phone=data.get("phone") or "",
                    email=data.get("email") or "",
                    insurance=data.get("insurance"),
                    needs_review=created,
                )
            Booking.objects.filter(pk=booking.pk).update(patient=patient)
    return patient


def _overlaps(a: EHRAppointment, booking: Booking) -> bool:
    return a.start < booking.end and a.end > booking.start


def _slot_taken(booking: Booking) -> None:
    """The EHR says the booking's time is taken: where its own free slots are the free time,
    stop offering that time at once (the next slot refresh confirms it)."""
    drop_native_slots(booking.location_id, booking.provider_id, booking.start, booking.end)


def process_booking(booking_id: int, practice_id: int) -> Outcome:
    """One run of the booking task: `POSTED` (poll for the insertion result), `BUSY` (another
    run holds it: look again shortly), or where it stands. Raises EHRTransientError for the task
    to retry."""

    def tell(trouble: EHRTrouble) -> None:
        note_pending(booking_id, TROUBLE_REASONS[trouble])

    with (
        tenant_context(practice_id),
        session_lock(LOCK_NAMESPACE_BOOKING, booking_id) as got,
        trouble_listener(tell),
    ):
        if not got:
            return Outcome.BUSY
        booking = (
            Booking.objects.select_related("provider", "operatory", "appointment_type")
            .filter(pk=booking_id)
            .first()
        )
        if booking is None or booking.status != BookingStatus.PENDING:
            return Outcome(booking.status) if booking else Outcome.MISSING
        if booking.ehr_appointment_id is not None:
            return Outcome.ALREADY_POSTED
        Booking.objects.filter(pk=booking_id).update(
            attempts=F("attempts") + 1, pending_reason=PendingReason.SENDING
        )
        conn = connection_for_location(booking.location_id)
        try:
            if conn is None:
                raise PermanentBookingError(
                    "This location has no EHR connection; connect it, then retry."
                )
            patient = ensure_patient(conn, booking)
            try:
                ids = ehr_ids_for_booking(
                    conn,
                    provider=booking.provider,
                    operatory=booking.operatory,
                    appointment_type=booking.appointment_type,
                )
            except ValueError as exc:
                raise PermanentBookingError(f"Not mapped to the EHR: {exc}.") from exc
            assert patient.ehr_id is not None
            # Live re-check: our own appointment from an earlier run that died is adopted;
            # anything else in the way fails the booking. One location-wide read (not one per
            # provider and operatory): reading appointments has the EHR's tightest rate, and it
            # also shows location-wide blocks.
            live = port_for(conn).appointments(booking.start - timedelta(hours=4), booking.end)
            active = [a for a in live if not a.gone]
            ours = [
                a
                for a in active
                if a.patient_id == patient.ehr_id
                and a.provider_id == ids.provider_id
                and a.start == booking.start
            ]
            if ours:
                appointment = ours[0]
            else:
                clash = [
                    a
                    for a in active
                    if _overlaps(a, booking)
                    and (
                        a.provider_id == ids.provider_id
                        or (ids.operatory_id is not None and a.operatory_id == ids.operatory_id)
                        or (a.unavailable and a.provider_id is None and a.operatory_id is None)
                    )
                ]
                if clash:
                    # The mirror missed them (a dropped webhook): learn them now, so the
                    # slot stops being offered to the next caller.
                    mirror_appointments(conn, clash)
                    _slot_taken(booking)
                    raise PermanentBookingError(
                        reason_for(
                            FailureCategory.SLOT_TAKEN,
                            f" before we could book it (EHR appointment {clash[0].id}). "
                            "Offer the caller another time.",
                        )
                    )
                if is_native(conn) and not still_offered(
                    conn,
                    provider_id=ids.provider_id,
                    appointment_type_id=ids.appointment_type_id,
                    start=booking.start,
                    end=booking.end,
                ):
                    # No appointment is in the way, yet the EHR no longer offers the time:
                    # a block or a template change that only its own slots show.
                    _slot_taken(booking)
                    raise PermanentBookingError(
                        reason_for(
                            FailureCategory.SLOT_TAKEN,
                            " before we could book it (the EHR no longer offers the time)."
                            " Offer the caller another time.",
                        )
                    )
                try:
                    appointment = post_appointment(
                        conn,
                        patient_id=patient.ehr_id,
                        provider_id=ids.provider_id,
                        operatory_id=ids.operatory_id,
                        start=booking.start,
                        end=booking.end,
                        appointment_type_id=ids.appointment_type_id,
                        descriptor_ids=ids.descriptor_ids,
                        note=(booking.reason or "")[:500] or None,
                        as_request=(
                            booking.appointment_type.booking_mode == BookingMode.REQUEST
                            and Capability.REQUEST_MODE in capabilities(conn)
                        ),
                    )
                except EHRSlotTaken as exc:
                    # The EHR's conflict answer: something we cannot see (a block, a template
                    # change, a booking made after our re-check) holds the time.
                    _slot_taken(booking)
                    raise PermanentBookingError(
                        reason_for(
                            FailureCategory.SLOT_TAKEN,
                            f": the EHR answered that the time is no longer free ({exc.summary()})."
                            " Offer the caller another time.",
                        )
                    ) from exc
        except PermanentBookingError as exc:
            mark_failed(booking_id, str(exc))
            return Outcome.FAILED
        except (EHRValidationError, EHRNotFound) as exc:
            mark_failed(
                booking_id,
                f"The EHR refused the booking: {'; '.join(exc.messages) or exc}. "
                "Fix the details, then retry.",
            )
            return Outcome.FAILED
        stored = Booking.objects.filter(
            pk=booking_id, status=BookingStatus.PENDING, ehr_appointment_id__isnull=True
        ).update(ehr_appointment_id=appointment.id)
        current = Booking.objects.get(pk=booking_id)
        if current.status == BookingStatus.CANCELLED and not stored:
            # Cancelled while we were posting: do not leave an orphan in the EHR.
            cancel_appointment(conn, appointment.id)
            return Outcome.CANCELLED_MEANWHILE
        if appointment.held:
            # On the EHR's follow-up list: the change poll sees staff confirm (or decline) it.
            mark_requested(booking_id, appointment.id)
            return Outcome.REQUESTED
        if appointment.confirmed:
            mark_confirmed(booking_id, appointment.id)
            return Outcome.CONFIRMED
        if appointment.refused:
            with transaction.atomic():
                on_ehr_appointment(conn, appointment)
            return Outcome.FAILED
        note_pending(booking_id, PendingReason.AWAITING_EHR)
        return Outcome.POSTED


def poll_insertion(booking_id: int, practice_id: int) -> Outcome:
    """Polling fallback for a lost insertion report: read the appointment, apply its state.
    `PENDING` while the EHR is still inserting."""
    with tenant_context(practice_id):
        booking = Booking.objects.filter(pk=booking_id).first()
        if booking is None or booking.status != BookingStatus.PENDING:
            return Outcome(booking.status) if booking else Outcome.MISSING
        if booking.ehr_appointment_id is None:
            return Outcome.PENDING
        conn = connection_for_location(booking.location_id)
        if conn is None:
            return Outcome.PENDING
        appointment = port_for(conn).appointment(booking.ehr_appointment_id)
        with transaction.atomic():
            on_ehr_appointment(conn, appointment)
        booking.refresh_from_db(fields=["status"])
        return Outcome(booking.status)


def cancel_in_ehr(booking_id: int, practice_id: int) -> Outcome:
    """The cancel task's body: cancel a cancelled booking's appointment in the EHR (idempotent).
    Raises EHRTransientError for the task to retry; a refusal is logged and left to staff (our
    booking is cancelled already, its hold released)."""
    with tenant_context(practice_id):
        booking = Booking.objects.filter(pk=booking_id).first()
        if booking is None or booking.ehr_appointment_id is None:
            return Outcome.NOTHING_TO_CANCEL
        conn = connection_for_location(booking.location_id)
        if conn is None:
            return Outcome.NO_CONNECTION
        try:
            answer = cancel_appointment(conn, booking.ehr_appointment_id)
        except EHRTransientError:
            raise
        except EHRError as exc:
            log.warning(
                "could not cancel EHR appointment of booking %s: %s", booking_id, exc.summary()
            )
            return Outcome.FAILED
        if booking.status == BookingStatus.CANCEL_REQUESTED:
            if not answer.cancelled:
                return Outcome.CANCEL_REQUESTED  # the change poll sees staff act on it
            with transaction.atomic():
                on_ehr_appointment(conn, answer)
    return Outcome.CANCELLED


# --- the staff queue -------------------------------------------------------------------------


def needs_attention(practice: Practice | int) -> QuerySet[Booking]:
    """Failed bookings nobody has resolved yet, oldest first."""
    return (
        Booking.objects.for_practice(practice)
        .filter(status=BookingStatus.FAILED, resolved_at__isnull=True)
        .select_related("provider", "appointment_type")
        .order_by("created_at")
    )


def retry_booking(booking: Booking) -> Booking:
    """Staff: try a failed booking again (the slot is claimed again first; if someone has it
    meanwhile, `SlotTakenError`)."""
    from scheduling.services import release_expired_holds

    with transaction.atomic():
        booking = Booking.objects.select_for_update().get(pk=booking.pk)
        if booking.status != BookingStatus.FAILED:
            return booking
        release_expired_holds(booking.practice)  # a lapsed hold in the way claims nothing
        try:
            with transaction.atomic():
                Hold.objects.filter(pk=booking.hold_id).update(status=HoldStatus.BOOKED)
        except IntegrityError as exc:
            raise SlotTakenError(booking.hold_id) from exc
        booking.status = BookingStatus.PENDING
        booking.pending_reason = PendingReason.QUEUED
        booking.failure_reason = ""
        booking.ehr_appointment_id = None
        # A new attempt is a new story: if it fails again it must be back in the queue (the
        # earlier resolution stays in the audit log).
        booking.resolved_at = None
        booking.resolved_by = None
        booking.resolution_note = ""
        booking.save(
            update_fields=[
                "status",
                "pending_reason",
                "failure_reason",
                "ehr_appointment_id",
                "resolved_at",
                "resolved_by",
                "resolution_note",
                "updated_at",
            ]
        )
        _outbox(booking, OUTBOX_PROCESS)
    return booking


def resolve_booking(booking: Booking, note: str, user: User | None) -> Booking:
    """Staff: take a failed booking off the queue (handled by hand), saying how. Only a failed
    booking can be resolved (a pending one that is resolved would never reach the queue)."""
    with transaction.atomic():
        booking = Booking.objects.select_for_update().get(pk=booking.pk)
        if booking.status != BookingStatus.FAILED:
            return booking
        booking.resolved_at = timezone.now()
        booking.resolved_by = user
        booking.resolution_note = note
        booking.save(update_fields=["resolved_at", "resolved_by", "resolution_note", "updated_at"])
    return booking


# --- requests waiting in our front desk's queue ----------------------------------------------


NOT_IN_TIME = "Not approved in time."


class RequestNotOpen(Exception):
    """The booking is not a request waiting for our staff (settled, or the EHR's to confirm)."""


def is_open_request(booking: Booking) -> bool:
    """A request waiting in our front desk's queue (one on the EHR's follow-up list is
    confirmed or declined in the EHR)."""
    return booking.status == BookingStatus.REQUESTED and booking.ehr_appointment_id is None


def _open_request(booking_id: int) -> Booking:
    booking = Booking.objects.select_for_update().get(pk=booking_id)
    if not is_open_request(booking):
        raise RequestNotOpen(booking_id)
    return booking


def approve_request(booking: Booking, now: Any = None) -> Booking:
    """Staff approve a request: it is booked into the EHR through the normal pipeline (pending,
    then confirmed). A request past its deadline is declined instead (`RequestNotOpen`)."""
    now = now or timezone.now()
    with transaction.atomic():
        booking = _open_request(booking.pk)
        overdue = booking.request_expires_at is not None and booking.request_expires_at <= now
        if overdue:
            _decline_locked(booking, NOT_IN_TIME, None, now)
        else:
            booking.status = BookingStatus.PENDING
            booking.pending_reason = PendingReason.QUEUED
            booking.request_expires_at = None
            booking.save(
                update_fields=["status", "pending_reason", "request_expires_at", "updated_at"]
            )
            _outbox(booking, OUTBOX_PROCESS)
    if overdue:  # raised after the block: inside it, the decline would be rolled back too
        raise RequestNotOpen(booking.pk)
    return booking


def decline_request(booking: Booking, note: str, user: User | None) -> Booking:
    """Staff decline a request: nothing was sent to the EHR, the slot is free again."""
    with transaction.atomic():
        booking = _open_request(booking.pk)
        _decline_locked(booking, note, user, timezone.now())
    return booking


def _decline_locked(booking: Booking, note: str, user: User | None, now: Any) -> None:
    booking.status = BookingStatus.DECLINED
    booking.resolved_at = now
    booking.resolved_by = user
    booking.resolution_note = note
    booking.save(
        update_fields=["status", "resolved_at", "resolved_by", "resolution_note", "updated_at"]
    )
    _release(booking)


def open_requests(practice: Practice | int) -> QuerySet[Booking]:
    """Requests waiting for our staff, soonest deadline first."""
    return (
        Booking.objects.for_practice(practice)
        .filter(status=BookingStatus.REQUESTED, ehr_appointment_id__isnull=True)
        .select_related("provider", "appointment_type")
        .order_by("request_expires_at", "created_at")
    )


def expire_requests(now: Any = None, limit: int = 500) -> int:
    """Beat: decline the requests nobody approved before their deadline (slot freed)."""
    now = now or timezone.now()
    with cross_tenant("booking sweep: decline requests past their deadline in every practice"):
        overdue = list(
            Booking.objects.filter(
                status=BookingStatus.REQUESTED,
                ehr_appointment_id__isnull=True,
                request_expires_at__lte=now,
            ).values_list("pk", "practice_id")[:limit]
        )
    for booking_id, practice_id in overdue:
        with tenant_context(practice_id), transaction.atomic():
            try:
                booking = _open_request(booking_id)
            except RequestNotOpen:
                continue
            _decline_locked(booking, NOT_IN_TIME, None, now)
    return len(overdue)
