"""Front desk reads: the agent's bookings and the staff queue, a constant number of queries
per page whatever its length. Patient names are shown masked (initials); the views record one
PHI access event per page with the booking ids whose patient data it showed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import QuerySet

from accounts.models import Practice
from booking import services as bookings
from scheduling.models import Booking, BookingStatus

PER_PAGE = 25
MAX_PAGE = 10_000
# Front desk sees everything the list shows; the encrypted call details stay unread here.
LIST_FIELDS_DEFERRED = ("reason", "request_fingerprint", "idempotency_key")


@dataclass(frozen=True)
class BookingFilters:
    status: str = ""
    since: date | None = None
    until: date | None = None  # inclusive


def _base(practice: Practice) -> QuerySet[Booking]:
    return (
        Booking.objects.for_practice(practice)
        .select_related("appointment_type", "provider", "location", "patient")
        .defer(*LIST_FIELDS_DEFERRED)
    )


def agent_bookings(practice: Practice, filters: BookingFilters) -> QuerySet[Booking]:
    """Bookings made by the voice agent, by appointment time; days in the practice's zone."""
    rows = _base(practice).order_by("start", "pk")
    tz = practice.tz
    if filters.status:
        rows = rows.filter(status=filters.status)
    if filters.since:
        rows = rows.filter(start__gte=datetime.combine(filters.since, time.min, tzinfo=tz))
    if filters.until:
        end = datetime.combine(filters.until + timedelta(days=1), time.min, tzinfo=tz)
        rows = rows.filter(start__lt=end)
    return rows


@dataclass(frozen=True)
class ListPage:
    """One page of a list, without an exact count (no COUNT over a big practice's bookings):
    one row more than shown is read to know whether there is a next page."""

    object_list: list[Booking]
    number: int

    has_next: bool = False

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_other_pages(self) -> bool:
        return self.has_next or self.has_previous

    @property
    def next_page_number(self) -> int:
        return self.number + 1

    @property
    def previous_page_number(self) -> int:
        return self.number - 1


def paginate(rows: QuerySet[Booking], page_number: Any, per_page: int = PER_PAGE) -> ListPage:
    try:
        number = max(1, min(int(page_number or 1), MAX_PAGE))
    except (TypeError, ValueError):
        number = 1
    offset = (number - 1) * per_page
    found = list(rows[offset : offset + per_page + 1])
    return ListPage(object_list=found[:per_page], number=number, has_next=len(found) > per_page)


def queue(practice: Practice) -> QuerySet[Booking]:
    """The "needs attention" queue (failed, unresolved), oldest first."""
    return (
        bookings.needs_attention(practice)
        .select_related("location", "patient")
        .defer(*LIST_FIELDS_DEFERRED)
    )


def queue_count(practice: Practice) -> int:
    return bookings.needs_attention(practice).count()


def booking(practice: Practice, pk: int) -> Booking:
    """One booking of this practice (Booking.DoesNotExist otherwise)."""
    return _base(practice).get(pk=pk)


def _names(row: Booking) -> tuple[str, str]:
    if row.patient_id is not None and row.patient is not None:
        return str(row.patient.first_name or ""), str(row.patient.last_name or "")
    data = row.demographics or {}
    return str(data.get("first_name") or ""), str(data.get("last_name") or "")


def initials(row: Booking) -> str:
    """The patient masked to initials ("A. L."), or "" when the booking names nobody yet."""
    parts = [n.strip()[:1].upper() + "." for n in _names(row) if n.strip()]
    return " ".join(parts)


@dataclass(frozen=True)
class PatientDetails:
    name: str
    date_of_birth: str
    phone: str
    needs_review: bool


def patient_details(row: Booking) -> PatientDetails:
    """The full patient details of a booking (PHI: the caller records the access)."""
    first, last = _names(row)
    if row.patient_id is not None and row.patient is not None:
        p = row.patient
        return PatientDetails(
            f"{first} {last}".strip(),
            str(p.date_of_birth or ""),
            str(p.phone or ""),
            p.needs_review,
        )
    data = row.demographics or {}
    return PatientDetails(
        f"{first} {last}".strip(),
        str(data.get("date_of_birth") or ""),
        str(data.get("phone") or ""),
        False,
    )


TERMINAL = frozenset({BookingStatus.CONFIRMED, BookingStatus.CANCELLED, BookingStatus.FAILED})
