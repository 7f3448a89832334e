"""Tenancy and accounts: practices, their locations, the people who work in them and their roles."""

from __future__ import annotations

import zoneinfo

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower

from core.tenancy import TenantModel


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not an IANA time zone (for example America/New_York)")


class VendorRole(models.TextChoices):
    NONE = "", "Practice staff"
    SUPPORT = "support", "Vendor support"
    VENDOR_COMPLIANCE = "vendor_compliance", "Vendor compliance"


class Role(models.TextChoices):
    PRACTICE_MANAGER = "practice_manager", "Practice manager"
    CLINICIAN = "clinician", "Clinician"
    FRONT_DESK = "front_desk", "Front desk"
    COMPLIANCE_OFFICER = "compliance_officer", "Compliance officer"


class User(AbstractUser):
    """A person who signs in. Practice staff get roles through memberships; Hello staff carry a
    vendor role on the account itself."""

    vendor_role = models.CharField(
        max_length=32, choices=VendorRole.choices, blank=True, default=""
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                Lower("email"), name="user_email_ci_unique", condition=~models.Q(email="")
            ),
            # Sign-in matches usernames case-insensitively, so they must be unique that way.
            models.UniqueConstraint(Lower("username"), name="user_username_ci_unique"),
            models.CheckConstraint(
                condition=models.Q(vendor_role="") | models.Q(is_staff=True),
                name="vendor_roles_are_staff",
            ),
        ]

    @property
    def is_vendor_staff(self) -> bool:
        return bool(self.vendor_role)


class Practice(models.Model):
    """A tenant: one specialty practice, with its own data, keys, BAA and EHR connection."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    timezone = models.CharField(
        max_length=64, default="America/New_York", validators=[validate_timezone]
    )
    # What this practice's callers say, added to the shipped lexicon for this practice only
    # (`scheduling.intents`): [{"terms": [...], "broader": [...]}], terms meaning the same.
    lay_terms = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)


class Location(TenantModel):
    """A physical office of a practice; the EHR's location."""

    key = models.SlugField(max_length=64, help_text="The configuration file's handle")
    name = models.CharField(max_length=200)
    timezone = models.CharField(
        max_length=64,
        blank=True,
        default="",
        validators=[validate_timezone],
        help_text="Empty means the practice's time zone",
    )
    working_hours_mode = models.CharField(
        max_length=8,
        choices=[
            ("manual", "Manual (configured here)"),
            ("synced", "Synced from the EHR"),
            ("native", "The EHR's own free slots"),
        ],
        default="manual",
        help_text="One or the other per location: mixing them overlaps records (the guide)",
    )
    ehr_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["practice", "key"], name="location_key_unique"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone or self.practice.timezone)


class Membership(models.Model):
    """A person's role in one practice. One row per role; a person may hold several."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    practice = models.ForeignKey(Practice, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=32, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["practice__name", "role"]
        constraints = [
            models.UniqueConstraint(fields=["user", "practice", "role"], name="membership_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.practice} · {self.get_role_display()}"
