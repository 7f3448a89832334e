"""The scheduling domain, named as the NexHealth guides name it.

Providers work in operatories during working hours bound to appointment types; blocks (calendar
unavailabilities) and appointments take time away; provider rules narrow when a type may be booked
with a provider; holds claim a slot for a caller for a few minutes. Appointment descriptors are the
EHR's own types and procedure codes that a booked appointment carries into the EHR.

The mirror (providers, operatories, descriptors, working hours, blocks, appointments) comes from
the EHR by sync and webhooks; `ehr_id` links each row to its EHR record.
"""

from __future__ import annotations

from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import ArrayField, RangeOperators
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Func, Q, Value

from accounts.models import Location
from compliance.crypto import BlindIndexField, EncryptedJSONField, EncryptedTextField, PHIModel
from core.tenancy import TenantModel

WEEKDAY_CHOICES = [
    (d, d) for d in ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
]


class WorkingHoursMode(models.TextChoices):
    """Per location (`Location.working_hours_mode`), one or the other: mixing them creates
    overlapping records (the guide's warning)."""

    MANUAL = "manual", "Manual (configured here)"
    SYNCED = "synced", "Synced from the EHR"
    # The EHR's own free slots (`NativeSlot`, kept by the EHR's change poll) say when a provider
    # is free; the working hours configured here still say where (the room) and for what (the
    # types), so only the time comes from the EHR.
    NATIVE = "native", "The EHR's own free slots"


# Modes whose working hours are configured here (never the EHR's synced schedule).
LOCAL_HOURS_MODES = (WorkingHoursMode.MANUAL, WorkingHoursMode.NATIVE)


class PatientStatus(models.TextChoices):
    NEW = "new", "New patients"
    EXISTING = "existing", "Existing patients"
    ANY = "any", "Any patient"


def one_row_per_ehr_id(model_name: str) -> models.UniqueConstraint:
    """A row mirrored from the EHR (its `ehr_id` set) exists once per practice; rows made in
    the portal have no EHR id and are not constrained by it."""
    return models.UniqueConstraint(
        fields=["practice", "ehr_id"],
        name=f"{model_name}_ehr_id_unique",
        condition=Q(ehr_id__isnull=False),
    )


class Provider(TenantModel):
    key = models.SlugField(max_length=64)
    name = models.CharField(max_length=200)
    accepts_new_patients = models.BooleanField(default=True)
    on_call_phone = models.CharField(
        max_length=20, blank=True, default="", help_text="E.164, for example +15555550101"
    )
    active = models.BooleanField(default=True)
    ehr_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["practice", "key"], name="provider_key_unique"),
            one_row_per_ehr_id("provider"),
        ]

    def __str__(self) -> str:
        return self.name


class Operatory(TenantModel):
    """A room or chair. Capabilities (procedure, or, imaging) decide which types it can host."""

    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="operatories")
    key = models.SlugField(max_length=64)
    name = models.CharField(max_length=200)
    capabilities = ArrayField(models.SlugField(max_length=32), default=list, blank=True)
    active = models.BooleanField(default=True)
    ehr_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "operatories"
        constraints = [
            models.UniqueConstraint(fields=["practice", "key"], name="operatory_key_unique"),
            one_row_per_ehr_id("operatory"),
        ]

    def __str__(self) -> str:
        return self.name


