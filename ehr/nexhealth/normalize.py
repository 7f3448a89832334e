"""Normalisation at the edge: EHR JSON in, typed values out, before anything touches the mirror.

Everything the rest of the portal sees from the EHR passes through here once: phone numbers as
E.164 (phonenumbers), dates as `date`, instants as aware datetimes, clock times as `time`,
durations as `int` minutes, names trimmed with collapsed whitespace, weekday names canonical.
Bad values raise `ValueError` with the field's name, so a malformed record is reported, not
half-applied.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, tzinfo
from typing import Any

from ehr.types import (
    EHRAppointment,
    EHRAppointmentType,
    EHRDescriptor,
    EHRDocument,
    EHROperatory,
    EHRPatient,
    EHRProvider,
    EHRWorkingHour,
    InsertionStatus,
    clean_name,
    phone_e164,
)
from scheduling.slots import WEEKDAYS

_WEEKDAY_BY_NAME = {d.lower(): d for d in WEEKDAYS} | {d[:3].lower(): d for d in WEEKDAYS}


# --- scalars ---------------------------------------------------------------------------------


def split_name(full: str) -> tuple[str, str]:
    """ "Dr. Ana Patel" -> ("Dr. Ana", "Patel"); one word -> (word, word) (EHRs need both)."""
    parts = clean_name(full).split(" ")
    if len(parts) == 1:
        return parts[0], parts[0]
    return " ".join(parts[:-1]), parts[-1]


def to_date(value: Any, name: str = "date") -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip()[:10])
    except ValueError as exc:
        raise ValueError(f"{name}: {value!r} is not a date (YYYY-MM-DD)") from exc


def to_datetime(value: Any, name: str = "datetime", tz: tzinfo = UTC) -> datetime | None:
    """An aware datetime; naive input is read in `tz` (the location's zone)."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        text = str(value).strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError as exc:
            raise ValueError(f"{name}: {value!r} is not an ISO 8601 date-time") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed


def to_time(value: Any, name: str = "time") -> time:
    """ "09:00" / "9:00" / "09:00:00" -> time(9, 0)."""
    match = re.fullmatch(r"(\d{1,2}):(\d{2})(?::(\d{2}))?", str(value or "").strip())
    if not match:
        raise ValueError(f"{name}: {value!r} is not a clock time (HH:MM)")
    hour, minute, second = int(match[1]), int(match[2]), int(match[3] or 0)
    if hour == 24 and minute == 0 and second == 0:
        return time(23, 59, 59)
    return time(hour, minute, second)


def to_minutes(value: Any, name: str = "minutes") -> int:
    """A positive whole number of minutes ("30", 30, 30.0 -> 30)."""
    if isinstance(value, bool):
        raise ValueError(f"{name}: {value!r} is not a number of minutes")
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: {value!r} is not a number of minutes") from exc
    if number != int(number) or number <= 0:
        raise ValueError(f"{name}: {value!r} is not a positive whole number of minutes")
    return int(number)


def to_int(value: Any, name: str = "id") -> int | None:
    if value in (None, ""):
        return None
    if isinstance(value, bool):
        raise ValueError(f"{name}: {value!r} is not an integer")
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: {value!r} is not an integer") from exc


def weekday_list(value: Any, name: str = "days") -> list[str]:
    """Canonical weekday names in week order, without duplicates."""
    if value in (None, ""):
        return []
    items = value if isinstance(value, list | tuple) else [value]
    out = set()
    for item in items:
        canonical = _WEEKDAY_BY_NAME.get(str(item).strip().lower())
        if canonical is None:
            raise ValueError(f"{name}: {item!r} is not a weekday")
        out.add(canonical)
    return [d for d in WEEKDAYS if d in out]


def descriptor_kind(value: Any) -> str:
    """NexHealth's descriptor_type -> the mirror's kind."""
    kind = str(value or "").lower()
    return "appointment_type" if kind == "appointment type" else "procedure_code"


# --- records ---------------------------------------------------------------------------------


def _ids(value: Any, name: str) -> tuple[int, ...]:
    return tuple(i for i in (to_int(v, name) for v in (value or [])) if i is not None)


def provider(raw: dict[str, Any]) -> EHRProvider:
    first, last = clean_name(raw.get("first_name")), clean_name(raw.get("last_name"))
    name = clean_name(raw.get("name")) or clean_name(f"{first} {last}")
    return EHRProvider(
        id=int(raw["id"]),
        name=name,
        first_name=first,
        last_name=last,
        inactive=bool(raw.get("inactive", False)),
        location_ids=_ids(raw.get("location_ids"), "location_ids"),
    )


def operatory(raw: dict[str, Any]) -> EHROperatory:
    return EHROperatory(
        id=int(raw["id"]),
        name=clean_name(raw.get("name")),
        location_id=to_int(raw.get("location_id"), "location_id"),
        active=bool(raw.get("active", True)),
    )


def descriptor(raw: dict[str, Any]) -> EHRDescriptor:
    return EHRDescriptor(
        id=int(raw["id"]),
        code=clean_name(raw.get("code")),
        name=clean_name(raw.get("name")),
        kind=descriptor_kind(raw.get("descriptor_type")),
        location_id=to_int(raw.get("location_id"), "location_id"),
        active=bool(raw.get("active", True)),
    )


def appointment_type(raw: dict[str, Any]) -> EHRAppointmentType:
    location_id = to_int(raw.get("parent_id")) if raw.get("parent_type") == "Location" else None
    return EHRAppointmentType(
        id=int(raw["id"]),
        name=clean_name(raw.get("name")),
        minutes=to_minutes(raw.get("minutes")),
        location_id=location_id,
        descriptor_ids=_ids(raw.get("emr_appt_descriptor_ids"), "emr_appt_descriptor_ids"),
        bookable_online=bool(raw.get("bookable_online", True)),
    )


def working_hour(raw: dict[str, Any]) -> EHRWorkingHour:
    label = raw.get("label")
    label_name = clean_name(label.get("name")) if isinstance(label, dict) else clean_name(label)
    label_id = to_int(label.get("id"), "label.id") if isinstance(label, dict) else None
    specific = to_date(raw.get("specific_date"), "specific_date")
    days = weekday_list(raw.get("days"))
    if specific is not None and not days:
        days = [WEEKDAYS[specific.weekday()]]
    provider_id = to_int(raw.get("provider_id"), "provider_id")
    if provider_id is None:
        raise ValueError("provider_id: a working hour needs a provider")
    return EHRWorkingHour(
        id=int(raw["id"]),
        provider_id=provider_id,
        operatory_id=to_int(raw.get("operatory_id"), "operatory_id"),
        location_id=to_int(raw.get("location_id"), "location_id"),
        begin=to_time(raw.get("begin_time"), "begin_time"),
        end=to_time(raw.get("end_time"), "end_time"),
        days=tuple(days),
        specific_date=specific,
        source="synced" if raw.get("source") == "synced" else "manual",
        label=label_name,
        label_id=label_id,
        tz_offset=str(raw.get("tz_offset") or ""),
        appointment_type_ids=_ids(raw.get("appointment_type_ids"), "appointment_type_ids"),
        active=bool(raw.get("active", True)),
    )


def appointment(raw: dict[str, Any]) -> EHRAppointment:
    start = to_datetime(raw.get("start_time"), "start_time")
    end = to_datetime(raw.get("end_time"), "end_time")
    if start is None or end is None:
        raise ValueError("start_time/end_time: an appointment needs both")
    return EHRAppointment(
        id=int(raw["id"]),
        location_id=to_int(raw.get("location_id"), "location_id"),
        provider_id=to_int(raw.get("provider_id"), "provider_id"),
        operatory_id=to_int(raw.get("operatory_id"), "operatory_id"),
        patient_id=to_int(raw.get("patient_id"), "patient_id"),
        appointment_type_id=to_int(raw.get("appointment_type_id"), "appointment_type_id"),
        start=start,
        end=end,
        cancelled=bool(raw.get("cancelled", False)) or bool(raw.get("deleted", False)),
        unavailable=bool(raw.get("unavailable", False)),
        updated_at=to_datetime(raw.get("updated_at"), "updated_at"),
        insertion_status=InsertionStatus.parse(
            raw.get("insertion_status"), InsertionStatus.COMPLETE
        ),
        note=clean_name(raw.get("note")),
        descriptor_ids=_ids(raw.get("emr_appt_descriptor_ids"), "emr_appt_descriptor_ids"),
    )


def patient(raw: dict[str, Any], region: str = "US") -> EHRPatient:
    bio = raw.get("bio") or {}
    phone = ""
    for key in ("phone_number", "cell_phone_number", "home_phone_number"):
        phone = phone_e164(bio.get(key), region)
        if phone:
            break
    return EHRPatient(
        id=int(raw["id"]),
        first_name=clean_name(raw.get("first_name")),
        last_name=clean_name(raw.get("last_name")),
        date_of_birth=to_date(bio.get("date_of_birth"), "date_of_birth"),
        phone=phone,
        email=clean_name(raw.get("email")).lower(),
        location_ids=_ids(raw.get("location_ids"), "location_ids"),
    )


def document(raw: dict[str, Any]) -> EHRDocument:
    return EHRDocument(
        id=int(raw["id"]),
        patient_id=to_int(raw.get("patient_id"), "patient_id"),
        title=str(raw.get("title") or ""),
        insertion_status=InsertionStatus.parse(
            raw.get("insertion_status"), InsertionStatus.PENDING
        ),
        insertion_error=str(raw.get("insertion_error") or ""),
    )
