"""Escalation protocols (versioned, clinician-approved), the on-call rota and screening.

A protocol is a stable identity (`EscalationProtocol`, keyed like the configuration file) whose
content lives in numbered `ProtocolVersion`s. Editing never changes an approved version: it opens
(or updates) the protocol's one draft; a clinician approves the draft, which makes it the live
version and the previous live one superseded. The database holds the rules: at most one live and
one draft version per protocol (partial unique constraints), a live version is always approved.
"""

from __future__ import annotations

from typing import Any

from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import ArrayField, RangeOperators
from django.db import models
from django.db.models import F, Func, Q, Value

from compliance.crypto import EncryptedTextField, PHIModel
from core.tenancy import TenantModel

__all__ = [
    "DEFAULT_GROUP_KEY",
    "ApprovalPolicy",
    "EscalationProtocol",
    "OnCallGroup",
    "OnCallShift",
    "ProtocolVersion",
    "Route",
    "Screening",
    "Severity",
    "VersionStatus",
]


class Severity(models.TextChoices):
    EMERGENCY = "emergency", "Emergency: tell the caller to dial 911"
    URGENT = "urgent", "Urgent: connect to the on-call provider now"
    ROUTINE = "routine", "Routine: message for the next business day"


SEVERITY_RANK: dict[str, int] = {"emergency": 3, "urgent": 2, "routine": 1}


class Route(models.TextChoices):
    ON_CALL = "on_call", "The on-call provider"
    EMERGENCY_SERVICES = "911", "Dial 911"
    FRONT_DESK = "front_desk", "The front desk"
    MESSAGE = "message", "Take a message"


class VersionStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    LIVE = "live", "Live"
    SUPERSEDED = "superseded", "Superseded"
    WITHDRAWN = "withdrawn", "Withdrawn"


DEFAULT_GROUP_KEY = "on-call"
DEFAULT_GROUP_NAME = "On call"


class OnCallGroup(TenantModel):
    """Who takes a protocol's calls when it names no provider: the on-call of a group
    ("ophthalmology on call", "plastic surgery on call"). The rota has a line per group; a
    practice's first group, `on-call`, is the one protocols and shifts naming none belong to."""

    key = models.SlugField(max_length=64)
    name = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["practice", "key"], name="on_call_group_key"),
        ]

    def __str__(self) -> str:
        return self.name


class EscalationProtocol(TenantModel):
    """The identity of a protocol across its versions (`key` is the configuration file's)."""

    key = models.SlugField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["key"]
        constraints = [
            models.UniqueConstraint(fields=["practice", "key"], name="escalation_protocol_key"),
        ]

    def __str__(self) -> str:
        return self.key


class ProtocolVersion(TenantModel):
    """One version of a protocol's content. Approved versions are never edited."""

    protocol = models.ForeignKey(
        EscalationProtocol, on_delete=models.CASCADE, related_name="versions"
    )
    number = models.PositiveIntegerField()
    status = models.CharField(
        max_length=12, choices=VersionStatus.choices, default=VersionStatus.DRAFT
    )
    name = models.CharField(max_length=200)
    appointment_types = models.ManyToManyField(
        "scheduling.AppointmentType",
        blank=True,
        related_name="escalation_protocol_versions",
        help_text="Procedures it covers; none means every caller",
    )
    within_days_of_procedure = models.PositiveIntegerField(
        null=True, blank=True, help_text="Applies only this many days after the procedure"
    )
    triggers = ArrayField(models.CharField(max_length=200), default=list)
    severity = models.CharField(max_length=12, choices=Severity.choices)
    route = models.CharField(max_length=12, choices=Route.choices)
    instructions = models.TextField(blank=True, default="", help_text="What the agent says")
    # Who takes an on-call route: this provider, else the on-call of this group (none: the
    # practice's default group).
    route_provider = models.ForeignKey(
        "scheduling.Provider",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="A provider who takes these calls themself",
    )
    on_call_group = models.ForeignKey(
        OnCallGroup,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="protocol_versions",
        help_text="Whose on-call takes these calls; none means the practice's default group",
    )
    created_by = models.ForeignKey(
        "portal.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Whoever saved the draft last: an author too, so they may not approve it either.
    edited_by = models.ForeignKey(
        "portal.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    approved_by = models.ForeignKey(
        "portal.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    approval_source = models.CharField(
        max_length=16,
        blank=True,
        default="",
        choices=[("portal", "Approved in the portal"), ("config_import", "Configuration import")],
    )
    approval_note = models.CharField(max_length=200, blank=True, default="")
    self_approved = models.BooleanField(
        default=False, help_text="Approved by its own author under the practice's policy"
    )

    class Meta:
        ordering = ["protocol", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["protocol", "number"], name="protocol_version_number"),
            models.UniqueConstraint(
                fields=["protocol"], condition=Q(status="live"), name="protocol_one_live_version"
            ),
            models.UniqueConstraint(
                fields=["protocol"], condition=Q(status="draft"), name="protocol_one_draft"
            ),
            models.CheckConstraint(
                condition=Q(status="draft") | Q(approved_at__isnull=False),
                name="protocol_version_approved",
            ),
            models.CheckConstraint(condition=~Q(triggers=[]), name="protocol_version_has_triggers"),
            models.CheckConstraint(
                condition=Q(within_days_of_procedure__isnull=True)
                | Q(within_days_of_procedure__gt=0),
                name="protocol_version_window",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.number}"

    @property
    def is_live(self) -> bool:
        return self.status == VersionStatus.LIVE

    @property
    def author_ids(self) -> set[int]:
        """Who wrote this version's content (its creator and its last editor)."""
        return {pk for pk in (self.created_by_id, self.edited_by_id) if pk is not None}


class ApprovalPolicy(TenantModel):
    """Who may approve the practice's protocols. By default a version is approved by a clinician
    other than its authors: a second pair of eyes on what the agent tells urgent callers. A
    practice with a single clinician has no second pair, and may say so explicitly
    (`allow_self_approval`); the choice is a tracked change (auditlog), and it stops applying
    as soon as the practice has a second clinician."""

    allow_self_approval = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        "portal.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["practice"], name="approval_policy_one_per_practice"),
        ]

    def __str__(self) -> str:
        return f"Protocol approval policy of practice {self.practice_id}"


