"""What one run of a piece of EHR work decided, as a value code can branch on.

A task body (a booking's post, a poll, a note's write) answers an `Outcome`; its Celery task
decides what comes next by member (poll later, look again, post again) and returns `.value` for
the result backend's display. Values are short and stable: they also appear in task results and
logs. The state values equal the status values of the models they report (a booking's
`BookingStatus`, a note's `NoteStatus`), so a status read back converts with `Outcome(status)`.
"""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    # the state the work left its record in (equal to the record's status value)
    PENDING = "pending"  # not settled yet: the EHR is still writing, or nothing was sent
    CONFIRMED = "confirmed"  # the EHR reports the appointment written
    FAILED = "failed"  # settled as failed, with a reason staff see on the record
    CANCELLED = "cancelled"
    REQUESTED = "requested"  # a request waiting for staff (the EHR's follow-up list, or ours)
    DECLINED = "declined"  # a request staff turned down, or that was not approved in time
    CANCEL_REQUESTED = "cancel_requested"  # cancel asked of an EHR whose staff act on it
    SENT = "sent"  # a document accepted by the EHR, its insertion result still to come
    WRITTEN = "written"  # a document the EHR reports in the chart

    # what this run did
    POSTED = "posted"  # accepted by the EHR just now; its insertion result comes later
    ALREADY_POSTED = "posted: waiting for the insertion result"  # an earlier run posted it
    REJECTED = "rejected"  # the EHR refused the insertion; to be posted again after a wait
    CANCELLED_MEANWHILE = "cancelled meanwhile"  # cancelled while posting; the EHR's copy too
    UNCHANGED = "unchanged"  # the report changed nothing (the record had already settled)

    # what a record from the EHR did to the mirror
    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"
    STALE = "stale"  # older than the state already mirrored: ignored
    SKIPPED = "skipped"  # not this location's, or not mirrorable (the report says why)

    # why this run did nothing
    BUSY = "busy"  # another run holds the record: look again shortly (waiting, not a fault)
    MISSING = "missing"  # the record is gone
    NO_BOOKING = "no booking"  # an EHR appointment that is none of ours
    NO_CONNECTION = "no connection"  # the location has no EHR connection
    NOTHING_TO_CANCEL = "nothing to cancel"  # never reached the EHR
