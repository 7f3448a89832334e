"""What the EHR tells us, announced to the apps above `ehr` without `ehr` importing them.

Adapters (a webhook, a poller, a reconcile) announce here; booking listens (see
`booking.apps`). Receivers run synchronously in the announcer's transaction and tenant context,
so what they write commits or rolls back with the mirror's change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.dispatch import Signal

if TYPE_CHECKING:
    from ehr.models import EHRConnection
    from ehr.types import EHRAppointment

# kwargs: connection (EHRConnection), appointment (EHRAppointment); a receiver returns a short
# description of what it did, or None when the appointment is none of its business.
appointment_reported = Signal()


def announce_appointment(connection: EHRConnection, appointment: EHRAppointment) -> list[str]:
    """What the listeners did about an appointment the EHR reported written, changed or gone."""
    replies = appointment_reported.send(
        sender=type(connection), connection=connection, appointment=appointment
    )
    return [str(reply) for _, reply in replies if reply]
