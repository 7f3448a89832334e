"""What an EHR adapter hands the rest of the portal: typed, normalised records.

Every adapter (NexHealth, Nextech, ...) parses its own wire format into these; nothing outside an
adapter sees the EHR's JSON or FHIR. Ids are the EHR's own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time


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
    insertion_status: str
    note: str = ""
    descriptor_ids: tuple[int, ...] = field(default=())


@dataclass(frozen=True)
class EHRPatient:
    id: int
    first_name: str
    last_name: str
    date_of_birth: date | None
    phone: str  # E.164 or ""
    email: str
    location_ids: tuple[int, ...] = ()
