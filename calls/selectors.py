"""Call reads for the staff pages: the filtered list (one query per page, no N+1) and a call."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import Q, QuerySet

from accounts.models import Practice
from calls.models import Call
from compliance.crypto import blind_index
from core.sorting import Sort, order_by


@dataclass(frozen=True)
class CallFilters:
    since: date | None = None
    until: date | None = None
    outcome: str = ""
    appointment_type_id: int | None = None
    phone: str = ""

    def describe(self) -> dict[str, object]:
        """For the access event: what was filtered on, never the number searched for."""
        return {
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "outcome": self.outcome or None,
            "appointment_type_id": self.appointment_type_id,
            "phone": bool(self.phone),
        }


# Sortable columns of the list (core.sorting): URL key -> ORDER BY fields (then the id).
CALL_SORTS: dict[str, tuple[str, ...]] = {
    "started": ("started_at",),
    "outcome": ("outcome", "started_at"),
    "type": ("booking__appointment_type__name", "started_at"),
}


def calls_for_practice(
    practice: Practice, filters: CallFilters | None = None, sort: Sort | None = None
) -> QuerySet[Call]:
    """The practice's calls, newest first unless sorted otherwise, with booking, type and note
    joined in. Days are the practice's days; the phone is matched by its blind index only
    (exact number)."""
    filters = filters or CallFilters()
    rows = Call.objects.for_practice(practice).select_related(
        "booking", "booking__appointment_type", "encounter_note"
    )
    zone = practice.tz
    if filters.since:
        rows = rows.filter(started_at__gte=datetime.combine(filters.since, time.min, tzinfo=zone))
    if filters.until:
        end = datetime.combine(filters.until + timedelta(days=1), time.min, tzinfo=zone)
        rows = rows.filter(started_at__lt=end)
    if filters.outcome:
        rows = rows.filter(outcome=filters.outcome)
    if filters.appointment_type_id:
        rows = rows.filter(booking__appointment_type_id=filters.appointment_type_id)
    if filters.phone:
        rows = rows.filter(caller_phone_index=blind_index(practice, filters.phone, kind="phone"))
    return rows.order_by(*order_by(sort or Sort("started", True), CALL_SORTS))


def call_for_practice(practice: Practice, pk: int) -> Call:
    """One call with what its page shows (Call.DoesNotExist if not this practice's)."""
    return (
        Call.objects.for_practice(practice)
        .select_related(
            "booking",
            "booking__appointment_type",
            "booking__provider",
            "booking__location",
            "encounter_note",
        )
        .get(pk=pk)
    )


def masked_phone(call: Call) -> str:
    """The last four digits only (decrypted for display; the page records the read)."""
    digits = "".join(ch for ch in (call.caller_phone or "") if ch.isdigit())
    return f"••• {digits[-4:]}" if digits else "—"


def call_for_booking(practice: Practice, booking_id: int, call_id: str | None) -> Call | None:
    """The call a booking was made during, with its note: the call linked to the booking, or
    the one the booking names (our id or the voice platform's), linked first. One query."""
    keys = Q(booking_id=booking_id)
    if call_id:
        keys |= Q(external_id=call_id)
        if call_id.isdigit():
            keys |= Q(pk=int(call_id))
    rows = (
        Call.objects.for_practice(practice)
        .filter(keys)
        .select_related("encounter_note")
        .defer("transcript", "caller_phone")
        .order_by("-started_at", "-pk")
    )
    found = list(rows[:3])
    for call in found:
        if call.booking_id == booking_id:
            return call
    return found[0] if found else None
