"""Call tasks: thin, take ids, idempotent, late-acked. The work is in calls.services.

The encounter note rides the bookings queue (EHR writes a person may wait on, ahead of syncs).
Transient EHR faults re-queue with exponential backoff and full jitter (or the rate limiter's
`retry_after`), as bookings do; when retries run out the note is failed with a reason.
"""

from __future__ import annotations

from celery import Task, shared_task
from django.conf import settings

from calls import services
from compliance.gate import BAARequired, phi_task
from integrations.errors import EHRTransientError
from integrations.tasks import _retry, queue_for
from portal.tenancy import tenant_context


def notes_queue() -> str:
    return queue_for("bookings")


def _poll_later(call_id: int, practice_id: int, attempt: int = 0) -> None:
    poll_note.apply_async(
        args=(call_id, practice_id),
        kwargs={"attempt": attempt},
        countdown=float(getattr(settings, "ENCOUNTER_NOTE_POLL_SECONDS", 10.0)) * (1 + attempt),
        queue=notes_queue(),
    )


@shared_task(
    name="calls.write_encounter_note",
    bind=True,
    acks_late=True,
    max_retries=int(getattr(settings, "ENCOUNTER_NOTE_MAX_RETRIES", 10)),
    dont_autoretry_for=(BAARequired,),
)
@phi_task
def write_encounter_note(self: Task, call_id: int, practice_id: int) -> str:
    try:
        outcome = services.write_note(call_id, practice_id)
    except EHRTransientError as exc:
        if self.request.retries >= (self.max_retries or 0):
            with tenant_context(practice_id):
                note = services.EncounterNote.objects.filter(call_id=call_id).first()
                if note is not None:
                    services.mark_note_failed(
                        note.pk,
                        f"The EHR kept failing ({type(exc).__name__}: {exc}) after "
                        f"{self.request.retries + 1} attempts. Check the connection, then retry.",
                    )
            return "failed"
        raise _retry(self, exc) from exc
    if outcome == "sent":
        _poll_later(call_id, practice_id)
    elif outcome.startswith("busy"):
        raise self.retry(countdown=5.0)
    return outcome


@shared_task(name="calls.poll_note", bind=True, acks_late=True, max_retries=12)
@phi_task
def poll_note(self: Task, call_id: int, practice_id: int, attempt: int = 0) -> str:
    """The document's insertion result, read back (the sweep also polls stale ones)."""
    try:
        outcome = services.poll_note(call_id, practice_id)
    except EHRTransientError as exc:
        raise _retry(self, exc) from exc
    if outcome == "sent" and attempt < 10:
        _poll_later(call_id, practice_id, attempt + 1)
    return outcome


@shared_task(name="calls.sweep_encounter_notes")
def sweep_encounter_notes() -> int:
    """Beat: link confirmed bookings to calls, create missing notes, re-queue stale ones."""
    return services.sweep_notes()


@shared_task(name="calls.purge_expired")
def purge_expired() -> dict[str, int]:
    """Beat: purge transcripts and local note copies past each practice's retention."""
    return services.purge_expired()
