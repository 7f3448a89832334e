"""Forms of the set-up pages. Choices are limited to the practice's own rows."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models.functions import Lower

from accounts.models import Practice
from onboarding.limits import LIMITS
from scheduling.models import ApiScope, AppointmentType, TestScenario

MAX_CONFIG_BYTES = LIMITS["file_size"]


class ScenarioForm(forms.ModelForm):
    class Meta:
        model = TestScenario
        fields = ["sentence", "patient_status", "expected_type"]
        labels = {
            "sentence": "What the caller says",
            "patient_status": "Caller is a",
            "expected_type": "Expected appointment type",
        }
        help_texts = {
            "sentence": 'For example "I\'d like to get my teeth cleaned".',
            "expected_type": "Leave empty when the agent should book nothing and take a message.",
        }
        widgets = {"sentence": forms.TextInput(attrs={"autocomplete": "off"})}

    def __init__(self, *args: Any, practice: Practice, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.practice = practice
        field = self.fields["expected_type"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = AppointmentType.objects.for_practice(practice).order_by("name")
        field.empty_label = "None: take a message"

    def clean_sentence(self) -> str:
        sentence = " ".join(self.cleaned_data["sentence"].split())
        if not sentence:
            raise forms.ValidationError("Type what a caller would say.")
        return sentence

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        sentence, status = data.get("sentence"), data.get("patient_status")
        if sentence and status:
            clash = (
                TestScenario.objects.for_practice(self.practice)
                .annotate(lower=Lower("sentence"))
                .filter(lower=sentence.lower(), patient_status=status)
            )
            if self.instance.pk:
                clash = clash.exclude(pk=self.instance.pk)
            if clash.exists():
                self.add_error("sentence", "This sentence is already a scenario for such callers.")
        return data


class ApiClientForm(forms.Form):
    name = forms.CharField(
        label="Name",
        max_length=200,
        help_text='Who will use it, for example "Voice agent (production)".',
    )
    scopes = forms.MultipleChoiceField(
        label="Scopes",
        choices=ApiScope.choices,
        widget=forms.CheckboxSelectMultiple,
        initial=[ApiScope.AVAILABILITY_READ, ApiScope.BOOKINGS_WRITE],
        help_text="Grant only what the client needs.",
        error_messages={"required": "Choose at least one scope."},
    )

    def clean_name(self) -> str:
        name = " ".join(self.cleaned_data["name"].split())
        if not name:
            raise forms.ValidationError("Give the client a name.")
        return name


class ConfigUploadForm(forms.Form):
    file = forms.FileField(
        label="Configuration file",
        help_text="JSON (or YAML) as downloaded above, up to 5 MB. It is checked as a whole "
        "first: a file with errors changes nothing.",
        widget=forms.ClearableFileInput(attrs={"accept": ".json,.yaml,.yml,application/json"}),
    )

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if upload.size > MAX_CONFIG_BYTES:
            raise forms.ValidationError("The file is larger than 5 MB.")
        return upload
