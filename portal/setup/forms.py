"""Forms of the set-up pages. Choices are limited to the practice's own rows."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models.functions import Lower

from accounts.models import Practice
from onboarding.limits import LIMITS
from scheduling.models import ApiScope, AppointmentType, TestScenario

MAX_CONFIG_BYTES = LIMITS["file_size"]


class ScenarioPasteForm(forms.Form):
    """Many sentences for one expected type: the practice's own evaluation set."""

    sentences = forms.CharField(
        label="What callers say, one sentence per line",
        widget=forms.Textarea(attrs={"rows": 6, "autocomplete": "off"}),
        help_text="Paste from a list or from past calls' transcripts; up to 200 lines at once.",
        max_length=60_000,
    )
    patient_status = forms.ChoiceField(
        label="Callers are",
        choices=[("existing", "Existing patients"), ("new", "New patients")],
        initial="existing",
    )
    expected_type = forms.ModelChoiceField(
        label="Expected appointment type",
        queryset=AppointmentType.objects.none(),
        required=False,
        empty_label="None: take a message",
    )

    def __init__(self, *args: Any, practice: Practice, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["expected_type"].queryset = AppointmentType.objects.for_practice(  # type: ignore[attr-defined]
            practice
        ).order_by("name")

    def clean_sentences(self) -> list[str]:
        lines = [" ".join(line.split()) for line in self.cleaned_data["sentences"].splitlines()]
        lines = [line for line in lines if line]
        if not lines:
            raise forms.ValidationError("Paste at least one sentence.")
        if len(lines) > 200:
            raise forms.ValidationError(f"{len(lines)} lines: paste at most 200 at once.")
        if any(len(line) > 500 for line in lines):
            raise forms.ValidationError("Keep each sentence under 500 characters.")
        return lines


MAX_LAY_TERMS = LIMITS["lay_terms"]
MAX_TERMS_PER_LINE = LIMITS["terms_per_lay_term"]


def lay_terms_text(entries: list[dict[str, Any]]) -> str:
    """`Practice.lay_terms` as the form shows them: one line per entry, terms by commas, the
    broader terms after ">"."""
    lines = []
    for entry in entries:
        line = ", ".join(entry.get("terms", ()))
        if entry.get("broader"):
            line += " > " + ", ".join(entry["broader"])
        lines.append(line)
    return "\n".join(lines)


class LayTermsForm(forms.Form):
    """The practice's own lay terms (as the configuration file's `lay_terms`), as text."""

    lay_terms = forms.CharField(
        label="Words your callers use",
        required=False,
        widget=forms.Textarea(attrs={"rows": 5, "autocomplete": "off"}),
        help_text="One line per group of words that mean the same to your callers, separated "
        "by commas, for example “botox, tox, baby tox”. Wider terms after “>”: "
        "“botox, tox > injectables”.",
        max_length=200_000,
    )

    def clean_lay_terms(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        lines = [line for line in self.cleaned_data["lay_terms"].splitlines() if line.strip()]
        if len(lines) > MAX_LAY_TERMS:
            raise forms.ValidationError(f"{len(lines)} lines: keep it to {MAX_LAY_TERMS}.")
        for n, line in enumerate(lines, start=1):
            terms_text, _, broader_text = line.partition(">")
            entry: dict[str, Any] = {"terms": self._terms(n, terms_text)}
            if not entry["terms"]:
                raise forms.ValidationError(f"Line {n}: name at least one term before “>”.")
            broader = self._terms(n, broader_text)
            if broader:
                entry["broader"] = broader
            entries.append(entry)
        return entries

    @staticmethod
    def _terms(n: int, text: str) -> list[str]:
        terms = [" ".join(t.split()) for t in text.split(",")]
        terms = [t for t in terms if t]
        if len(terms) > MAX_TERMS_PER_LINE:
            raise forms.ValidationError(f"Line {n}: at most {MAX_TERMS_PER_LINE} terms.")
        seen: set[str] = set()
        for term in terms:
            if len(term) > 200:
                raise forms.ValidationError(f"Line {n}: keep each term under 200 characters.")
            if term.casefold() in seen:
                raise forms.ValidationError(f"Line {n}: “{term}” is listed twice.")
            seen.add(term.casefold())
        return terms


class SuggestedPhraseForm(forms.Form):
    """A phrase a missed scenario suggested, to add to its expected type."""

    appointment_type = forms.ModelChoiceField(queryset=AppointmentType.objects.none())
    text = forms.CharField(max_length=200)

    def __init__(self, *args: Any, practice: Practice, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["appointment_type"].queryset = AppointmentType.objects.for_practice(  # type: ignore[attr-defined]
            practice
        )


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
