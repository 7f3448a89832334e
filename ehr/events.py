"""What the EHR tells us, announced to the apps above `ehr` without `ehr` importing them.

Adapters (a webhook, a poller, a reconcile) announce here; booking listens (see
`booking.apps`). Receivers run synchronously in the announcer's transaction and tenant context,
so what they write commits or rolls back with the mirror's change.

Trouble on the way (a slow or failing EHR, its rate limit) is told, as it happens, to whoever
waits on the work in this thread: `trouble_listener` around the work, `report_trouble` in the
adapter.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

from django.dispatch import Signal

from ehr.types import EHRTrouble

if TYPE_CHECKING:
    from ehr.models import EHRConnection
    from ehr.types import EHRAppointment

log = logging.getLogger("ehr.events")

# kwargs: connection (EHRConnection), appointment (EHRAppointment); a receiver returns a short
# description of what it did, or None when the appointment is none of its business.
appointment_reported = Signal()


def announce_appointment(connection: EHRConnection, appointment: EHRAppointment) -> list[str]:
    """What the listeners did about an appointment the EHR reported written, changed or gone."""
    replies = appointment_reported.send(
        sender=type(connection), connection=connection, appointment=appointment
    )
    return [str(reply) for _, reply in replies if reply]


_trouble_listener: ContextVar[Callable[[EHRTrouble], None] | None] = ContextVar(
    "ehr_trouble_listener", default=None
)


@contextmanager
def trouble_listener(listener: Callable[[EHRTrouble], None]) -> Iterator[None]:
    """Tell `listener` (in this thread's context) each time a call runs into trouble, so whoever
    waits on the work can be told honestly why it is still pending."""
    token = _trouble_listener.set(listener)
    try:
        yield
    finally:
        _trouble_listener.reset(token)


def report_trouble(trouble: EHRTrouble) -> None:
    """An adapter ran into `trouble` (before it retries or waits)."""
    listener = _trouble_listener.get()
    if listener is None:
        return
    try:
        listener(trouble)
    except Exception:  # telling is best effort; the call itself goes on
        log.warning("EHR trouble listener failed", exc_info=True)