class AppointmentDescriptor(TenantModel):
    """The EHR's own appointment type or procedure code (D1110 Prophylaxis Adult), read from it."""

    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="descriptors")
    code = models.CharField(max_length=32)
    description = models.CharField(max_length=200, blank=True, default="")
    kind = models.CharField(
        max_length=32,
        default="procedure_code",
        choices=[
            ("procedure_code", "Procedure code"),
            ("appointment_type", "EHR appointment type"),
        ],
    )
    ehr_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.UniqueConstraint(fields=["location", "code"], name="descriptor_code_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.description}".strip()


class BookingMode(models.TextChoices):
    """How the voice agent's booking of a type lands: straight onto the schedule, or as a request
    staff confirm first (Nextech's follow-up list; for other EHRs, our front desk's queue)."""

    BOOK = "book", "Book straight onto the schedule"
    REQUEST = "request", "Request: staff confirm it first"


class AppointmentType(TenantModel):
    """What a caller can be booked for: duration, who may see them, which rooms, which codes."""

    key = models.SlugField(max_length=64)
    name = models.CharField(max_length=200)
    minutes = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    new_patients = models.BooleanField(default=True)
    existing_patients = models.BooleanField(default=True)
    providers = models.ManyToManyField(
        Provider,
        blank=True,
        related_name="appointment_types",
        help_text="Eligible providers; none means any provider",
    )
    required_capabilities = ArrayField(models.SlugField(max_length=32), default=list, blank=True)
    descriptors = models.ManyToManyField(
        AppointmentDescriptor, blank=True, related_name="appointment_types"
    )
    lead_time_hours = models.PositiveIntegerField(default=0)
    horizon_days = models.PositiveIntegerField(default=90, validators=[MinValueValidator(1)])
    instructions = models.TextField(blank=True, default="")
    bookable = models.BooleanField(default=True, help_text="May the voice agent book it?")
    booking_mode = models.CharField(
        max_length=8,
        choices=BookingMode.choices,
        default=BookingMode.BOOK,
        help_text="Booked at once, or a request staff confirm (the agent says which)",
    )
    ehr_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["practice", "key"], name="appointment_type_key_unique"),
            models.CheckConstraint(
                condition=Q(booking_mode__in=["book", "request"]),
                name="appointment_type_booking_mode",
            ),
            models.CheckConstraint(condition=Q(minutes__gt=0), name="appointment_type_minutes"),
            models.CheckConstraint(
                condition=Q(new_patients=True) | Q(existing_patients=True),
                name="appointment_type_some_patients",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class CallerPhrase(TenantModel):
    """Words callers use for a type ("nose job" -> New Patient Consultation)."""

    appointment_type = models.ForeignKey(
        AppointmentType, on_delete=models.CASCADE, related_name="phrases"
    )
    text = models.CharField(max_length=200)

    class Meta:
        ordering = ["text"]
        constraints = [
            models.UniqueConstraint(
                F("appointment_type"), models.functions.Lower("text"), name="caller_phrase_unique"
            ),
        ]

    def __str__(self) -> str:
        return self.text


class WorkingHour(TenantModel):
    """A provider working in one operatory: weekly on `days`, or on one `specific_date`."""

    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="working_hours")
    operatory = models.ForeignKey(Operatory, on_delete=models.CASCADE, related_name="working_hours")
    days = ArrayField(
        models.CharField(max_length=9, choices=WEEKDAY_CHOICES), default=list, blank=True
    )
    specific_date = models.DateField(null=True, blank=True)
    begin = models.TimeField()
    end = models.TimeField()
    label = models.CharField(
        max_length=100,
        blank=True,
        default="",
        help_text="Synced blockout name; empty for base working hours",
    )
    appointment_types = models.ManyToManyField(
        AppointmentType, blank=True, related_name="working_hours"
    )
    source = models.CharField(
        max_length=8, choices=WorkingHoursMode.choices, default=WorkingHoursMode.MANUAL
    )
    active = models.BooleanField(default=True)
    ehr_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["provider", "begin"]
        constraints = [
            models.CheckConstraint(condition=Q(begin__lt=F("end")), name="working_hour_order"),
            models.CheckConstraint(
                condition=Q(specific_date__isnull=False) | ~Q(days=[]),
                name="working_hour_when",
            ),
        ]


class Block(TenantModel):
    """A calendar unavailability (staff meeting, holiday). No provider and no operatory means
    the whole location."""

    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="blocks")
    provider = models.ForeignKey(
        Provider, null=True, blank=True, on_delete=models.CASCADE, related_name="blocks"
    )
    operatory = models.ForeignKey(
        Operatory, null=True, blank=True, on_delete=models.CASCADE, related_name="blocks"
    )
    start = models.DateTimeField()
    end = models.DateTimeField()
    reason = models.CharField(max_length=200, blank=True, default="")
    ehr_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["start"]
        # Busy-time reads ask "start < hi AND end > lo": the end index keeps years of history
        # out of the scan.
        indexes = [
            models.Index(fields=["practice", "start"]),
            models.Index(fields=["practice", "end"], name="block_practice_end"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(start__lt=F("end")), name="block_order"),
            one_row_per_ehr_id("block"),
        ]


