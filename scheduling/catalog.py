"""Editing the practice's scheduling catalogue from the portal: appointment types, caller phrases,
EHR descriptors, providers, provider rules, working hours and blocks.

Writes only. Every function takes the practice explicitly and works on rows of that practice
(the caller is inside its tenant context, so row-level security is the second wall). Change
entries come from django-auditlog, which every scheduling model is registered with at start-up;
the request's user is the actor.

What the portal may change and what it must leave to the EHR:
- working hours of a location whose `working_hours_mode` is "synced" are the EHR's, and rows
  whose `source` is "synced" too: read-only here (`hour_is_editable`);
- rows linked to the EHR (`ehr_id` set) can be edited, but a full sync re-applies the EHR's name,
  length, descriptor codes, working hours and blocks; the pages say so next to those rows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from accounts.models import Location, Practice
from core.keys import unique_key
from core.phone import to_e164
from scheduling.models import (
    LOCAL_HOURS_MODES,
    AppointmentDescriptor,
    AppointmentType,
    Block,
    CallerPhrase,
    Operatory,
    PatientStatus,
    Provider,
    ProviderRule,
    WorkingHour,
    WorkingHoursMode,
)


class CatalogError(Exception):
    """A change the catalogue refuses; `field` names the form field it belongs next to."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


# --- validation helpers ----------------------------------------------------------------------


def normalise_phone(value: str, region: str = "US") -> str:
    """An on-call phone as E.164 (+15555550101), or "" for none; ValidationError if not a
    possible number. Possible, not valid: demo numbers (555) are possible but not assigned."""
    if not (value or "").strip():
        return ""
    number = to_e164(value, region)
    if number is None:
        raise ValidationError(
            "Enter a phone number with its country code, for example +15555550101."
        )
    return number


def hour_is_editable(hour: WorkingHour, location: Location) -> bool:
    """Working hours are the portal's to change only at a manual-mode location, and only the
    rows configured manually (never the EHR's synced schedule)."""
    return (
        location.working_hours_mode in LOCAL_HOURS_MODES and hour.source == WorkingHoursMode.MANUAL
    )


def _check(obj: Any) -> None:
    """Run the model's validation including Meta.constraints, as the database would."""
    obj.full_clean()


# --- appointment types -----------------------------------------------------------------------


@dataclass(frozen=True)
class TypeSettings:
    """What a manager sets on an appointment type; `descriptors` None leaves them as they are."""

    name: str
    minutes: int
    new_patients: bool
    existing_patients: bool
    bookable: bool
    booking_mode: str
    lead_time_hours: int
    horizon_days: int
    instructions: str
    providers: Iterable[Provider]
    required_capabilities: list[str]
    descriptors: Iterable[AppointmentDescriptor] | None = None


@transaction.atomic
def update_appointment_type(
    practice: Practice, appointment_type: AppointmentType, settings: TypeSettings
) -> AppointmentType:
    """Save a type's settings, eligible providers and (if given) its EHR descriptors."""
    if appointment_type.practice_id != practice.pk:
        raise CatalogError("Not this practice's appointment type.")
    if not (settings.new_patients or settings.existing_patients):
        raise CatalogError("A type must be open to new or to existing patients.", "new_patients")
    name = settings.name.strip()
    descriptors = settings.descriptors
    if appointment_type.ehr_id is not None:
        # The EHR's fields: the next sync would put the EHR's values back, so they are not
        # changed here at all (the page shows them read-only with their source).
        if name != appointment_type.name:
            raise CatalogError(EHR_OWNED.format(what="name"), "name")
        if settings.minutes != appointment_type.minutes:
            raise CatalogError(EHR_OWNED.format(what="length"), "minutes")
        descriptors = None
    providers = list(settings.providers)
    _same_practice(practice, providers)
    appointment_type.name = name
    appointment_type.minutes = settings.minutes
    appointment_type.new_patients = settings.new_patients
    appointment_type.existing_patients = settings.existing_patients
    appointment_type.bookable = settings.bookable
    appointment_type.booking_mode = settings.booking_mode
    appointment_type.lead_time_hours = settings.lead_time_hours
    appointment_type.horizon_days = settings.horizon_days
    appointment_type.instructions = settings.instructions.strip()
    appointment_type.required_capabilities = sorted(
        {c.strip() for c in settings.required_capabilities}
    )
    _check(appointment_type)
    appointment_type.save()
    _set_related(appointment_type, "providers", providers)
    if descriptors is not None:
        set_descriptors(practice, appointment_type, descriptors)
    return appointment_type


