"""Forms for the practice manager's scheduling pages. Choices are always this practice's rows;
validation that belongs to the catalogue (phones, day lists, editability) lives in
`scheduling.catalog`, whose errors the views put next to the field they name."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.models import Location, Practice
from core.formfields import BoundedDateField, BoundedDateTimeField
from scheduling import catalog, catalog_selectors
from scheduling.models import (
    LOCAL_HOURS_MODES,
    WEEKDAY_CHOICES,
    AppointmentDescriptor,
    AppointmentType,
    BookingMode,
    Operatory,
    PatientStatus,
    Provider,
)

TIME = forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
DATETIME = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
DATETIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"]
BOOKING_MODE_HELP = (
    "Book: the appointment goes straight onto the schedule and the agent tells the caller it is "
    "booked. Request: the agent tells the caller it is requested, and staff confirm it first. "
    "On Nextech the request is Nextech's hold, on the office's follow-up list: staff confirm or "
    "cancel it in Nextech. On NexHealth it waits on the front desk's Requests page here, its "
    "time kept for the caller, until staff approve or decline it (declined if nobody does in "
    "time)."
)


def _field(form: forms.Form, name: str) -> Any:
    """A form field, for setting the practice's choices on it."""
    return form.fields[name]


def apply_errors(form: forms.Form, exc: catalog.CatalogError | ValidationError) -> None:
    """Show a service's refusal next to the field it names (or above the form)."""
    if isinstance(exc, catalog.CatalogError):
        field = exc.field if exc.field in form.fields else None
        form.add_error(field, exc.message)
        return
    if hasattr(exc, "error_dict"):
        for name, messages in exc.message_dict.items():
            form.add_error(name if name in form.fields else None, messages)
    else:
        form.add_error(None, exc.messages)


class TypeFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=100, label="Name or phrase")
    bookable = forms.ChoiceField(
        required=False,
        label="Voice agent",
        choices=[("", "Any"), ("yes", "Bookable by the agent"), ("no", "Not bookable")],
    )

    def values(self) -> dict[str, Any]:
        data = self.cleaned_data if self.is_valid() else {}
        flag = data.get("bookable")
        return {
            "name": (data.get("q") or "").strip(),
            "bookable": True if flag == "yes" else False if flag == "no" else None,
        }


class DescriptorChoice(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: AppointmentDescriptor) -> str:
        text = f"{obj.code} — {obj.description}" if obj.description else obj.code
        return f"{text} ({obj.location.name})"


class AppointmentTypeForm(forms.Form):
    name = forms.CharField(max_length=200)
    minutes = forms.IntegerField(min_value=1, max_value=24 * 60, label="Length (minutes)")
    new_patients = forms.BooleanField(required=False, label="New patients may book it")
    existing_patients = forms.BooleanField(required=False, label="Existing patients may book it")
    bookable = forms.BooleanField(
        required=False,
        label="The voice agent may book it",
        help_text="Otherwise it takes a message",
    )
    booking_mode = forms.ChoiceField(
        choices=BookingMode.choices,
        widget=forms.RadioSelect,
        label="When the agent books it",
        help_text=BOOKING_MODE_HELP,
    )
    lead_time_hours = forms.IntegerField(
        min_value=0,
        max_value=24 * 365,
        label="Lead time (hours)",
        help_text="Earliest booking from now",
    )
    horizon_days = forms.IntegerField(
        min_value=1, max_value=730, label="Horizon (days)", help_text="Latest booking from now"
    )
    instructions = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Instructions for the caller",
    )
    providers = forms.ModelMultipleChoiceField(
        queryset=Provider.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Eligible providers",
        help_text="None ticked means any provider",
    )
    required_capabilities = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Rooms must have",
        help_text="Only rooms with every ticked capability host this type",
    )
    descriptors = DescriptorChoice(
        queryset=AppointmentDescriptor.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="EHR codes",
        help_text="The EHR appointment type and procedure codes a booking carries",
    )

    def __init__(self, practice: Practice, *args: Any, **kwargs: Any) -> None:
        instance: AppointmentType | None = kwargs.pop("instance", None)
        if instance is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                **{f: getattr(instance, f) for f in TYPE_FIELDS},
                "providers": [p.pk for p in instance.providers.all()],
                "descriptors": [d.pk for d in instance.descriptors.all()],
                "required_capabilities": instance.required_capabilities,
            }
        super().__init__(*args, **kwargs)
        _field(self, "providers").queryset = Provider.objects.for_practice(practice).order_by(
            "name"
        )
        _field(self, "descriptors").queryset = catalog_selectors.descriptors(practice)
        caps = set(catalog_selectors.capabilities_in_use(practice))
        if instance is not None:
            caps.update(instance.required_capabilities)
        _field(self, "required_capabilities").choices = [(c, c) for c in sorted(caps)]
        if instance is not None and instance.ehr_id is not None:
            ehr_owned(self, ("name", "minutes", "descriptors"), instance.ehr_id)

    def clean(self) -> dict[str, Any]:
        data: dict[str, Any] = super().clean() or {}
        if not (data.get("new_patients") or data.get("existing_patients")):
            self.add_error("new_patients", "Open the type to new patients, existing ones, or both.")
        return data