class Appointment(TenantModel):
    """The mirror of an appointment in the EHR. EHRs allow double booking, so the mirror records
    what is there; it is our own holds that may never overlap."""

    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="appointments")
    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="appointments")
    operatory = models.ForeignKey(
        Operatory, null=True, blank=True, on_delete=models.PROTECT, related_name="appointments"
    )
    appointment_type = models.ForeignKey(
        AppointmentType,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="appointments",
    )
    start = models.DateTimeField()
    end = models.DateTimeField()
    cancelled = models.BooleanField(default=False)
    patient_ehr_id = models.BigIntegerField(null=True, blank=True)
    ehr_id = models.BigIntegerField(null=True, blank=True)
    ehr_updated_at = models.DateTimeField(
        null=True, blank=True, help_text="Orders out-of-order webhook deliveries"
    )

    class Meta:
        ordering = ["start"]
        indexes = [
            models.Index(fields=["practice", "start"]),
            models.Index(fields=["practice", "end"], name="appointment_practice_end"),
            models.Index(fields=["provider", "start"]),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(start__lt=F("end")), name="appointment_order"),
            one_row_per_ehr_id("appointment"),
        ]


class NativeSlot(TenantModel):
    """One free slot the EHR itself offers for a type (Nextech's `GET /Slot`), at a location in
    `WorkingHoursMode.NATIVE`: the slot engine's free time there. The EHR adapter replaces a
    location's slots over a window in one transaction, so a reader sees the window before or
    after a refresh, never half of it."""

    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="native_slots")
    appointment_type = models.ForeignKey(
        AppointmentType, on_delete=models.CASCADE, related_name="native_slots"
    )
    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="native_slots")
    start = models.DateTimeField()
    end = models.DateTimeField()
    fetched_at = models.DateTimeField()

    class Meta:
        ordering = ["start"]
        indexes = [
            models.Index(fields=["practice", "appointment_type", "start"], name="native_slot_type"),
            models.Index(fields=["location", "start"], name="native_slot_location"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(start__lt=F("end")), name="native_slot_order"),
            models.UniqueConstraint(
                fields=["location", "appointment_type", "provider", "start"],
                name="native_slot_unique",
            ),
        ]


class ProviderRule(TenantModel):
    """A type may be booked with this provider, for this patient status, only in these windows.
    Several rules for the same provider and type are alternatives."""

    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="rules")
    appointment_types = models.ManyToManyField(AppointmentType, related_name="provider_rules")
    patient_status = models.CharField(
        max_length=8, choices=PatientStatus.choices, default=PatientStatus.ANY
    )
    days = ArrayField(models.CharField(max_length=9, choices=WEEKDAY_CHOICES))
    begin = models.TimeField()
    end = models.TimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(begin__lt=F("end")), name="provider_rule_order"),
            models.CheckConstraint(condition=~Q(days=[]), name="provider_rule_days"),
        ]


class HoldStatus(models.TextChoices):
    ACTIVE = "active", "Held"
    BOOKED = "booked", "Booked"
    RELEASED = "released", "Released"


def _id_range(field: str) -> Func:
    # int8range(id, id, '[]') with && means "same id" and needs no btree_gist extension.
    return Func(F(field), F(field), Value("[]"), function="int8range")


def _period() -> Func:
    return Func(F("start"), F("end"), Value("[)"), function="tstzrange")


CLAIMING = Q(status__in=[HoldStatus.ACTIVE, HoldStatus.BOOKED])


