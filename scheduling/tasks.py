"""Booking tasks (queue `bookings`): thin, take ids, idempotent, late-acked.

The work is in `scheduling.bookings`. Transient EHR faults re-queue with exponential backoff and
full jitter (or the rate limiter's `retry_after`); when retries run out the booking is failed
with a reason, so nothing stays pending for ever.
"""

from __future__ import annotations

import logging

from celery import Task, shared_task
from django.conf import settings

from compliance.gate import BAARequired, phi_task
from integrations.errors import EHRError, EHRTransientError
from integrations.models import EHRConnection
from integrations.tasks import _retry, queue_for
from portal.tenancy import tenant_context
from scheduling import bookings
from scheduling.models import Booking

log = logging.getLogger("scheduling.tasks")


def bookings_queue() -> str:
    return queue_for("bookings")


def _poll_later(booking_id: int, practice_id: int, attempt: int = 0) -> None:
    poll_booking_insertion.apply_async(
        args=(booking_id, practice_id),
        kwargs={"attempt": attempt},
        countdown=float(getattr(settings, "BOOKING_POLL_SECONDS", 30.0)) * (1 + attempt),
        queue=bookings_queue(),
    )


@shared_task(
    name="scheduling.process_booking",
    bind=True,
    acks_late=True,
    max_retries=int(getattr(settings, "BOOKING_MAX_RETRIES", 10)),
    dont_autoretry_for=(BAARequired,),
)
@phi_task
def process_booking(self: Task, booking_id: int, practice_id: int) -> str:
    try:
        outcome = bookings.process_booking(booking_id, practice_id)
    except EHRTransientError as exc:
        if self.request.retries >= (self.max_retries or 0):
            with tenant_context(practice_id):
                bookings.mark_failed(
                    booking_id,
                    f"The EHR kept failing ({type(exc).__name__}: {exc}) after "
                    f"{self.request.retries + 1} attempts. Check the connection, then retry.",
                )
            return "failed"
        raise _retry(self, exc) from exc
    if outcome == "posted":
        _poll_later(booking_id, practice_id)
    elif outcome.startswith("busy"):
        # Another run holds the booking (a redelivery racing the original): look again later.
        raise self.retry(countdown=5.0)
    return outcome


@shared_task(name="scheduling.poll_booking_insertion", bind=True, acks_late=True, max_retries=12)
@phi_task
def poll_booking_insertion(self: Task, booking_id: int, practice_id: int, attempt: int = 0) -> str:
    """Fallback if the insertion webhook never comes."""
    try:
        outcome = bookings.poll_insertion(booking_id, practice_id)
    except EHRTransientError as exc:
        raise _retry(self, exc) from exc
    if outcome == "pending" and attempt < 10:
        _poll_later(booking_id, practice_id, attempt + 1)
    return outcome


def cancel_ehr_appointment(conn: EHRConnection, appointment_id: int) -> None:
    from integrations.services import cancel_appointment

    cancel_appointment(conn, appointment_id)


@shared_task(name="scheduling.cancel_booking_in_ehr", bind=True, acks_late=True, max_retries=12)
@phi_task
def cancel_booking_in_ehr(self: Task, booking_id: int, practice_id: int) -> str:
    from integrations.selectors import connection_for_location

    with tenant_context(practice_id):
        booking = Booking.objects.filter(pk=booking_id).first()
        if booking is None or booking.ehr_appointment_id is None:
            return "nothing to cancel"
        conn = connection_for_location(booking.location_id)
        if conn is None:
            return "no connection"
        try:
            cancel_ehr_appointment(conn, booking.ehr_appointment_id)
        except EHRTransientError as exc:
            raise _retry(self, exc) from exc
        except EHRError as exc:
            log.warning("could not cancel EHR appointment of booking %s: %s", booking_id, exc)
            return f"failed: {exc}"
    return "cancelled"


@shared_task(name="scheduling.relay_outbox")
def relay_outbox() -> int:
    """Beat: hand undispatched outbox rows to Celery."""
    return bookings.relay_outbox()
