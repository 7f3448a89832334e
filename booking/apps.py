from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.apps import AppConfig

if TYPE_CHECKING:
    from ehr.models import EHRConnection
    from ehr.types import EHRAppointment


class BookingConfig(AppConfig):
    """From a held slot to an appointment the EHR reports written. Its tables belong to
    scheduling (Booking, OutboxMessage); this app holds the orchestration and its tasks."""

    name = "booking"

    def ready(self) -> None:
        from ehr import events

        events.appointment_reported.connect(
            _on_ehr_appointment, dispatch_uid="booking.on_ehr_appointment"
        )


def _on_ehr_appointment(
    sender: Any, connection: EHRConnection, appointment: EHRAppointment, **_: Any
) -> str | None:
    """Confirm or fail our booking of an appointment the EHR reported (none: not ours)."""
    from booking.services import on_ehr_appointment
    from core.outcome import Outcome

    outcome = on_ehr_appointment(connection, appointment)
    return None if outcome is Outcome.NO_BOOKING else f"booking {outcome.value}"