class Hold(TenantModel):
    """A slot claimed for a caller, airline-seat style, until it expires or is booked.

    The database makes double booking impossible: two claiming holds can never overlap for the
    same provider or the same operatory (GiST exclusion over core range types). Expired holds stop
    claiming when the hold service releases them, which it does before every new claim.
    """

    appointment_type = models.ForeignKey(
        AppointmentType, on_delete=models.PROTECT, related_name="holds"
    )
    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="holds")
    operatory = models.ForeignKey(Operatory, on_delete=models.PROTECT, related_name="holds")
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="holds")
    start = models.DateTimeField()
    end = models.DateTimeField()
    expires_at = models.DateTimeField()
    status = models.CharField(max_length=8, choices=HoldStatus.choices, default=HoldStatus.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["start"]
        indexes = [models.Index(fields=["practice", "status", "expires_at"])]
        constraints = [
            models.CheckConstraint(condition=Q(start__lt=F("end")), name="hold_order"),
            ExclusionConstraint(
                name="hold_no_provider_overlap",
                expressions=[
                    (_id_range("provider_id"), RangeOperators.OVERLAPS),
                    (_period(), RangeOperators.OVERLAPS),
                ],
                condition=CLAIMING,
            ),
            ExclusionConstraint(
                name="hold_no_operatory_overlap",
                expressions=[
                    (_id_range("operatory_id"), RangeOperators.OVERLAPS),
                    (_period(), RangeOperators.OVERLAPS),
                ],
                condition=CLAIMING,
            ),
        ]


class ApiScope(models.TextChoices):
    """The receptionist API's OAuth2 scopes (docs/receptionist-api.md)."""

    AVAILABILITY_READ = "availability:read", "Read appointment types and availability"
    BOOKINGS_WRITE = "bookings:write", "Hold slots and book appointments"
    CALLS_WRITE = "calls:write", "Record calls, transcripts and screening"


class ApiClient(TenantModel):
    """A machine client of the receptionist API (the voice agent), bound to ONE practice.

    Credentials live in django-oauth-toolkit's `Application` (client-credentials grant, secret
    hashed at rest); this row says whose it is and what it may ask for. Revoking keeps the row
    for the audit trail and kills its tokens.
    """

    application = models.OneToOneField(
        "oauth2_provider.Application", on_delete=models.CASCADE, related_name="api_client"
    )
    name = models.CharField(max_length=200)
    scopes = ArrayField(models.CharField(max_length=32, choices=ApiScope.choices), default=list)
    created_by = models.ForeignKey(
        "portal.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # The support session (compliance.ImpersonationSession) it was made in, if any: such a
    # client is revoked when that session ends, so nothing support made outlives its session.
    support_session_id = models.BigIntegerField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


# --- bookings ---------------------------------------------------------------------------------


class Patient(PHIModel):
    """Our record of a patient in the EHR (PHI, encrypted). Looked up by blind index only."""

    first_name = EncryptedTextField()
    last_name = EncryptedTextField()
    date_of_birth = EncryptedTextField(help_text="ISO date")
    phone = EncryptedTextField(null=True, blank=True)
    email = EncryptedTextField(null=True, blank=True)
    insurance = EncryptedJSONField(null=True, blank=True)
    last_name_index = BlindIndexField(source="last_name", kind="name")
    date_of_birth_index = BlindIndexField(source="date_of_birth", kind="date")
    phone_index = BlindIndexField(source="phone", kind="phone")
    location = models.ForeignKey(
        Location, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    ehr_id = models.BigIntegerField(null=True, blank=True)
    needs_review = models.BooleanField(
        default=False, help_text="Created in the EHR by the voice agent: staff should check it"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["practice", "location", "ehr_id"],
                name="patient_ehr_id_unique",
                condition=Q(ehr_id__isnull=False),
            ),
        ]


class BookingStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    CONFIRMED = "confirmed", "Confirmed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    # A request-mode booking waiting for staff to confirm it (on the EHR's follow-up list, or in
    # our front desk's queue when the EHR has none). The slot stays claimed meanwhile.
    REQUESTED = "requested", "Requested"
    # Staff turned the request down (or it was not approved in time): the slot is free again.
    DECLINED = "declined", "Declined"
    # Cancelled by us, but the EHR treats a cancel as a request its staff act on: the
    # appointment still stands in the EHR until they do.
    CANCEL_REQUESTED = "cancel_requested", "Cancel requested"


class PendingReason(models.TextChoices):
    """Why a pending booking is not confirmed yet: what the voice agent may tell the caller."""

    QUEUED = "queued", "Accepted; about to be sent to the practice's system"
    SENDING = "sending", "Being written to the practice's system"
    EHR_SLOW = "ehr_slow", "The practice's system is slow to answer; still trying"
    EHR_RATE_LIMITED = "rate_limited", "The practice's system is busy; waiting for a turn"
    RETRYING = "retrying", "The practice's system failed; trying again"
    AWAITING_EHR = "awaiting_ehr", "Sent; waiting for the practice's system to confirm it"


class Booking(PHIModel):
    """A caller's booking of a held slot: accepted here (pending), written in the EHR by a task,
    `confirmed` only when the EHR reports the insertion. Failed ones wait in the staff queue."""

    hold = models.OneToOneField(Hold, on_delete=models.PROTECT, related_name="booking")
    appointment_type = models.ForeignKey(
        AppointmentType, on_delete=models.PROTECT, related_name="bookings"
    )
    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="bookings")
    operatory = models.ForeignKey(Operatory, on_delete=models.PROTECT, related_name="bookings")
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="bookings")
    start = models.DateTimeField()
    end = models.DateTimeField()
    status = models.CharField(
        max_length=16, choices=BookingStatus.choices, default=BookingStatus.PENDING
    )
    idempotency_key = models.CharField(max_length=200)
    request_fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the canonical body")
    api_client = models.ForeignKey(
        ApiClient, null=True, blank=True, on_delete=models.SET_NULL, related_name="bookings"
    )
    call_id = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001 - no call yet
    reason = EncryptedTextField(null=True, blank=True)
    demographics = EncryptedJSONField(null=True, blank=True)
    patient = models.ForeignKey(
        Patient, null=True, blank=True, on_delete=models.PROTECT, related_name="bookings"
    )
    ehr_appointment_id = models.BigIntegerField(null=True, blank=True)
    failure_reason = models.TextField(blank=True, default="")
    pending_reason = models.CharField(
        max_length=16, choices=PendingReason.choices, default=PendingReason.QUEUED
    )
    attempts = models.PositiveIntegerField(default=0)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        "portal.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolution_note = models.TextField(blank=True, default="")
    # A request waiting in our front desk's queue keeps its slot until then at the latest
    # (`booking.services.expire_requests` declines it after).
    request_expires_at = models.DateTimeField(null=True, blank=True)
    # A move made by staff: this booking replaces `replaces`, which is cancelled (here and in
    # the EHR) only once this one is confirmed, so a failed move leaves the patient's original
    # appointment in place.
    replaces = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="replaced_by"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["practice", "status", "created_at"]),
            # The front desk's day and upcoming lists, and the dashboard's bookings per day.
            models.Index(fields=["practice", "start"], name="booking_practice_start"),
            models.Index(fields=["practice", "created_at"], name="booking_practice_created"),
            # Calls link to their booking by the call id the agent passed.
            models.Index(fields=["practice", "call_id"], name="booking_practice_call"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["practice", "idempotency_key"], name="booking_idempotency_unique"
            ),
            models.UniqueConstraint(
                fields=["practice", "ehr_appointment_id"],
                name="booking_ehr_appointment_unique",
                condition=Q(ehr_appointment_id__isnull=False),
            ),
            models.CheckConstraint(
                condition=Q(
                    status__in=[
                        "pending",
                        "confirmed",
                        "failed",
                        "cancelled",
                        "requested",
                        "declined",
                        "cancel_requested",
                    ]
                ),
                name="booking_status_known",
            ),
            # A cancel is only requested of an EHR that has the appointment.
            models.CheckConstraint(
                condition=~Q(status="cancel_requested") | Q(ehr_appointment_id__isnull=False),
                name="booking_cancel_requested_in_ehr",
            ),
        ]