TYPE_FIELDS = (
    "name",
    "minutes",
    "new_patients",
    "existing_patients",
    "bookable",
    "booking_mode",
    "lead_time_hours",
    "horizon_days",
    "instructions",
)


def type_settings(data: dict[str, Any]) -> catalog.TypeSettings:
    """An AppointmentTypeForm's cleaned data as the catalogue takes it."""
    return catalog.TypeSettings(
        **{f: data[f] for f in TYPE_FIELDS},
        providers=data["providers"],
        required_capabilities=data["required_capabilities"],
        descriptors=data["descriptors"],
    )


def ehr_owned(form: forms.Form, names: tuple[str, ...], ehr_id: int) -> None:
    """Show fields the EHR owns read-only with their source: a posted value is ignored (a
    disabled field keeps its initial value) and the next sync would put the EHR's back."""
    for name in names:
        f = form.fields[name]
        f.disabled = True
        f.help_text = f"From the EHR (EHR id {ehr_id}): change it there; the sync brings it here."


class PhraseForm(forms.Form):
    text = forms.CharField(max_length=200, label="A caller says")


class ConsoleForm(forms.Form):
    utterance = forms.CharField(
        max_length=500,
        label="What the caller says",
        widget=forms.TextInput(
            attrs={"placeholder": "I need my teeth cleaned", "autocomplete": "off"}
        ),
        help_text="A test sentence. Do not type a real patient's details.",
    )
    patient_status = forms.ChoiceField(
        choices=[("new", "New patient"), ("existing", "Existing patient")],
        initial="existing",
        label="The caller is",
    )


class ProviderForm(forms.Form):
    accepts_new_patients = forms.BooleanField(required=False, label="Accepts new patients")
    on_call_phone = forms.CharField(
        required=False,
        max_length=32,
        label="On-call phone",
        help_text="With country code, for example +15555550101; urgent calls go to it.",
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "off"}),
    )

    def clean_on_call_phone(self) -> str:
        return catalog.normalise_phone(self.cleaned_data.get("on_call_phone", ""))


class NewProviderForm(ProviderForm):
    field_order = ["name", "accepts_new_patients", "on_call_phone"]
    name = forms.CharField(max_length=200, help_text="As callers and staff say it: Dr. Ana Cho")


class RoomForm(forms.Form):
    """A room's name, whether it is in use, and what it can host (capabilities)."""

    name = forms.CharField(max_length=200, help_text="As the front desk calls it: Op 3, Laser room")
    active = forms.BooleanField(required=False, initial=True, label="In use")
    capabilities = forms.CharField(
        required=False,
        max_length=400,
        label="Capabilities",
        help_text="What the room can host, separated by commas (for example imaging, laser): "
        "a type that requires one is booked only in rooms that have it.",
    )

    def __init__(self, *args: Any, room: Operatory | None = None, **kwargs: Any) -> None:
        if room is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "name": room.name,
                "active": room.active,
                "capabilities": ", ".join(room.capabilities),
            }
        super().__init__(*args, **kwargs)
        if room is not None and room.ehr_id is not None:
            ehr_owned(self, ("name", "active"), room.ehr_id)

    def clean_capabilities(self) -> list[str]:
        raw = self.cleaned_data.get("capabilities") or ""
        try:
            return catalog.clean_capabilities(raw.split(","))
        except catalog.CatalogError as exc:
            raise ValidationError(exc.message) from exc


