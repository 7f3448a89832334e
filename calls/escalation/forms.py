"""Portal forms for protocols, approvals, the test console and the on-call rota."""

from __future__ import annotations

from typing import Any

from django import forms

from accounts.models import Practice
from calls.escalation import selectors
from calls.escalation.services import ProtocolContent, check_content
from calls.models import OnCallGroup, ProtocolVersion, Route, Severity
from core.formfields import BoundedDateField, BoundedDateTimeField
from scheduling.models import AppointmentType, Provider

DATETIME_LOCAL = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


class ProtocolForm(forms.Form):
    name = forms.CharField(max_length=200)
    triggers = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5}),
        label="Trigger phrases",
        help_text="One per line, as a caller might say it; paraphrases and typos are matched.",
    )
    severity = forms.ChoiceField(choices=Severity.choices)
    route = forms.ChoiceField(choices=Route.choices, label="Route the caller to")
    on_call_group = forms.ModelChoiceField(
        queryset=OnCallGroup.objects.none(),
        required=False,
        label="Whose on-call takes it",
        empty_label="The default on-call group",
        help_text="For an on-call route: the group whose on-call provider takes these calls.",
    )
    route_provider = forms.ModelChoiceField(
        queryset=Provider.objects.none(),
        required=False,
        label="Or this provider takes it",
        empty_label="Nobody in particular",
        help_text="A provider named here takes these calls in place of the group's on-call.",
    )
    appointment_types = forms.ModelMultipleChoiceField(
        queryset=AppointmentType.objects.none(),  # set per practice in __init__
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Procedures it covers",
        help_text="None ticked: every caller.",
    )
    within_days_of_procedure = forms.IntegerField(
        min_value=1,
        required=False,
        label="Within days of the procedure",
        help_text="Empty: whenever the procedure was.",
    )
    instructions = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        label="What the agent says",
    )

    def __init__(self, practice: Practice, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["appointment_types"].queryset = selectors.appointment_types(practice)  # type: ignore[attr-defined]
        self.fields["on_call_group"].queryset = selectors.on_call_groups(practice)  # type: ignore[attr-defined]
        self.fields["route_provider"].queryset = selectors.on_call_providers(practice)  # type: ignore[attr-defined]

    @classmethod
    def initial_from(cls, version: ProtocolVersion) -> dict[str, Any]:
        return {
            "name": version.name,
            "triggers": "\n".join(version.triggers),
            "severity": version.severity,
            "route": version.route,
            "appointment_types": list(version.appointment_types.all()),
            "within_days_of_procedure": version.within_days_of_procedure,
            "instructions": version.instructions,
            "on_call_group": version.on_call_group_id,
            "route_provider": version.route_provider_id,
        }

    def content(self) -> ProtocolContent:
        data = self.cleaned_data
        return ProtocolContent(
            name=data.get("name", ""),
            triggers=tuple(line.strip() for line in data.get("triggers", "").splitlines()),
            severity=data.get("severity", ""),
            route=data.get("route", ""),
            instructions=data.get("instructions", ""),
            within_days_of_procedure=data.get("within_days_of_procedure"),
            appointment_type_ids=tuple(t.pk for t in data.get("appointment_types") or ()),
            route_provider_id=p.pk if (p := data.get("route_provider")) else None,
            on_call_group_id=g.pk if (g := data.get("on_call_group")) else None,
        ).normalised()

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        for name, messages in check_content(self.content()).items():
            if name not in self.errors:  # one complaint per field: the first is enough
                for message in messages:
                    self.add_error(name, message)
        return data


class ApproveForm(forms.Form):
    confirm = forms.BooleanField(
        label="I have reviewed this version and approve it as the live protocol",
    )
    note = forms.CharField(max_length=200, required=False, label="Note (optional)")


class ApprovalPolicyForm(forms.Form):
    allow_self_approval = forms.BooleanField(
        required=False,
        label="Let our one clinician approve the protocols they write",
        help_text="Only for a practice with a single clinician; it stops applying when a "
        "second clinician joins. The change is recorded in the audit log.",
    )


class ConsoleForm(forms.Form):
    text = forms.CharField(
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="What the caller says",
    )
    appointment_type = forms.ModelChoiceField(
        queryset=AppointmentType.objects.none(),
        required=False,
        label="Their procedure (optional)",
        empty_label="Unknown",
    )
    procedure_date = BoundedDateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        label="Procedure date (optional)",
    )
    at = BoundedDateTimeField(
        required=False,
        widget=DATETIME_LOCAL,
        input_formats=["%Y-%m-%dT%H:%M"],
        label="When the call comes in (optional)",
        help_text="Empty: now. Try a night or a weekend against the rota of that time.",
    )
    drafts = forms.BooleanField(
        required=False, label="Use drafts in place of live versions (try before approving)"
    )

    def __init__(self, practice: Practice, *args: Any, **kwargs: Any) -> None:
        """Times are the practice's local times (the view activates its zone)."""
        super().__init__(*args, **kwargs)
        self.fields["appointment_type"].queryset = selectors.appointment_types(practice)  # type: ignore[attr-defined]
        self.fields["at"].help_text = (
            f"In {practice.timezone}. Empty: now. Try a night or a weekend against the rota of "
            "that time."
        )


class ShiftForm(forms.Form):
    """Times are the practice's local times (the view activates its zone)."""

    provider = forms.ModelChoiceField(
        queryset=Provider.objects.none(),
        help_text="Only providers with an on-call phone number can be on call.",
    )
    group = forms.ModelChoiceField(
        queryset=OnCallGroup.objects.none(),
        required=False,
        empty_label="The default on-call group",
        help_text="The group whose urgent calls this provider takes.",
    )
    start = BoundedDateTimeField(widget=DATETIME_LOCAL, input_formats=["%Y-%m-%dT%H:%M"])
    end = BoundedDateTimeField(widget=DATETIME_LOCAL, input_formats=["%Y-%m-%dT%H:%M"])
    note = forms.CharField(max_length=200, required=False, label="Note (optional)")

    def __init__(self, practice: Practice, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["provider"].queryset = selectors.on_call_providers(practice)  # type: ignore[attr-defined]
        self.fields["group"].queryset = selectors.on_call_groups(practice)  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("start"), data.get("end")
        if start and end and end <= start:
            self.add_error("end", "Must be after the start.")
        return data


class GroupForm(forms.Form):
    group_name = forms.CharField(
        max_length=100, label="New on-call group", help_text="For example: Ophthalmology on call."
    )