class OutboxMessage(TenantModel):
    """Transactional outbox: written with the booking, handed to Celery by the relay."""

    kind = models.CharField(max_length=32)
    booking = models.ForeignKey(Booking, on_delete=models.CASCADE, related_name="outbox")
    payload = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # A sent message is not proof of work done: the broker may lose it (a Redis without
    # persistence, restarted). Until the work is acknowledged the relay sends it again once
    # `resend_after` passes; a task that schedules its own later run pushes that time out.
    resend_after = models.DateTimeField(null=True, blank=True)
    acked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["created_at"],
                name="outbox_undispatched",
                condition=Q(dispatched_at__isnull=True),
            ),
            models.Index(
                fields=["resend_after"],
                name="outbox_unacked",
                condition=Q(dispatched_at__isnull=False, acked_at__isnull=True),
            ),
        ]


# --- go-live acceptance tests -----------------------------------------------------------------


class TestScenario(TenantModel):
    """The practice's own acceptance test: a caller sentence and the type the agent should pick.

    An empty `expected_type` means the agent should book nothing (and take a message). The last
    run's outcome is kept on the row so the go-live checklist can read it without re-running.
    """

    __test__ = False  # not a pytest test class, whatever its name

    sentence = models.CharField(max_length=500)
    patient_status = models.CharField(
        max_length=8,
        choices=[(PatientStatus.NEW, "New patient"), (PatientStatus.EXISTING, "Existing patient")],
        default=PatientStatus.EXISTING,
    )
    expected_type = models.ForeignKey(
        AppointmentType,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="test_scenarios",
        help_text="Empty: the agent should book nothing and take a message",
    )
    last_passed = models.BooleanField(null=True, blank=True)
    last_got_type = models.ForeignKey(
        AppointmentType, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_confidence = models.FloatField(null=True, blank=True)
    # Why the agent picked what it picked, word by word (`IntentMatch.evidence`), for the
    # manager reading the results.
    last_evidence = models.JSONField(default=list, blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                F("practice"),
                models.functions.Lower("sentence"),
                F("patient_status"),
                name="test_scenario_unique",
            ),
            models.CheckConstraint(
                condition=Q(patient_status__in=["new", "existing"]),
                name="test_scenario_patient_status",
            ),
            models.CheckConstraint(
                condition=Q(last_run_at__isnull=True, last_passed__isnull=True)
                | Q(last_run_at__isnull=False, last_passed__isnull=False),
                name="test_scenario_result_complete",
            ),
            models.CheckConstraint(
                condition=Q(last_confidence__isnull=True)
                | Q(last_confidence__gte=0, last_confidence__lte=1),
                name="test_scenario_confidence_range",
            ),
        ]

    def __str__(self) -> str:
        return self.sentence


