"""Call reads for the staff pages: the filtered list (one query per page, no N+1) and a call."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import QuerySet

from accounts.models import Practice
from calls.models import Call
from compliance.crypto import blind_index


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


def calls_for_practice(practice: Practice, filters: CallFilters | None = None) -> QuerySet[Call]:
    """The practice's calls, newest first, with booking, type and note joined in. Days are the
    practice's days; the phone is matched by its blind index only (exact number)."""
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
    return rows.order_by("-started_at", "-pk")


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