class NewRoomForm(RoomForm):
    field_order = ["location", "name", "capabilities"]
    location = forms.ModelChoiceField(queryset=Location.objects.none())

    def __init__(self, practice: Practice, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        del self.fields["active"]
        _field(self, "location").queryset = catalog_selectors.locations(practice).filter(
            working_hours_mode__in=LOCAL_HOURS_MODES
        )
        _field(
            self, "location"
        ).help_text = (
            "Locations whose schedule is kept here; a synced location's rooms come from the EHR."
        )


class WindowForm(forms.Form):
    days = forms.MultipleChoiceField(
        choices=WEEKDAY_CHOICES, required=False, widget=forms.CheckboxSelectMultiple
    )
    begin = forms.TimeField(widget=TIME, label="From")
    end = forms.TimeField(widget=TIME, label="Until")

    def clean(self) -> dict[str, Any]:
        data: dict[str, Any] = super().clean() or {}
        begin, end = data.get("begin"), data.get("end")
        if begin and end and begin >= end:
            self.add_error("end", "Must be later than the start.")
        return data


class ProviderRuleForm(WindowForm):
    field_order = ["appointment_types", "patient_status", "days", "begin", "end"]
    appointment_types = forms.ModelMultipleChoiceField(
        queryset=AppointmentType.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        label="Appointment types",
    )
    patient_status = forms.ChoiceField(choices=PatientStatus.choices, label="For")

    def __init__(self, practice: Practice, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _field(self, "appointment_types").queryset = AppointmentType.objects.for_practice(
            practice
        ).order_by("name")

    def clean(self) -> dict[str, Any]:
        data: dict[str, Any] = super().clean() or {}
        if not data.get("days"):
            self.add_error("days", "Choose at least one day.")
        return data


class OperatoryChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: Operatory) -> str:
        return f"{obj.name} ({obj.location.name})"


class WorkingHourForm(WindowForm):
    field_order = ["provider", "operatory", "days", "specific_date", "begin", "end"]
    provider = forms.ModelChoiceField(queryset=Provider.objects.none())
    operatory = OperatoryChoice(queryset=Operatory.objects.none(), label="Room")
    specific_date = BoundedDateField(
        required=False, widget=DATE, label="Or on one date", help_text="Instead of weekly days"
    )
    appointment_types = forms.ModelMultipleChoiceField(
        queryset=AppointmentType.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Appointment types these hours take",
        help_text="None ticked: the agent offers nothing in these hours",
    )

    def __init__(self, practice: Practice, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _field(self, "provider").queryset = Provider.objects.for_practice(practice).order_by("name")
        _field(self, "operatory").queryset = catalog_selectors.operatories(practice).filter(
            location__working_hours_mode__in=LOCAL_HOURS_MODES
        )
        _field(self, "appointment_types").queryset = AppointmentType.objects.for_practice(
            practice
        ).order_by("name")

    def clean(self) -> dict[str, Any]:
        data: dict[str, Any] = super().clean() or {}
        if not data.get("days") and not data.get("specific_date"):
            self.add_error("days", "Choose weekdays, or one specific date below.")
        return data


class BlockForm(forms.Form):
    location = forms.ModelChoiceField(queryset=Location.objects.none())
    provider = forms.ModelChoiceField(
        queryset=Provider.objects.none(), required=False, empty_label="Every provider"
    )
    operatory = OperatoryChoice(
        queryset=Operatory.objects.none(), required=False, empty_label="Every room", label="Room"
    )
    start = BoundedDateTimeField(widget=DATETIME, input_formats=DATETIME_FORMATS, label="Starts")
    end = BoundedDateTimeField(widget=DATETIME, input_formats=DATETIME_FORMATS, label="Ends")
    reason = forms.CharField(required=False, max_length=200)

    def __init__(self, practice: Practice, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _field(self, "location").queryset = catalog_selectors.locations(practice)
        _field(self, "provider").queryset = Provider.objects.for_practice(practice).order_by("name")
        _field(self, "operatory").queryset = catalog_selectors.operatories(practice)

    @staticmethod
    def local_initial(value: datetime, location: Location) -> datetime:
        """An instant as the location's wall clock, for the datetime-local input."""
        return value.astimezone(location.tz).replace(tzinfo=None, second=0, microsecond=0)

    def clean(self) -> dict[str, Any]:
        """Times are typed as the location's wall clock, whatever the server's zone."""
        data: dict[str, Any] = super().clean() or {}
        location = data.get("location")
        if location is not None:
            for name in ("start", "end"):
                value = data.get(name)
                if value is not None:
                    data[name] = timezone.make_aware(
                        timezone.make_naive(value).replace(fold=0), location.tz
                    )
        start, end = data.get("start"), data.get("end")
        if start and end and start >= end:
            self.add_error("end", "Must be later than the start.")
        return data
