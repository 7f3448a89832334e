"""Booking -> call: when a booking that names a call settles (confirmed, requested or failed),
link the call, make its outcome say so, and queue its encounter note if confirmed, after the
booking's transaction commits. A failure settles the call too: otherwise a call whose booking
failed after its transcript arrived would stay "in progress" for good.

A post_save receiver rather than a line in `booking.services.mark_confirmed` (booking sits
below calls and never imports it): every path that confirms (the task, the insertion webhook,
the polling fallback) saves the status through `mark_confirmed`'s
`save(update_fields=[..., "status", ...])`, so one receiver sees them all. The
`calls.sweep_encounter_notes` beat repairs a lost hand-over.
"""

from __future__ import annotations

import functools
from typing import Any

from django.db import transaction

from scheduling.models import Booking, BookingStatus

SETTLED = frozenset({BookingStatus.CONFIRMED, BookingStatus.REQUESTED, BookingStatus.FAILED})


def booking_saved(
    sender: type[Booking],
    instance: Booking,
    created: bool = False,
    update_fields: Any = None,
    **kwargs: Any,
) -> None:
    if instance.status not in SETTLED or not instance.call_id:
        return
    if update_fields is not None and "status" not in update_fields:
        return
    from calls.services import booking_confirmed

    transaction.on_commit(
        functools.partial(booking_confirmed, instance.pk, instance.practice_id), robust=True
    )
