"""Front desk forms: the bookings filter and the resolution note."""

from __future__ import annotations

from typing import Any

from django import forms

from booking.frontdesk.selectors import BookingFilters
from core.formfields import BoundedDateField
from scheduling.models import BookingStatus


class BookingFilterForm(forms.Form):
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *BookingStatus.choices])
    since = BoundedDateField(
        required=False,
        label="From (day)",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    until = BoundedDateField(
        required=False,
        label="Through (day)",
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and until < since:
            self.add_error("until", "The last day is before the first day.")
        return data

    def filters(self) -> BookingFilters:
        if not self.is_valid():
            return BookingFilters(since=self.initial.get("since"))
        data = self.cleaned_data
        return BookingFilters(
            status=data.get("status") or "", since=data.get("since"), until=data.get("until")
        )


class ResolveForm(forms.Form):
    note = forms.CharField(
        label="How was it handled?",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="For example: booked by phone for Friday 10:00; caller asked to call back.",
        error_messages={"required": "Say how it was handled: the note is kept with the booking."},
    )


class DeclineForm(forms.Form):
    note = forms.CharField(
        label="Why (optional)",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Kept with the booking, for example: asked the caller to come on Monday instead.",
    )
