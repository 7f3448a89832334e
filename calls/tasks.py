"""Call tasks: thin, take ids, idempotent, late-acked. The work is in calls.services.

The encounter note rides the bookings queue (EHR writes a person may wait on, ahead of syncs).
Transient failures (5xx, timeouts, 429, our own Redis or PostgreSQL) re-queue with exponential
backoff and full jitter (or the rate limiter's `retry_after`), as bookings do; when retries run
out the note is failed with a reason. A document the EHR rejected is posted again after a backoff
a few times (services.max_rejections) before it waits for staff; a permanent 4xx at once.
"""

from __future__ import annotations

import logging
import random

from celery import Task, shared_task
from django.conf import settings

from calls import services
from compliance.gate import BAARequired, phi_task
from core.outcome import Outcome
from core.tenancy import tenant_context
from ehr.errors import EHRRateLimited
from ehr.tasks import (
    MAX_THROTTLED,
    TRANSIENT_ERRORS,
    _retry,
    queue_for,
    retry_countdown,
)

log = logging.getLogger("calls.tasks")


def notes_queue() -> str:
    return queue_for("bookings")


def max_fault_retries() -> int:
    return int(getattr(settings, "ENCOUNTER_NOTE_MAX_RETRIES", 10))


def _poll_later(call_id: int, practice_id: int, attempt: int = 0) -> None:
    poll_note.apply_async(
        args=(call_id, practice_id),
        kwargs={"attempt": attempt},
        countdown=float(getattr(settings, "ENCOUNTER_NOTE_POLL_SECONDS", 10.0)) * (1 + attempt),
        queue=notes_queue(),
    )


def _write_again(call_id: int, practice_id: int) -> None:
    """The EHR rejected the insertion: post again after an exponential, fully jittered wait."""
    with tenant_context(practice_id):
        note = services.EncounterNote.objects.filter(call_id=call_id).first()
        rejections = note.rejections if note is not None else 1
    countdown = random.uniform(0, min(300, 2 ** (rejections + 1)))  # noqa: S311
    write_encounter_note.apply_async(
        args=(call_id, practice_id), countdown=countdown, queue=notes_queue()
    )


def _give_up(call_id: int, practice_id: int, exc: Exception, retries: int) -> str:
    """Fail the note with the reason; the task's result (`Outcome.FAILED`'s value)."""
    with tenant_context(practice_id):
        note = services.EncounterNote.objects.filter(call_id=call_id).first()
        if note is not None:
            services.mark_note_failed(
                note.pk,
                f"The EHR kept failing ({type(exc).__name__}: {exc}) after "
                f"{retries + 1} attempts. Check the connection, then retry.",
            )
    return Outcome.FAILED.value


@shared_task(
    name="calls.write_encounter_note",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,  # budgets below: faults and rate-limit deferrals are counted apart
    dont_autoretry_for=(BAARequired,),
)
@phi_task
def write_encounter_note(self: Task, call_id: int, practice_id: int, throttled: int = 0) -> str:
    """Transient failures retry with backoff (ENCOUNTER_NOTE_MAX_RETRIES of them; waits behind
    the rate limit are not counted) before the note is failed; permanent 4xx fail it at once
    (in `services.write_note`)."""
    faults = self.request.retries - throttled
    try:
        outcome = services.write_note(call_id, practice_id)
    except EHRRateLimited as exc:
        if throttled < MAX_THROTTLED:
            raise self.retry(
                exc=exc,
                countdown=retry_countdown(self, exc),
                kwargs={"throttled": throttled + 1},
            ) from exc
        return _give_up(call_id, practice_id, exc, self.request.retries)
    except TRANSIENT_ERRORS as exc:
        if faults >= max_fault_retries():
            return _give_up(call_id, practice_id, exc, self.request.retries)
        raise _retry(self, exc, attempt=faults) from exc
    if outcome is Outcome.SENT:
        _poll_later(call_id, practice_id)
    elif outcome is Outcome.REJECTED:
        _write_again(call_id, practice_id)
    elif outcome is Outcome.BUSY:
        raise self.retry(countdown=5.0, kwargs={"throttled": throttled + 1})
    return outcome.value


@shared_task(
    name="calls.poll_note", bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=12
)
@phi_task
def poll_note(self: Task, call_id: int, practice_id: int, attempt: int = 0) -> str:
    """The document's insertion result, read back (the sweep also polls stale ones)."""
    try:
        outcome = services.poll_note(call_id, practice_id)
    except TRANSIENT_ERRORS as exc:
        raise _retry(self, exc) from exc
    if outcome is Outcome.SENT and attempt < 10:
        _poll_later(call_id, practice_id, attempt + 1)
    elif outcome is Outcome.REJECTED:
        _write_again(call_id, practice_id)
    return outcome.value


@shared_task(name="calls.sweep_encounter_notes")
def sweep_encounter_notes() -> int:
    """Beat: link confirmed bookings to calls, create missing notes, re-queue stale ones."""
    return services.sweep_notes()


@shared_task(name="calls.purge_expired")
def purge_expired() -> dict[str, int]:
    """Beat: purge transcripts and local note copies past each practice's retention."""
    return services.purge_expired()
