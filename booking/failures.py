"""Why bookings fail, as categories staff can act on.

A failed booking's `failure_reason` is written for the person fixing that one booking: it names
EHR appointment ids, the EHR's own words, sometimes what the caller said. Counting failures by
that text gives one bar per failure. Each category here is recognised by the fixed opening of
the reasons the booking pipeline writes (booking.services, booking.tasks); grouping runs
in the database over those openings, so counting reads no reason text into Python and works
for reasons written before categories existed.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Case, Value, When
from django.db.models.expressions import Expression


class FailureCategory(models.TextChoices):
    SLOT_TAKEN = "slot_taken", "Slot taken in the EHR"
    EHR_REFUSED = "ehr_refused", "EHR refused the details"
    EHR_FAILING = "ehr_failing", "EHR kept failing"
    NOT_SET_UP = "not_set_up", "Not set up for the EHR"
    PATIENT = "patient", "Patient details missing"
    NO_BAA = "no_baa", "No BAA in force"
    INTERNAL = "internal", "Internal error"
    OTHER = "other", "Other"


# (category, the openings of the reasons that belong to it), most specific first.
OPENINGS: tuple[tuple[FailureCategory, tuple[str, ...]], ...] = (
    (
        FailureCategory.SLOT_TAKEN,
        ("The slot was taken in the EHR", "The EHR refused to write appointment"),
    ),
    (FailureCategory.EHR_REFUSED, ("The EHR refused the booking",)),
    (FailureCategory.EHR_FAILING, ("The EHR kept failing",)),
    (
        FailureCategory.NOT_SET_UP,
        ("Not mapped to the EHR", "This location has no EHR connection"),
    ),
    (FailureCategory.PATIENT, ("Patient details missing", "Patient ")),
    (FailureCategory.NO_BAA, ("No business associate agreement",)),
    (FailureCategory.INTERNAL, ("Internal error",)),
)


def reason_for(category: FailureCategory, detail: str) -> str:
    """A failure reason of `category`: its first opening, then `detail` for the person fixing
    it, so `category_of` of the result is `category` by construction."""
    opening = dict(OPENINGS)[category][0]
    return f"{opening}{detail}"


def category_of(reason: str) -> FailureCategory:
    """The category of one reason (the same rule as `category_expression`)."""
    for category, openings in OPENINGS:
        if any(reason.startswith(opening) for opening in openings):
            return category
    return FailureCategory.OTHER


def category_expression(field: str = "failure_reason") -> Expression:
    """SQL that maps `field` to its category's value, for grouping in the database."""
    whens = [
        When(**{f"{field}__startswith": opening}, then=Value(category.value))
        for category, openings in OPENINGS
        for opening in openings
    ]
    return Case(*whens, default=Value(FailureCategory.OTHER.value), output_field=models.CharField())
