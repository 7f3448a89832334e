"""Booking tasks (queue `bookings`): thin, take ids, idempotent, late-acked.

The work is in `booking.services`. Transient EHR faults re-queue with exponential backoff and
full jitter (or the rate limiter's `retry_after`); when retries run out the booking is failed
with a reason, so nothing stays pending for ever.
"""

from __future__ import annotations

import logging

from celery import Task, shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from booking import services as bookings
from compliance.gate import BAARequired, phi_task
from core.outcome import Outcome
from core.tasks import retry as _retry
from core.tasks import retry_countdown
from core.tenancy import tenant_context
from ehr.errors import EHRRateLimited, EHRTransientError
from ehr.tasks import MAX_THROTTLED, TRANSIENT_ERRORS, queue_for
from scheduling.models import PendingReason

log = logging.getLogger("booking.tasks")


def bookings_queue() -> str:
    return queue_for("bookings")


# Polls of a posted booking whose insertion result has not come (its webhook lost): soon at
# first (a caller is on the line), then every BOOKING_POLL_SECONDS, for about half an hour
# before the stale-booking sweep takes over.
MAX_POLLS = 60


def poll_delay(attempt: int) -> float:
    """Seconds before poll number `attempt` (0-based): doubling from the first, capped."""
    cap = float(getattr(settings, "BOOKING_POLL_SECONDS", 30.0))
    first = float(getattr(settings, "BOOKING_POLL_FIRST_SECONDS", 2.0))
    return min(cap, first * 2**attempt)


def _poll_later(booking_id: int, practice_id: int, attempt: int = 0) -> None:
    countdown = poll_delay(attempt)
    poll_booking_insertion.apply_async(
        args=(booking_id, practice_id),
        kwargs={"attempt": attempt},
        countdown=countdown,
        queue=bookings_queue(),
    )
    bookings.expect_run(booking_id, practice_id, bookings.OUTBOX_PROCESS, countdown)


def _later(
    task: Task, booking_id: int, practice_id: int, kind: str, countdown: float, **retry: object
) -> Exception:
    """`task.retry` in `countdown` seconds, telling the outbox when to expect the run (so the
    relay re-sends only if the broker loses it)."""
    bookings.expect_run(booking_id, practice_id, kind, countdown)
    return task.retry(countdown=countdown, **retry)  # type: ignore[arg-type]


@shared_task(
    name="scheduling.process_booking",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,  # a killed worker's message goes back to the queue
    max_retries=None,  # budgets below: faults and rate-limit deferrals are counted apart
    dont_autoretry_for=(BAARequired,),
)
@phi_task
def process_booking(self: Task, booking_id: int, practice_id: int, throttled: int = 0) -> str:
    """`throttled` counts the re-queues that were waiting, not failing (behind the practice's
    EHR rate limit, or behind another run of the booking): they do not spend the fault budget
    (`BOOKING_MAX_RETRIES`). A surge of
    calls above the EHR's rate (the seed's cascade) queues bookings; it must not fail them."""
    faults = self.request.retries - throttled
    try:
        outcome = bookings.process_booking(booking_id, practice_id)
    except EHRRateLimited as exc:
        with tenant_context(practice_id):
            bookings.note_pending(booking_id, PendingReason.EHR_RATE_LIMITED)
        if throttled < MAX_THROTTLED:
            raise _later(
                self,
                booking_id,
                practice_id,
                bookings.OUTBOX_PROCESS,
                retry_countdown(self, exc),
                exc=exc,
                kwargs={"throttled": throttled + 1},
            ) from exc
        return _give_up(booking_id, practice_id, exc, self.request.retries).value
    except TRANSIENT_ERRORS as exc:
        if faults >= max_fault_retries():
            return _give_up(booking_id, practice_id, exc, self.request.retries).value
        countdown = retry_countdown(self, exc, attempt=faults)
        _expect_quietly(booking_id, practice_id, bookings.OUTBOX_PROCESS, countdown)
        raise _retry(self, exc, countdown=countdown) from exc
    except BAARequired:
        with tenant_context(practice_id):
            bookings.mark_failed(
                booking_id,
                "No business associate agreement is in force for this practice, so nothing "
                "can be sent to the EHR. Sign it, then retry.",
            )
        return Outcome.FAILED.value
    except Exception as exc:
        # A bug, not a fault: never leave the booking pending with nobody told (the message is
        # acked, nothing would run it again). Staff see it; the traceback is in the log.
        log.exception("booking %s: unexpected error", booking_id)
        with tenant_context(practice_id):
            bookings.mark_failed(
                booking_id,
                f"Internal error while booking ({type(exc).__name__}); retry, or book by hand.",
            )
        return Outcome.FAILED.value
    if outcome is Outcome.POSTED:
        _poll_later(booking_id, practice_id)
    elif outcome is Outcome.BUSY:
        # Another run holds the booking (a redelivery racing the original): look again later
        # (waiting, not a fault: counted with the rate-limit re-queues).
        raise _later(
            self,
            booking_id,
            practice_id,
            bookings.OUTBOX_PROCESS,
            5.0,
            kwargs={"throttled": throttled + 1},
        )
    return outcome.value