@transaction.atomic
def create_appointment_type(practice: Practice, settings: TypeSettings) -> AppointmentType:
    """A new type, configured here: for practices that keep their schedule in the portal
    (an EHR-synced practice gets its types from the EHR, and maps them)."""
    require_manual_schedule(practice)
    name = _new_name(
        AppointmentType.objects.for_practice(practice),
        settings.name,
        missing="Give the type a name.",
        taken="There is already a type called “{name}”.",
    )
    row = AppointmentType(
        practice=practice,
        key=unique_key(AppointmentType.objects.for_practice(practice), name, "appointmenttype"),
        name=name,
        minutes=settings.minutes,
        new_patients=settings.new_patients,
        existing_patients=settings.existing_patients,
    )
    return update_appointment_type(practice, row, settings)


def set_descriptors(
    practice: Practice,
    appointment_type: AppointmentType,
    descriptors: Iterable[AppointmentDescriptor],
) -> None:
    """The EHR codes (D1110 ...) a booking of this type carries into the EHR."""
    descriptors = list(descriptors)
    _same_practice(practice, descriptors)
    _set_related(appointment_type, "descriptors", descriptors)


def add_phrase(practice: Practice, appointment_type: AppointmentType, text: str) -> CallerPhrase:
    """A caller phrase for the type; the same words (any case) twice on one type are refused."""
    text = " ".join(text.split())
    if not text:
        raise CatalogError("Type the words a caller would say.", "text")
    if len(text) > 200:
        raise CatalogError("Keep a phrase under 200 characters.", "text")
    if appointment_type.practice_id != practice.pk:
        raise CatalogError("Not this practice's appointment type.")
    if (
        CallerPhrase.objects.for_practice(practice)
        .filter(appointment_type=appointment_type, text__iexact=text)
        .exists()
    ):
        raise CatalogError(f"“{text}” is already a phrase of this type.", "text")
    try:
        with transaction.atomic():
            return CallerPhrase.objects.create(
                practice=practice, appointment_type=appointment_type, text=text
            )
    except IntegrityError as exc:  # a concurrent add of the same words
        raise CatalogError(f"“{text}” is already a phrase of this type.", "text") from exc


def remove_phrase(practice: Practice, phrase: CallerPhrase) -> None:
    if phrase.practice_id != practice.pk:
        raise CatalogError("Not this practice's phrase.")
    phrase.delete()


# --- providers and their rules ---------------------------------------------------------------


def update_provider(
    practice: Practice, provider: Provider, *, accepts_new_patients: bool, on_call_phone: str
) -> Provider:
    """Whether the provider takes new patients, and the number urgent calls are put through to."""
    if provider.practice_id != practice.pk:
        raise CatalogError("Not this practice's provider.")
    try:
        provider.on_call_phone = normalise_phone(on_call_phone)
    except ValidationError as exc:
        raise CatalogError(exc.messages[0], "on_call_phone") from exc
    provider.accepts_new_patients = accepts_new_patients
    _check(provider)
    provider.save(update_fields=["on_call_phone", "accepts_new_patients"])
    return provider


def create_provider(
    practice: Practice, *, name: str, accepts_new_patients: bool, on_call_phone: str
) -> Provider:
    """A provider configured here (a practice whose schedule is the portal's)."""
    require_manual_schedule(practice)
    name = _new_name(
        Provider.objects.for_practice(practice),
        name,
        missing="Give the provider's name.",
        taken="There is already a provider called “{name}”.",
    )
    provider = Provider(
        practice=practice,
        key=unique_key(Provider.objects.for_practice(practice), name, "provider"),
        name=name,
    )
    try:
        provider.on_call_phone = normalise_phone(on_call_phone)
    except ValidationError as exc:
        raise CatalogError(exc.messages[0], "on_call_phone") from exc
    provider.accepts_new_patients = accepts_new_patients
    _check(provider)
    provider.save()
    return provider


# --- rooms (operatories) ---------------------------------------------------------------------

CAPABILITY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


def clean_capabilities(raw: Iterable[str]) -> list[str]:
    """Capabilities as the slot engine matches them: lower-case slugs, each once, sorted."""
    out = set()
    for item in raw:
        cap = item.strip().lower().replace(" ", "-")
        if not cap:
            continue
        if not CAPABILITY.match(cap):
            raise CatalogError(
                f"“{item.strip()}” is not a capability name: use letters, digits and dashes "
                "(up to 32), for example imaging or laser.",
                "capabilities",
            )
        out.add(cap)
    return sorted(out)


