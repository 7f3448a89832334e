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
from core.sorting import Sort, order_by
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


# Sortable columns of the lists (core.sorting): URL key -> ORDER BY fields (then the id).
BOOKING_SORTS: dict[str, tuple[str, ...]] = {
    "when": ("start",),
    "type": ("appointment_type__name", "start"),
    "provider": ("provider__name", "start"),
    "location": ("location__name", "start"),
    "status": ("status", "start"),
}
QUEUE_SORTS: dict[str, tuple[str, ...]] = {
    "accepted": ("created_at",),
    "when": ("start",),
    "type": ("appointment_type__name", "start"),
    "provider": ("provider__name", "start"),
}


def agent_bookings(
    practice: Practice, filters: BookingFilters, sort: Sort | None = None
) -> QuerySet[Booking]:
    """Bookings made by the voice agent, by appointment time unless sorted otherwise; days in
    the practice's zone."""
    sort = sort or Sort("when", False)
    rows = _base(practice).order_by(*order_by(sort, BOOKING_SORTS))
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


def queue(practice: Practice, sort: Sort | None = None) -> QuerySet[Booking]:
    """The "needs attention" queue (failed, unresolved), oldest first unless sorted otherwise."""
    sort = sort or Sort("accepted", False)
    return (
        bookings.needs_attention(practice)
        .select_related("location", "patient")
        .defer(*LIST_FIELDS_DEFERRED)
        .order_by(*order_by(sort, QUEUE_SORTS))
    )


def queue_count(practice: Practice) -> int:
    return bookings.needs_attention(practice).count()


def requests(practice: Practice) -> QuerySet[Booking]:
    """Requests waiting for our staff to approve or decline, soonest deadline first."""
    return (
        bookings.open_requests(practice)
        .select_related("location", "patient")
        .defer(*LIST_FIELDS_DEFERRED)
    )


def request_count(practice: Practice) -> int:
    return bookings.open_requests(practice).count()


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


# --- one booking's page ----------------------------------------------------------------------


def booking_page(practice: Practice, pk: int) -> Booking:
    """One booking with everything its page shows joined in (Booking.DoesNotExist otherwise)."""
    return (
        Booking.objects.for_practice(practice)
        .select_related(
            "appointment_type", "provider", "location", "operatory", "patient", "resolved_by"
        )
        .defer(*LIST_FIELDS_DEFERRED)
        .get(pk=pk)
    )


@dataclass(frozen=True)
class StatusChange:
    at: datetime
    status: str
    label: str
    by: str


def _status_value(raw: Any) -> str:
    return "" if raw in (None, "None", "") else str(raw)


def status_history(booking: Booking) -> list[StatusChange]:
    """The booking's statuses as they happened, oldest first, from its change entries in the
    audit trail (the one record of every save, with who made it): one query, indexed by the
    object's id, whatever the size of the trail."""
    from django.contrib.contenttypes.models import ContentType

    from compliance.models import ChangeEntry

    labels = dict(BookingStatus.choices)
    entries = (
        ChangeEntry.objects.filter(
            practice_id=booking.practice_id,
            content_type=ContentType.objects.get_for_model(Booking),
            object_id=booking.pk,
            changes__has_key="status",
        )
        .select_related("actor")
        .order_by("timestamp", "id")
    )
    out: list[StatusChange] = []
    for entry in entries:
        change = (entry.changes or {}).get("status") or [None, None]
        status = _status_value(change[-1])
        if not status or (out and out[-1].status == status):
            continue
        actor = entry.actor
        if actor is not None:
            by = actor.get_full_name() or actor.email
        else:  # the receptionist API's client, or a task or webhook (nobody in person)
            by = "the voice agent" if entry.api_client_id else ""
        out.append(StatusChange(entry.timestamp, status, labels.get(status, status), by))
    if not out:  # a booking older than its trail: what the row itself says
        out.append(StatusChange(booking.created_at, BookingStatus.PENDING, "Pending", ""))
        if booking.confirmed_at is not None:
            out.append(StatusChange(booking.confirmed_at, BookingStatus.CONFIRMED, "Confirmed", ""))
        if booking.status not in (BookingStatus.PENDING, BookingStatus.CONFIRMED):
            out.append(StatusChange(booking.updated_at, booking.status, labels[booking.status], ""))
    return out


CANCELLABLE = frozenset({BookingStatus.PENDING, BookingStatus.CONFIRMED})


def ehr_cancellation(booking: Booking) -> str:
    """Where the EHR side of a cancellation stands: "" (nothing to cancel there), "queued"
    (the task has not finished) or "done" (the task ran)."""
    from booking.services import OUTBOX_CANCEL
    from scheduling.models import OutboxMessage

    if booking.status != BookingStatus.CANCELLED:
        return ""
    message = (
        OutboxMessage.objects.for_practice(booking.practice_id)
        .filter(booking_id=booking.pk, kind=OUTBOX_CANCEL)
        .order_by("-id")
        .only("acked_at")
        .first()
    )
    if message is None:
        return ""
    return "done" if message.acked_at is not None else "queued"


@dataclass(frozen=True)
class Moves:
    """A booking's place in a move: the one it replaces, and the ones made to replace it."""

    replaces: Booking | None
    replaced_by: list[Booking]


def moves(booking: Booking) -> Moves:
    """One query, two when the booking replaces another."""
    replaced_by = list(
        Booking.objects.for_practice(booking.practice_id)
        .filter(replaces_id=booking.pk)
        .only("pk", "start", "status", "replaces_id")
        .order_by("-pk")
    )
    replaces = None
    if booking.replaces_id is not None:
        replaces = (
            Booking.objects.for_practice(booking.practice_id)
            .only("pk", "start", "status")
            .filter(pk=booking.replaces_id)
            .first()
        )
    return Moves(replaces, replaced_by)