def _expect_quietly(booking_id: int, practice_id: int, kind: str, countdown: float) -> None:
    """`expect_run` when the database itself may be what failed: if it cannot be told, the
    relay re-sends a little early, which the idempotent task absorbs."""
    try:
        bookings.expect_run(booking_id, practice_id, kind, countdown)
    except (OperationalError, InterfaceError):
        log.warning("booking %s: could not record its next run", booking_id)


def max_fault_retries() -> int:
    return int(getattr(settings, "BOOKING_MAX_RETRIES", 10))


def _give_up(booking_id: int, practice_id: int, exc: Exception, retries: int) -> Outcome:
    with tenant_context(practice_id):
        bookings.mark_failed(
            booking_id,
            f"The EHR kept failing ({type(exc).__name__}: {exc}) after {retries + 1} attempts. "
            "Check the connection, then retry.",
        )
    return Outcome.FAILED


@shared_task(
    name="scheduling.poll_booking_insertion",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=12,
)
@phi_task
def poll_booking_insertion(self: Task, booking_id: int, practice_id: int, attempt: int = 0) -> str:
    """Fallback if the insertion webhook never comes."""
    try:
        outcome = bookings.poll_insertion(booking_id, practice_id)
    except EHRTransientError as exc:
        countdown = retry_countdown(self, exc)
        bookings.expect_run(booking_id, practice_id, bookings.OUTBOX_PROCESS, countdown)
        raise _retry(self, exc, countdown=countdown) from exc
    if outcome is Outcome.PENDING and attempt < MAX_POLLS:
        _poll_later(booking_id, practice_id, attempt + 1)
    return outcome.value


@shared_task(
    name="scheduling.cancel_booking_in_ehr",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=12,
)
@phi_task
def cancel_booking_in_ehr(self: Task, booking_id: int, practice_id: int) -> str:
    try:
        outcome = bookings.cancel_in_ehr(booking_id, practice_id)
    except EHRTransientError as exc:
        countdown = retry_countdown(self, exc)
        bookings.expect_run(booking_id, practice_id, bookings.OUTBOX_CANCEL, countdown)
        raise _retry(self, exc, countdown=countdown) from exc
    bookings.acknowledge(booking_id, practice_id, bookings.OUTBOX_CANCEL)
    return outcome.value


@shared_task(name="scheduling.relay_outbox")
def relay_outbox() -> int:
    """Beat: hand undispatched outbox rows to Celery."""
    return bookings.relay_outbox()


@shared_task(name="scheduling.expire_booking_requests")
def expire_booking_requests() -> int:
    """Beat: decline requests in our front desk's queue that nobody approved in time."""
    return bookings.expire_requests()


@shared_task(name="scheduling.requeue_stale_bookings")
def requeue_stale_bookings() -> int:
    """Beat: re-queue pending bookings whose sent task message was lost."""
    return bookings.requeue_stale_pending()
