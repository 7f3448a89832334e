from __future__ import annotations

from django.db import models
from django.db.models import Q

from compliance.crypto import BlindIndexField, EncryptedJSONField, EncryptedTextField, PHIModel
from core.tenancy import TenantModel

__all__ = [
    "DEFAULT_NOTE_RETENTION_DAYS",
    "DEFAULT_TRANSCRIPT_RETENTION_DAYS",
    "Call",
    "CallOutcome",
    "CallRetention",
    "EncounterNote",
    "NoteStatus",
]

# Six years (HIPAA's documentation retention), counting the leap days.
DEFAULT_NOTE_RETENTION_DAYS = 6 * 365 + 2
DEFAULT_TRANSCRIPT_RETENTION_DAYS = 365


class CallOutcome(models.TextChoices):
    """What a call came to. A booking decides `booked`, `requested` (a request-mode type: staff
    confirm it first) and `booking_failed` itself (whenever it settles, during or after the
    call); the agent states the others when no booking was made, and a call that ended with
    nothing decided is `abandoned` rather than in progress forever.
    """

    IN_PROGRESS = "in_progress", "In progress"
    BOOKED = "booked", "Booked"
    REQUESTED = "requested", "Requested"
    BOOKING_FAILED = "booking_failed", "Booking failed"
    ESCALATED = "escalated", "Escalated"
    MESSAGE_TAKEN = "message_taken", "Message taken"
    ABANDONED = "abandoned", "Abandoned"
    FAILED = "failed", "Failed"


class Call(PHIModel):
    """One phone call the voice agent answered. The caller's number is PHI: stored encrypted and
    found only through its blind index. The transcript (turns) is encrypted; when retention
    purges it the row stays, with `transcript_purged_at` as the tombstone."""

    external_id = models.CharField(max_length=200, help_text="The voice platform's call id")
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    caller_phone = EncryptedTextField(null=True, blank=True)
    caller_phone_index = BlindIndexField(source="caller_phone", kind="phone")
    outcome = models.CharField(
        max_length=16, choices=CallOutcome.choices, default=CallOutcome.IN_PROGRESS
    )
    api_client = models.ForeignKey(
        "scheduling.ApiClient", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The booking made during the call (a booking names its call by `Booking.call_id`: our id,
    # or the voice platform's external id); linked here so lists join instead of searching.
    booking = models.ForeignKey(
        "scheduling.Booking", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    transcript = EncryptedJSONField(null=True, blank=True)
    transcript_turns = models.PositiveIntegerField(default=0)
    transcript_received_at = models.DateTimeField(null=True, blank=True)
    transcript_purged_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            models.Index(fields=["practice", "started_at"]),
            models.Index(fields=["practice", "outcome", "started_at"], name="call_outcome_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["practice", "external_id"], name="call_external_id_unique"
            ),
            models.CheckConstraint(
                condition=Q(transcript_purged_at__isnull=True) | Q(transcript__isnull=True),
                name="call_purged_transcript_is_gone",
            ),
        ]

    def __str__(self) -> str:
        return f"Call {self.pk}"


class NoteStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent, waiting for the EHR"
    WRITTEN = "written", "Written to the EHR"
    FAILED = "failed", "Failed"


class EncounterNote(PHIModel):
    """The structured note of a booked call, written once to the patient's record in the EHR.

    `reference` is in the document's title: a retry (or a redelivered task) looks the patient's
    documents up by it before posting, so the EHR never gets the note twice. `content` is the
    text as sent (encrypted), composed once so every attempt sends the same document.
    """

    call = models.OneToOneField(Call, on_delete=models.PROTECT, related_name="encounter_note")
    booking = models.ForeignKey("scheduling.Booking", on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=8, choices=NoteStatus.choices, default=NoteStatus.PENDING)
    failure_reason = models.TextField(blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    # Insertions the EHR rejected and we posted again (ENCOUNTER_NOTE_MAX_REJECTIONS of them
    # before the note is failed for staff): a rejection is often the EHR's own passing trouble.
    rejections = models.PositiveIntegerField(default=0)
    content = EncryptedTextField(null=True, blank=True)
    ehr_patient_id = models.BigIntegerField(null=True, blank=True)
    ehr_document_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    written_at = models.DateTimeField(null=True, blank=True)
    purged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["practice", "status"], name="note_status_idx")]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status__in=["sent", "written"]) | Q(ehr_document_id__isnull=False),
                name="note_sent_has_document",
            ),
            models.CheckConstraint(
                condition=Q(purged_at__isnull=True) | Q(content__isnull=True),
                name="note_purged_content_is_gone",
            ),
        ]

    @property
    def reference(self) -> str:
        """Stable across retries, free of PHI, unique: what the EHR document is found by."""
        return f"hello-note-{self.row_key}"

    def __str__(self) -> str:
        return f"Encounter note of call {self.call_id}"


class CallRetention(TenantModel):
    """How long this practice keeps call data here. Local transcripts: `transcript_days`;
    our copy of notes written to the EHR: `note_days` (six years by default). A practice without
    a row uses the defaults."""

    transcript_days = models.PositiveIntegerField(default=DEFAULT_TRANSCRIPT_RETENTION_DAYS)
    note_days = models.PositiveIntegerField(default=DEFAULT_NOTE_RETENTION_DAYS)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["practice"], name="call_retention_one_per_practice"),
            models.CheckConstraint(
                condition=Q(transcript_days__gte=1) & Q(note_days__gte=1),
                name="call_retention_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"Call retention of practice {self.practice_id}"
