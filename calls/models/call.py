from __future__ import annotations

from django.db import models

from compliance.crypto import BlindIndexField, EncryptedTextField, PHIModel

__all__ = ["Call", "CallOutcome"]


class CallOutcome(models.TextChoices):
    IN_PROGRESS = "in_progress", "In progress"
    BOOKED = "booked", "Booked"
    ESCALATED = "escalated", "Escalated"
    MESSAGE_TAKEN = "message_taken", "Message taken"
    FAILED = "failed", "Failed"


class Call(PHIModel):
    """One phone call the voice agent answered. The caller's number is PHI: stored encrypted and
    found only through its blind index."""

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
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["practice", "started_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["practice", "external_id"], name="call_external_id_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"Call {self.pk}"