def _id_range(field: str) -> Func:
    return Func(F(field), F(field), Value("[]"), function="int8range")


class OnCallShift(TenantModel):
    """The provider who takes a group's urgent calls from `start` to `end`. A provider cannot
    overlap themself (exclusion constraint); two providers may (primary and backup)."""

    provider = models.ForeignKey(
        "scheduling.Provider", on_delete=models.CASCADE, related_name="on_call_shifts"
    )
    group = models.ForeignKey(OnCallGroup, on_delete=models.PROTECT, related_name="shifts")
    start = models.DateTimeField()
    end = models.DateTimeField()
    note = models.CharField(max_length=200, blank=True, default="")
    created_by = models.ForeignKey(
        "portal.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["start", "id"]
        indexes = [models.Index(fields=["practice", "start"])]
        constraints = [
            models.CheckConstraint(condition=Q(end__gt=F("start")), name="on_call_end_after_start"),
            ExclusionConstraint(
                name="on_call_no_self_overlap",
                expressions=[
                    (_id_range("provider_id"), RangeOperators.OVERLAPS),
                    (
                        Func(F("start"), F("end"), Value("[)"), function="tstzrange"),
                        RangeOperators.OVERLAPS,
                    ),
                ],
            ),
        ]

    def __str__(self) -> str:
        return f"On call {self.provider_id} {self.start:%Y-%m-%d %H:%M}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.group_id is None:  # a shift naming no group covers the default one
            self.group, _ = OnCallGroup.objects.get_or_create(
                practice_id=self.practice_id,
                key=DEFAULT_GROUP_KEY,
                defaults={"name": DEFAULT_GROUP_NAME},
            )
        super().save(*args, **kwargs)


class Screening(PHIModel):
    """One screening decision on a call: what the caller said (PHI, encrypted) and what the
    live protocols decided, so staff can see why a call was escalated."""

    call = models.ForeignKey("calls.Call", on_delete=models.CASCADE, related_name="screenings")
    text = EncryptedTextField()
    procedure_date = EncryptedTextField(null=True, blank=True, help_text="ISO date (PHI)")
    appointment_type = models.ForeignKey(
        "scheduling.AppointmentType",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    escalate = models.BooleanField()
    protocol_version = models.ForeignKey(
        ProtocolVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="screenings"
    )
    severity = models.CharField(max_length=12, choices=Severity.choices, blank=True, default="")
    matched_trigger = models.CharField(max_length=200, blank=True, default="")
    routed_to = models.ForeignKey(
        "scheduling.Provider", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    screened_at = models.DateTimeField()

    class Meta:
        ordering = ["-screened_at", "-id"]
        indexes = [models.Index(fields=["practice", "screened_at"])]
