"""Calls: recording them, their encrypted transcripts, the encounter note written to the EHR,
revealing a transcript (audited) and retention.

The encounter note follows the booking pipeline's rules (booking.services):
- `ensure_note` creates the `EncounterNote` (pending) once a call has a transcript AND a
  confirmed booking, whichever came second: `store_transcript` (the API) and
  `booking_confirmed` (run after the booking's commit by a post_save receiver on Booking, see
  calls.apps) both call it, and the `sweep_notes` beat repairs anything a lost message missed.
- `write_note` (the task's body) is idempotent: one run per call at a time (a session advisory
  lock, freed by PostgreSQL if the worker dies), skip unless pending, compose the note once
  (stored encrypted, so every attempt sends the same text), look the patient's documents up by
  the note's reference before posting (a killed earlier run may have posted), post with the
  same lookup on ambiguous failures. Transient EHR faults propagate for the task to retry with
  backoff; permanent ones mark the note failed with a reason.
- `poll_note` turns `sent` into `written` once the EHR reports the insertion. A rejected
  insertion is posted again after a backoff (`ENCOUNTER_NOTE_MAX_REJECTIONS` times) before the
  note is `failed` for staff: a rejection is often the EHR's passing trouble, as a 5xx is.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import Practice, User
from calls.models import (
    Call,
    CallOutcome,
    CallRetention,
    EncounterNote,
    NoteStatus,
)
from compliance import audit
from compliance.crypto import blind_index
from compliance.gate import require_phi_allowed
from compliance.models import AuditAction
from compliance.support_policy import SupportForbidden, refused_in_support_session
from core.locks import session_lock
from core.outcome import Outcome
from core.tenancy import cross_tenant, tenant_context
from ehr.registry import port_for
from ehr.types import EHRDocument
from scheduling.models import ApiClient, Booking, BookingStatus

log = logging.getLogger("calls.services")

LOCK_NAMESPACE_NOTE = 0x4E4F5445  # "NOTE"
TRANSCRIPT_OBJECT = "calls.transcript"
CALL_OBJECT = "calls.call"


class TranscriptPurged(Exception):
    """The transcript was purged under the retention policy; it cannot be replaced."""


class PermanentNoteError(Exception):
    """Retrying cannot help; the message is the reason staff see."""


def _practice_id(practice: Practice | int) -> int:
    return practice if isinstance(practice, int) else int(practice.pk)


# --- recording calls and transcripts ---------------------------------------------------------


def record_call(
    practice: Practice | int,
    *,
    external_id: str,
    started_at: datetime,
    caller_phone: str | None = None,
    ended_at: datetime | None = None,
    api_client: ApiClient | None = None,
) -> tuple[Call, bool]:
    """The practice's call with this external id, created if new: (call, created). Idempotent
    under concurrency (the unique constraint decides; the loser reads the winner's row)."""
    practice_id = _practice_id(practice)
    require_phi_allowed(practice_id)  # the caller's number is PHI
    found = Call.objects.for_practice(practice_id).filter(external_id=external_id).first()
    if found is not None:
        return found, False
    try:
        with transaction.atomic():
            call = Call.objects.create(
                practice_id=practice_id,
                external_id=external_id,
                started_at=started_at,
                ended_at=ended_at,
                caller_phone=caller_phone or None,
                api_client=api_client,
            )
    except IntegrityError:
        return Call.objects.for_practice(practice_id).get(external_id=external_id), False
    return call, True


def store_transcript(
    call: Call,
    turns: Sequence[dict[str, Any]],
    *,
    ended_at: datetime | None = None,
    outcome: str | None = None,
) -> Call:
    """Store (or replace) the call's turns, encrypted; link the booking made during the call and
    queue the encounter note if it is confirmed. Raises `TranscriptPurged` after a purge."""
    require_phi_allowed(call.practice_id)
    stored = [{"speaker": t["speaker"], "text": t["text"], "at": _iso(t["at"])} for t in turns]
    with transaction.atomic():
        call = Call.objects.select_for_update().get(pk=call.pk)
        if call.transcript_purged_at is not None:
            raise TranscriptPurged(call.pk)
        call.transcript = stored
        call.transcript_turns = len(stored)
        call.transcript_received_at = timezone.now()
        fields = ["transcript", "transcript_turns", "transcript_received_at", "updated_at"]
        if ended_at is not None:
            call.ended_at = ended_at
            fields.append("ended_at")
        if outcome and call.outcome not in DECIDED_BY_BOOKING:
            call.outcome = outcome
            fields.append("outcome")
        call.save(update_fields=fields)
        booking = link_booking(call)
        if booking is None and call.ended_at is not None and call.outcome == IN_PROGRESS:
            # Over, with no booking and nothing stated: the caller hung up. A booking that
            # names the call later still decides (link_booking overrides this).
            call.outcome = CallOutcome.ABANDONED
            call.save(update_fields=["outcome", "updated_at"])
        ensure_note(call)
    return call


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _booking_keys(call: Call) -> list[str]:
    """What `Booking.call_id` may hold for this call: our id (what POST /calls answers) or the
    voice platform's external id."""
    return [str(call.pk), call.external_id]


def booking_for_call(call: Call) -> Booking | None:
    """The booking made during the call: confirmed first, then requested, pending, failed,
    newest first."""
    rows = (
        Booking.objects.for_practice(call.practice_id)
        .filter(call_id__in=_booking_keys(call))
        .exclude(status=BookingStatus.CANCELLED)
        .order_by("-created_at")
    )
    candidates = list(rows[:5])
    for wanted in (
        BookingStatus.CONFIRMED,
        BookingStatus.REQUESTED,
        BookingStatus.PENDING,
        BookingStatus.FAILED,
    ):
        for booking in candidates:
            if booking.status == wanted:
                return booking
    return None


IN_PROGRESS = CallOutcome.IN_PROGRESS
# Outcomes a booking's failure replaces with the more precise "booking failed": nothing
# decided yet, "the caller hung up", or the agent's own unspecific "failed". An escalation or a
# message taken says what was done for the caller instead, and stays.
UNDECIDED = frozenset({CallOutcome.IN_PROGRESS, CallOutcome.ABANDONED, CallOutcome.FAILED})
# Outcomes the call's booking states, which the agent's own outcome never replaces.
DECIDED_BY_BOOKING = frozenset({CallOutcome.BOOKED, CallOutcome.REQUESTED})


def link_booking(call: Call) -> Booking | None:
    """Point the call at its booking and make the outcome say so (booked once confirmed,
    requested while staff have yet to confirm it, booking failed if it failed; the last two
    only when nothing else was decided). Call inside a transaction."""
    booking = booking_for_call(call)
    if booking is None:
        return None
    fields: list[str] = []
    if call.booking_id != booking.pk:
        call.booking = booking
        fields.append("booking")
    if booking.status == BookingStatus.CONFIRMED and call.outcome != CallOutcome.BOOKED:
        call.outcome = CallOutcome.BOOKED
        fields.append("outcome")
    elif booking.status == BookingStatus.REQUESTED and call.outcome in UNDECIDED:
        call.outcome = CallOutcome.REQUESTED
        fields.append("outcome")
    elif booking.status == BookingStatus.FAILED and call.outcome in UNDECIDED:
        call.outcome = CallOutcome.BOOKING_FAILED
        fields.append("outcome")
    if fields:
        call.save(update_fields=[*fields, "updated_at"])
    return booking


def booking_confirmed(booking_id: int, practice_id: int) -> None:
    """After a booking settles (confirmed or failed) and commits: link its call (the outcome
    follows) and queue the note if confirmed and the transcript is already here. Never raises
    into the booking flow (the sweep repairs)."""
    try:
        with tenant_context(practice_id), transaction.atomic():
            booking = Booking.objects.filter(pk=booking_id).first()
            if booking is None or not booking.call_id:
                return
            keys = Q(external_id=booking.call_id)
            if booking.call_id.isdigit():
                keys |= Q(pk=int(booking.call_id))
            calls = sorted(
                Call.objects.for_practice(practice_id).select_for_update().filter(keys),
                key=lambda c: str(c.pk) != booking.call_id,  # our id before an external id
            )
            if calls:
                link_booking(calls[0])
                ensure_note(calls[0])
    except Exception:
        log.exception("linking booking %s to its call failed; the sweep will retry", booking_id)


# --- the encounter note ----------------------------------------------------------------------


def ensure_note(call: Call) -> EncounterNote | None:
    """Create the call's note (pending) when it has a transcript and a confirmed booking, and
    queue its task after commit. Idempotent: an existing note is returned as it is."""
    if call.booking_id is None or call.transcript_received_at is None:
        return None
    if call.transcript_purged_at is not None:
        return None
    existing = EncounterNote.objects.filter(call_id=call.pk).first()
    if existing is not None:
        return existing
    booking = Booking.objects.filter(pk=call.booking_id).first()
    if booking is None or booking.status != BookingStatus.CONFIRMED:
        return None
    try:
        with transaction.atomic():
            note = EncounterNote.objects.create(
                practice_id=call.practice_id, call=call, booking=booking
            )
    except IntegrityError:
        return EncounterNote.objects.filter(call_id=call.pk).first()
    queue_note(call.pk, call.practice_id)
    return note


def queue_note(call_id: int, practice_id: int) -> None:
    """Hand the note to a worker after commit; a broker outage only delays it (sweep)."""

    def send() -> None:
        from calls import tasks

        try:
            tasks.write_encounter_note.apply_async(
                args=(call_id, practice_id), queue=tasks.notes_queue(), retry=False
            )
        except Exception as exc:
            log.warning(
                "note of call %s not queued (%s); the sweep will", call_id, type(exc).__name__
            )

    transaction.on_commit(send)


def mark_note_failed(note_id: int, reason: str) -> bool:
    """Pending or sent -> failed with a reason staff can act on."""
    changed = EncounterNote.objects.filter(
        pk=note_id, status__in=[NoteStatus.PENDING, NoteStatus.SENT]
    ).update(status=NoteStatus.FAILED, failure_reason=reason[:2000], updated_at=timezone.now())
    if changed:
        log.warning("encounter note %s failed (the reason is on the note, not in logs)", note_id)
    return bool(changed)


def _local(value: datetime | None, zone: Any) -> str:
    return timezone.localtime(value, zone).strftime("%Y-%m-%d %H:%M %Z") if value else "-"


def compose_note(call: Call, booking: Booking, reference: str) -> tuple[str, str]:
    """(title, text) of the note: appointment, stated reason, what was collected, transcript."""
    zone = booking.location.tz
    patient = booking.patient
    data: dict[str, Any] = dict(booking.demographics or {})
    if patient is not None:
        data = {
            "first_name": patient.first_name,
            "last_name": patient.last_name,
            "date_of_birth": patient.date_of_birth,
            "phone": patient.phone,
            "email": patient.email,
            **{k: v for k, v in data.items() if v},
        }
        if not data.get("insurance") and patient.insurance:
            data["insurance"] = patient.insurance
    insurance = data.get("insurance") or {}
    lines = [
        "Phone call handled by the Hello AI receptionist - encounter note",
        f"Reference: {reference}",
        f"Call: {call.external_id}, started {_local(call.started_at, zone)}"
        + (f", ended {_local(call.ended_at, zone)}" if call.ended_at else ""),
        f"Caller phone: {call.caller_phone or '-'}",
        "",
        "Appointment",
        f"  Type: {booking.appointment_type.name}",
        f"  When: {_local(booking.start, zone)} to {_local(booking.end, zone)}",
        f"  Provider: {booking.provider.name}",
        f"  Location: {booking.location.name}",
        f"  EHR appointment id: {booking.ehr_appointment_id or '-'}",
        "",
        f"Stated reason: {booking.reason or '-'}",
        "",
        "Demographics collected",
        f"  Name: {data.get('first_name', '')} {data.get('last_name', '')}".rstrip(),
        f"  Date of birth: {data.get('date_of_birth') or '-'}",
        f"  Phone: {data.get('phone') or '-'}",
        f"  Email: {data.get('email') or '-'}",
        "Insurance collected",
    ]
    if isinstance(insurance, dict) and insurance:
        lines += [f"  {key}: {value}" for key, value in sorted(insurance.items())]
    else:
        lines.append(f"  {insurance or 'none given'}")
    lines += ["", "Transcript"]
    for turn in call.transcript or []:
        lines.append(
            f"  [{turn.get('at', '')}] {str(turn.get('speaker', '')).title()}: "
            f"{turn.get('text', '')}"
        )
    day = timezone.localtime(call.started_at, zone).date().isoformat()
    return f"Phone call note {day} ({reference})", "\n".join(lines) + "\n"


def write_note(call_id: int, practice_id: int) -> Outcome:
    """One run of the note task: `WRITTEN`, `SENT` (the EHR is inserting it), `REJECTED` (post
    again after a wait), `FAILED`, or why it did nothing (`BUSY`: look again shortly). Raises
    EHRTransientError for the task to retry."""
    from ehr.errors import EHRAuthError, EHRNotFound, EHRValidationError
    from ehr.selectors import connection_for_location

    require_phi_allowed(practice_id)
    with tenant_context(practice_id), session_lock(LOCK_NAMESPACE_NOTE, call_id) as got:
        if not got:
            return Outcome.BUSY
        note = (
            EncounterNote.objects.select_related(
                "call",
                "booking",
                "booking__patient",
                "booking__location",
                "booking__location__practice",
                "booking__provider",
                "booking__appointment_type",
            )
            .filter(call_id=call_id)
            .first()
        )
        if note is None:
            return Outcome.MISSING
        if note.status != NoteStatus.PENDING:
            return Outcome(note.status)
        EncounterNote.objects.filter(pk=note.pk).update(attempts=F("attempts") + 1)
        booking = note.booking
        conn = connection_for_location(booking.location_id)
        try:
            if booking.status != BookingStatus.CONFIRMED:
                raise PermanentNoteError(
                    f"The booking is {booking.status}, not confirmed: no note is written."
                )
            if conn is None:
                raise PermanentNoteError(
                    "This location has no EHR connection; connect it, then retry the note."
                )
            patient = booking.patient
            if patient is None or patient.ehr_id is None:
                raise PermanentNoteError("The booking has no patient in the EHR to write to.")
            if note.content is None:
                if note.call.transcript is None:
                    raise PermanentNoteError("The transcript is gone (purged); nothing to write.")
                _, text = compose_note(note.call, booking, note.reference)
                note.content = text
                note.ehr_patient_id = patient.ehr_id
                note.save(update_fields=["content", "ehr_patient_id", "updated_at"])
            title, _ = compose_note(note.call, booking, note.reference)
            ehr = port_for(conn)
            # A run killed after posting left the document in the EHR: adopt it.
            doc = ehr.find_document(patient.ehr_id, note.reference) or ehr.create_document(
                patient.ehr_id,
                title=title,
                content=note.content or "",
                reference=note.reference,
            )
        except PermanentNoteError as exc:
            mark_note_failed(note.pk, str(exc))
            return Outcome.FAILED
        except (EHRValidationError, EHRNotFound, EHRAuthError) as exc:
            mark_note_failed(
                note.pk,
                f"The EHR refused the note: {'; '.join(exc.messages) or exc}. "
                "Fix the cause, then retry the note.",
            )
            return Outcome.FAILED
        return _apply_document(note, doc)


def max_rejections() -> int:
    return int(getattr(settings, "ENCOUNTER_NOTE_MAX_REJECTIONS", 3))


def _apply_document(note: EncounterNote, doc: EHRDocument) -> Outcome:
    """Record what the EHR says about our document: sent, written, failed, or `REJECTED` (the
    insertion failed and the note is pending again, for the task to post after a backoff)."""
    now = timezone.now()
    with transaction.atomic():
        locked = EncounterNote.objects.select_for_update().get(pk=note.pk)
        if locked.status in (NoteStatus.WRITTEN, NoteStatus.FAILED):
            return Outcome(locked.status)
        locked.ehr_document_id = doc.id
        fields = ["ehr_document_id", "status", "updated_at"]
        if locked.sent_at is None:
            locked.sent_at = now
            fields.append("sent_at")
        if doc.written:
            locked.status = NoteStatus.WRITTEN
            locked.written_at = now
            locked.failure_reason = ""
            fields += ["written_at", "failure_reason"]
        elif doc.refused and locked.rejections < max_rejections():
            # Posted again by the task, after a backoff: the lookup skips a failed insertion,
            # so the next run writes a new document rather than adopting this one.
            locked.status = NoteStatus.PENDING
            locked.ehr_document_id = None
            locked.rejections += 1
            fields.append("rejections")
            locked.save(update_fields=fields)
            log.warning("encounter note %s rejected by the EHR; posting it again", note.pk)
            return Outcome.REJECTED
        elif doc.refused:
            locked.status = NoteStatus.FAILED
            locked.failure_reason = (
                f"The EHR rejected the note: {doc.insertion_error or 'no reason given'}"
                + (f" ({locked.rejections + 1} times)" if locked.rejections else "")
                + ". Retry the note."
            )[:2000]
            fields.append("failure_reason")
        else:
            locked.status = NoteStatus.SENT
        locked.save(update_fields=fields)
        return Outcome(locked.status)


def poll_note(call_id: int, practice_id: int) -> Outcome:
    """Read a sent note's document back from the EHR and apply its insertion state."""
    from ehr.selectors import connection_for_location

    require_phi_allowed(practice_id)
    with tenant_context(practice_id):
        note = EncounterNote.objects.select_related("booking").filter(call_id=call_id).first()
        if note is None or note.status != NoteStatus.SENT:
            return Outcome(note.status) if note else Outcome.MISSING
        conn = connection_for_location(note.booking.location_id)
        if conn is None or note.ehr_patient_id is None or note.ehr_document_id is None:
            return Outcome(note.status)
        doc = port_for(conn).document(note.ehr_patient_id, note.ehr_document_id)
        return _apply_document(note, doc)


def retry_note(note: EncounterNote) -> EncounterNote:
    """Staff: write a failed note again (a document the EHR rejected is not adopted: the
    lookup skips failed insertions)."""
    with transaction.atomic():
        note = EncounterNote.objects.select_for_update().get(pk=note.pk)
        if note.status != NoteStatus.FAILED:
            return note
        note.status = NoteStatus.PENDING
        note.failure_reason = ""
        note.ehr_document_id = None
        note.rejections = 0
        note.save(
            update_fields=[
                "status",
                "failure_reason",
                "ehr_document_id",
                "rejections",
                "updated_at",
            ]
        )
        queue_note(note.call_id, note.practice_id)
    return note


def sweep_notes(stale_seconds: float = 60.0, limit: int = 500) -> int:
    """Beat: repair what a lost message missed. Links settled bookings to their calls, creates
    missing notes, re-queues pending notes and polls sent ones older than `stale_seconds`.
    Moves ids only; every PHI step runs in the gated tasks."""
    from calls import tasks

    now = timezone.now()
    with cross_tenant("calls sweep: find bookings, calls and notes that need a step"):
        unnoted = list(
            Booking.objects.filter(
                status=BookingStatus.CONFIRMED,
                call_id__isnull=False,
                confirmed_at__gte=now - timedelta(days=2),
            )
            .exclude(pk__in=EncounterNote.objects.values("booking_id"))
            .values_list("pk", "practice_id")[:limit]
        )
        # Calls left "in progress" by a booking that failed or became a request (when the
        # hand-over was lost): linking again settles their outcome.
        unsettled = list(
            Call.objects.filter(
                outcome=CallOutcome.IN_PROGRESS,
                booking__status__in=[BookingStatus.FAILED, BookingStatus.REQUESTED],
            ).values_list("booking_id", "practice_id")[:limit]
        )
        stale = list(
            EncounterNote.objects.filter(
                status__in=[NoteStatus.PENDING, NoteStatus.SENT],
                updated_at__lt=now - timedelta(seconds=stale_seconds),
            ).values_list("call_id", "practice_id", "status")[:limit]
        )
    for booking_id, practice_id in [*unnoted, *unsettled]:
        booking_confirmed(booking_id, practice_id)
    queue = tasks.notes_queue()
    for call_id, practice_id, status in stale:
        task = tasks.write_encounter_note if status == NoteStatus.PENDING else tasks.poll_note
        try:
            task.apply_async(args=(call_id, practice_id), queue=queue)
        except Exception as exc:
            log.warning("sweep could not queue note of call %s: %s", call_id, type(exc).__name__)
            break
    return len(unnoted) + len(unsettled) + len(stale)


# --- revealing -------------------------------------------------------------------------------


def reveal_transcript(call: Call, user: User, reason: str) -> list[dict[str, Any]]:
    """The transcript's turns for a person who stated why; the access event commits with it."""
    require_phi_allowed(call.practice_id)
    audit.record(
        AuditAction.PHI_READ,
        practice=call.practice_id,
        object_type=TRANSCRIPT_OBJECT,
        object_ids=[call.pk],
        reason=reason.strip(),
        actor=user,
    )
    return list(call.transcript or [])


def record_call_access(
    practice: Practice, call_ids: Sequence[int], view: str, filters: dict[str, Any] | None = None
) -> None:
    """ONE access event per page, naming the calls shown (their masked numbers are PHI)."""
    audit.record(
        AuditAction.PHI_READ,
        practice=practice,
        object_type=CALL_OBJECT,
        object_ids=list(call_ids),
        details={"view": view, "filters": filters or {}},
    )


# --- retention -------------------------------------------------------------------------------


def retention_for(practice: Practice | int) -> CallRetention:
    """The practice's setting, or an unsaved row with the defaults."""
    practice_id = _practice_id(practice)
    found = CallRetention.objects.for_practice(practice_id).first()
    return found or CallRetention(practice_id=practice_id)


@refused_in_support_session(SupportForbidden.RETENTION)
def set_retention(
    practice: Practice | int, *, transcript_days: int, note_days: int
) -> CallRetention:
    practice_id = _practice_id(practice)
    with transaction.atomic():
        row, _ = CallRetention.objects.select_for_update().get_or_create(practice_id=practice_id)
        row.transcript_days = transcript_days
        row.note_days = note_days
        row.save()
    return row


def _purge_rows(
    model: type[Call] | type[EncounterNote],
    ids: list[int],
    field: str,
    purged_at_field: str,
    now: datetime,
) -> int:
    """Empty `field` of each row and stamp when, one locked row at a time through save()."""
    for pk in ids:
        with transaction.atomic():
            row = model.objects.select_for_update().get(pk=pk)
            setattr(row, field, None)
            setattr(row, purged_at_field, now)
            row.save(update_fields=[field, purged_at_field, "updated_at"])
    return len(ids)


def purge_practice(practice_id: int, now: datetime | None = None) -> dict[str, int]:
    """Purge this practice's transcripts and local note copies past retention, row by row
    through save() so auditlog records each tombstone (values redacted). Transcripts a note
    still waits for are kept until the note is written or failed."""
    now = now or timezone.now()
    purged = {"transcripts": 0, "notes": 0}
    with tenant_context(practice_id):
        setting = retention_for(practice_id)
        transcript_cutoff = now - timedelta(days=setting.transcript_days)
        note_cutoff = now - timedelta(days=setting.note_days)
        call_ids = list(
            Call.objects.filter(
                transcript__isnull=False,
                transcript_purged_at__isnull=True,
                transcript_received_at__lt=transcript_cutoff,
            )
            .exclude(encounter_note__status__in=[NoteStatus.PENDING, NoteStatus.SENT])
            .values_list("pk", flat=True)
        )
        purged["transcripts"] = _purge_rows(
            Call, call_ids, "transcript", "transcript_purged_at", now
        )
        note_ids = list(
            EncounterNote.objects.filter(
                content__isnull=False, purged_at__isnull=True, created_at__lt=note_cutoff
            ).values_list("pk", flat=True)
        )
        purged["notes"] = _purge_rows(EncounterNote, note_ids, "content", "purged_at", now)
    if purged["transcripts"] or purged["notes"]:
        log.info("practice %s: purged %s", practice_id, purged)
    return purged


def purge_expired(now: datetime | None = None) -> dict[str, int]:
    """Beat: every practice's purge. Reads ids and dates only; never PHI."""
    with cross_tenant("calls retention: which practices hold call data"):
        practice_ids = sorted(
            set(Call.objects.filter(transcript__isnull=False).values_list("practice_id", flat=True))
            | set(
                EncounterNote.objects.filter(content__isnull=False).values_list(
                    "practice_id", flat=True
                )
            )
        )
    total = {"transcripts": 0, "notes": 0}
    for practice_id in practice_ids:
        for key, value in purge_practice(practice_id, now).items():
            total[key] += value
    return total


def phone_digest(practice: Practice | int, phone: str) -> bytes | None:
    """The blind index of a number typed into the search (never a plaintext comparison)."""
    return blind_index(practice, phone, kind="phone")