@transaction.atomic
def create_operatory(
    practice: Practice, *, location: Location, name: str, capabilities: Iterable[str]
) -> Operatory:
    """A room at a location whose schedule is configured here (a synced location's rooms are
    the EHR's operatories, and come with the sync)."""
    _same_practice(practice, [location])
    if location.working_hours_mode not in LOCAL_HOURS_MODES:
        raise CatalogError(
            f"{location.name} is synced from the EHR: add the room in the EHR, and the next "
            "sync brings it here.",
            "location",
        )
    name = _new_name(
        Operatory.objects.for_practice(practice).filter(location=location),
        name,
        missing="Give the room a name.",
        taken=location.name + " already has a room called “{name}”.",
    )
    room = Operatory(
        practice=practice,
        location=location,
        key=unique_key(
            Operatory.objects.for_practice(practice), f"{location.key}-{name}", "operatory"
        ),
        name=name,
        capabilities=clean_capabilities(capabilities),
    )
    _check(room)
    room.save()
    return room


@transaction.atomic
def update_operatory(
    practice: Practice,
    room: Operatory,
    *,
    name: str,
    active: bool,
    capabilities: Iterable[str],
) -> Operatory:
    """A room's capabilities (always the practice's own), and its name and whether it is in
    use unless the EHR owns them (a linked room: the sync re-applies the EHR's)."""
    if room.practice_id != practice.pk:
        raise CatalogError("Not this practice's room.")
    if room.ehr_id is not None:
        if name.strip() != room.name:
            raise CatalogError(EHR_OWNED.format(what="name"), "name")
        if active != room.active:
            raise CatalogError(EHR_OWNED.format(what="status"), "active")
    else:
        name = name.strip()
        if not name:
            raise CatalogError("Give the room a name.", "name")
        clash = Operatory.objects.for_practice(practice).filter(
            location_id=room.location_id, name__iexact=name
        )
        if clash.exclude(pk=room.pk).exists():
            raise CatalogError(f"This location already has a room called “{name}”.", "name")
        room.name, room.active = name, active
    room.capabilities = clean_capabilities(capabilities)
    _check(room)
    room.save()
    return room


@transaction.atomic
def save_rule(
    practice: Practice,
    provider: Provider,
    *,
    rule: ProviderRule | None = None,
    appointment_types: Iterable[AppointmentType],
    patient_status: str,
    days: list[str],
    begin: time,
    end: time,
) -> ProviderRule:
    """Create or change a rule: these types, with this provider, for this patient status, only
    in these windows."""
    if provider.practice_id != practice.pk or (rule and rule.provider_id != provider.pk):
        raise CatalogError("Not this practice's provider rule.")
    types = list(appointment_types)
    if not types:
        raise CatalogError("Choose at least one appointment type.", "appointment_types")
    _same_practice(practice, types)
    if not days:
        raise CatalogError("Choose at least one day.", "days")
    if begin >= end:
        raise CatalogError("The window must end after it begins.", "end")
    if patient_status not in PatientStatus.values:
        raise CatalogError("Choose who the rule is for.", "patient_status")
    rule = rule or ProviderRule(practice=practice, provider=provider)
    rule.patient_status = patient_status
    rule.days = _ordered_days(days)
    rule.begin, rule.end = begin, end
    _check(rule)
    rule.save()
    _set_related(rule, "appointment_types", types)
    return rule


def delete_rule(practice: Practice, rule: ProviderRule) -> None:
    if rule.practice_id != practice.pk:
        raise CatalogError("Not this practice's provider rule.")
    rule.delete()


# --- working hours and blocks ----------------------------------------------------------------


@transaction.atomic
def save_working_hour(
    practice: Practice,
    *,
    hour: WorkingHour | None = None,
    provider: Provider,
    operatory: Operatory,
    days: list[str],
    specific_date: date | None,
    begin: time,
    end: time,
    appointment_types: Iterable[AppointmentType],
) -> WorkingHour:
    """A provider working in a room, weekly on `days` or on one date, for these types."""
    types = list(appointment_types)
    _same_practice(practice, [provider, operatory, *types])
    location = operatory.location
    if hour is not None:
        _require_editable(practice, hour)
    if location.working_hours_mode not in LOCAL_HOURS_MODES:
        raise CatalogError(_SYNCED_HOURS, "operatory")
    if specific_date is None and not days:
        raise CatalogError("Choose weekdays, or one specific date.", "days")
    if begin >= end:
        raise CatalogError("The hours must end after they begin.", "end")
    hour = hour or WorkingHour(practice=practice, source=WorkingHoursMode.MANUAL)
    hour.provider, hour.operatory = provider, operatory
    hour.days = [] if specific_date else _ordered_days(days)
    hour.specific_date = specific_date
    hour.begin, hour.end = begin, end
    _check(hour)
    hour.save()
    _set_related(hour, "appointment_types", types)
    return hour