class ConfigImportStatus(models.TextChoices):
    PREVIEW = "preview", "Waiting for confirmation"
    DISCARDED = "discarded", "Discarded"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Importing"
    SUCCEEDED = "succeeded", "Imported"
    FAILED = "failed", "Failed"


class ConfigImport(PHIModel):
    """A configuration upload: previewed and waiting for confirmation, or imported (in the
    background for a large file): who sent it, how far it is, and what it changed or why it
    failed. The document is kept (encrypted: it may name patients) only until the import has
    run or the preview is discarded."""

    created_by = models.ForeignKey(
        "portal.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    filename = models.CharField(max_length=200)
    may_import_baa = models.BooleanField(default=False)
    document = EncryptedJSONField(null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=ConfigImportStatus.choices, default=ConfigImportStatus.QUEUED
    )
    entries_total = models.PositiveIntegerField(default=0)
    entries_done = models.PositiveIntegerField(default=0)
    changes = models.PositiveIntegerField(default=0)
    # {"errors": [...], "sections": {name: [created, updated, deleted]}, "notes": [...],
    #  "warnings": [...]}; encrypted, since an error message may quote a value from the file.
    outcome = EncryptedJSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(entries_done__lte=F("entries_total")),
                name="config_import_progress_bounded",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.filename} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in (
            ConfigImportStatus.SUCCEEDED,
            ConfigImportStatus.FAILED,
            ConfigImportStatus.DISCARDED,
        )
