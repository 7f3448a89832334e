from __future__ import annotations

from django import forms

from accounts.models import Practice
from calls.models import CallOutcome, CallRetention
from calls.selectors import CallFilters
from core.formfields import BoundedDateField
from scheduling.models import AppointmentType


class CallFilterForm(forms.Form):
    since = BoundedDateField(
        required=False, label="From (day)", widget=forms.DateInput(attrs={"type": "date"})
    )
    until = BoundedDateField(
        required=False, label="Through (day)", widget=forms.DateInput(attrs={"type": "date"})
    )
    outcome = forms.ChoiceField(required=False, choices=[("", "Any outcome"), *CallOutcome.choices])
    appointment_type = forms.ModelChoiceField(
        required=False,
        queryset=AppointmentType.objects.none(),
        empty_label="Any appointment type",
        label="Appointment type",
    )
    phone = forms.CharField(
        required=False,
        max_length=32,
        label="Caller phone (whole number)",
        help_text="Exact match on the full number; partial numbers are not searchable.",
    )

    def __init__(self, *args: object, practice: Practice, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        field = self.fields["appointment_type"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = AppointmentType.objects.for_practice(practice).order_by("name")

    def filters(self) -> CallFilters:
        data = self.cleaned_data if self.is_valid() else {}
        appointment_type = data.get("appointment_type")
        return CallFilters(
            since=data.get("since"),
            until=data.get("until"),
            outcome=data.get("outcome") or "",
            appointment_type_id=appointment_type.pk if appointment_type else None,
            phone=(data.get("phone") or "").strip(),
        )


class RevealForm(forms.Form):
    reason = forms.CharField(
        label="Why do you need to read this transcript?",
        min_length=5,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Recorded in the audit log with your name.",
    )


class RetentionForm(forms.ModelForm):
    transcript_days = forms.IntegerField(
        min_value=1, max_value=36_500, label="Keep call transcripts here for (days)"
    )
    note_days = forms.IntegerField(
        min_value=1,
        max_value=36_500,
        label="Keep our copy of notes written to the EHR for (days)",
        help_text="Six years (2192 days) by default, as HIPAA documentation retention.",
    )

    class Meta:
        model = CallRetention
        fields = ["transcript_days", "note_days"]