def delete_working_hour(practice: Practice, hour: WorkingHour) -> None:
    _require_editable(practice, hour)
    hour.delete()


def _require_editable(practice: Practice, hour: WorkingHour) -> None:
    """Only the practice's own manually kept hours change here."""
    if hour.practice_id != practice.pk:
        raise CatalogError("Not this practice's working hours.")
    if not hour_is_editable(hour, hour.operatory.location):
        raise CatalogError(_SYNCED_HOURS)


_SYNCED_HOURS = (
    "This location's working hours are synced from the EHR: change them in the EHR, "
    "and the next sync brings them here."
)


def save_block(
    practice: Practice,
    *,
    block: Block | None = None,
    location: Location,
    provider: Provider | None,
    operatory: Operatory | None,
    start: datetime,
    end: datetime,
    reason: str,
) -> Block:
    """A calendar unavailability: of a provider, a room, or (neither) the whole location."""
    _same_practice(practice, [x for x in (location, provider, operatory) if x is not None])
    if block is not None and block.practice_id != practice.pk:
        raise CatalogError("Not this practice's block.")
    if operatory is not None and operatory.location_id != location.pk:
        raise CatalogError("That room is at another location.", "operatory")
    if start >= end:
        raise CatalogError("The block must end after it starts.", "end")
    block = block or Block(practice=practice)
    block.location, block.provider, block.operatory = location, provider, operatory
    block.start, block.end, block.reason = start, end, reason.strip()
    _check(block)
    block.save()
    return block


def delete_block(practice: Practice, block: Block) -> None:
    if block.practice_id != practice.pk:
        raise CatalogError("Not this practice's block.")
    block.delete()


# --- helpers ---------------------------------------------------------------------------------

EHR_OWNED = (
    "The {what} comes from the EHR: change it there, and the next sync brings it here "
    "(a change made here would be put back by that sync)."
)
MANUAL_ONLY = (
    "This practice's schedule is synced from the EHR: providers, rooms and appointment types "
    "are added in the EHR and arrive with the next sync."
)


def schedule_is_manual(practice: Practice) -> bool:
    """Whether the practice keeps (some of) its schedule here: a location in manual mode, or
    no location yet (set-up by hand starts here)."""
    locations = Location.objects.for_practice(practice)
    return (
        not locations.exists()
        or locations.filter(working_hours_mode__in=LOCAL_HOURS_MODES).exists()
    )


def require_manual_schedule(practice: Practice) -> None:
    if not schedule_is_manual(practice):
        raise CatalogError(MANUAL_ONLY)


_DAY_ORDER = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _new_name(rows: QuerySet[Any], name: str, *, missing: str, taken: str) -> str:
    """A new row's name, stripped: given, and not one of `rows` has already (in any case)."""
    name = name.strip()
    if not name:
        raise CatalogError(missing, "name")
    if rows.filter(name__iexact=name).exists():
        raise CatalogError(taken.replace("{name}", name), "name")
    return name


def _ordered_days(days: Iterable[str]) -> list[str]:
    chosen = set(days)
    unknown = chosen - set(_DAY_ORDER)
    if unknown:
        raise CatalogError(f"Unknown day {sorted(unknown)[0]!r}.", "days")
    return [d for d in _DAY_ORDER if d in chosen]


def _set_related(instance: Any, field_name: str, objects: Iterable[Any]) -> None:
    """Set a many-to-many field and record the change in the audit trail.

    auditlog logs many-to-many changes only for fields registered as `m2m_fields`; the start-up
    registration (compliance.audit) does not name any, so unless it does, the change entry is
    written here, through the same manager (the actor comes from the request, as for saves)."""
    from auditlog.registry import auditlog

    from compliance.models import ChangeEntry

    manager = getattr(instance, field_name)
    wanted = {obj.pk: obj for obj in objects}
    before = set(manager.values_list("pk", flat=True))
    removed = list(manager.filter(pk__in=before - set(wanted)))
    manager.set(list(wanted.values()))
    registration = auditlog._registry.get(type(instance), {})
    if field_name in registration.get("m2m_fields", ()):
        return  # auditlog's own m2m_changed receiver records it
    added = [obj for pk, obj in wanted.items() if pk not in before]
    ChangeEntry.objects.log_m2m_changes(added, instance, "add", field_name)
    ChangeEntry.objects.log_m2m_changes(removed, instance, "delete", field_name)


def _same_practice(practice: Practice, objects: Iterable[Any]) -> None:
    for obj in objects:
        if obj.practice_id != practice.pk:
            raise CatalogError("One of the chosen items belongs to another practice.")
