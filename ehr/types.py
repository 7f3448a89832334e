"""What an EHR adapter hands the rest of the portal: typed, normalised records.

Every adapter (NexHealth, Nextech, ...) parses its own wire format into these; nothing outside an
adapter sees the EHR's JSON or FHIR. Ids are the EHR's own.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, time
from enum import StrEnum
from typing import Any

from core.phone import to_e164


def clean_name(value: Any) -> str:
    """A name as every adapter hands it over and the mirror stores it: trimmed, NFC, single
    spaces; None -> ""."""
    if value is None:
        return ""
    return " ".join(unicodedata.normalize("NFC", str(value)).split())


def phone_e164(value: Any, region: str = "US") -> str:
    """E.164 for a possible number, "" for empty or impossible input (never a guess)."""
    return to_e164(clean_name(value), region) or ""


class InsertionStatus(StrEnum):
    """Where the EHR is with writing a record it accepted (an appointment, a document). An EHR
    that writes at once reports COMPLETE straight away."""

    PENDING = "pending"  # accepted, not written yet: the result is reported later
    COMPLETE = "complete"  # written into the EHR
    FAILED = "failed"  # the EHR refused to write it (a clash, a rule of the practice's)
    CANCELLED = "cancelled"  # withdrawn before it was written
    HELD = "held"  # a request on the office's follow-up list: written once staff confirm it

    @classmethod
    def parse(cls, value: Any, default: InsertionStatus) -> InsertionStatus:
        """The status an adapter read; `default` when the EHR said nothing."""
        if value in (None, ""):
            return default
        try:
            return cls(str(value).strip().lower())
        except ValueError as exc:
            raise ValueError(f"insertion_status: {value!r} is not an insertion status") from exc


class EHRTrouble(StrEnum):
    """Why a call is taking longer than it should, as it happens (before any retry)."""

    SLOW = "slow"  # timed out: asking again, or looking the write up
    FAILING = "failing"  # a 5xx or a dropped connection: retrying
    RATE_LIMITED = "rate_limited"  # waiting for the EHR's rate limit


@dataclass(frozen=True)
class EHRProvider:
    id: int
    name: str
    first_name: str
    last_name: str
    inactive: bool
    location_ids: tuple[int, ...]


@dataclass(frozen=True)
class EHROperatory:
    id: int
    name: str
    location_id: int | None
    active: bool


@dataclass(frozen=True)
class EHRDescriptor:
    id: int
    code: str
    name: str
    kind: str
    location_id: int | None
    active: bool


@dataclass(frozen=True)
class EHRAppointmentType:
    id: int
    name: str
    minutes: int
    location_id: int | None  # parent location; None for institution-wide types
    descriptor_ids: tuple[int, ...]
    bookable_online: bool


@dataclass(frozen=True)
class EHRWorkingHour:
    id: int
    provider_id: int
    operatory_id: int | None
    location_id: int | None
    begin: time
    end: time
    days: tuple[str, ...]
    specific_date: date | None
    source: str  # manual | synced
    label: str  # "" for base working hours
    label_id: int | None
    tz_offset: str
    appointment_type_ids: tuple[int, ...]
    active: bool


@dataclass(frozen=True)
class EHRAppointment:
    id: int
    location_id: int | None
    provider_id: int | None
    operatory_id: int | None
    patient_id: int | None
    appointment_type_id: int | None
    start: datetime
    end: datetime
    cancelled: bool
    unavailable: bool
    updated_at: datetime | None
    insertion_status: InsertionStatus
    note: str = ""
    descriptor_ids: tuple[int, ...] = field(default=())
    cancel_requested: bool = False  # a cancel asked of the EHR that its staff have not acted on

    @property
    def held(self) -> bool:
        """On the office's follow-up list: a request staff have not confirmed yet."""
        return self.insertion_status == InsertionStatus.HELD

    @property
    def confirmed(self) -> bool:
        """The EHR reports it written (whether it was cancelled since is `cancelled`)."""
        return self.insertion_status == InsertionStatus.COMPLETE

    @property
    def refused(self) -> bool:
        """The EHR refused to write it: it never took the slot."""
        return self.insertion_status == InsertionStatus.FAILED

    @property
    def gone(self) -> bool:
        """Not (or no longer) in the EHR's calendar: cancelled, refused or withdrawn."""
        return self.cancelled or self.insertion_status in (
            InsertionStatus.FAILED,
            InsertionStatus.CANCELLED,
        )


@dataclass(frozen=True)
class EHRPatient:
    id: int
    first_name: str
    last_name: str
    date_of_birth: date | None
    phone: str  # E.164 or ""
    email: str
    location_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class EHRDocument:
    """A document in a patient's chart (an encounter note), as the EHR reports it."""

    id: int
    patient_id: int | None
    title: str
    insertion_status: InsertionStatus
    insertion_error: str = ""

    @property
    def written(self) -> bool:
        return self.insertion_status == InsertionStatus.COMPLETE

    @property
    def refused(self) -> bool:
        return self.insertion_status == InsertionStatus.FAILED


@dataclass(frozen=True)
class WebhookRegistration:
    """Where the EHR posts a connection's events, and the secret it signs them with ("" when the
    EHR did not hand one out this time: the one stored before stays valid)."""

    endpoint_id: int
    target_url: str
    secret: str
