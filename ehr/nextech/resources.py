"""FHIR STU3 resources for Nextech, built and parsed with the ``fhir.resources`` STU3 models, so
everything we send is valid against the specification and everything we accept is checked before
we act on it; plus the plain types the rest of the adapter works with.

Leniency, deliberately narrow: Nextech's own examples render names with an empty given name
(``"given": ["Sherri", ""]``) and participants without the ``status`` STU3 requires. Both are
tidied before validation (empty strings dropped, a missing participant status read as
``accepted``); anything else invalid is refused as the EHR sending something we do not understand.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from fhir.resources.STU3.address import Address
from fhir.resources.STU3.appointment import Appointment, AppointmentParticipant
from fhir.resources.STU3.codeableconcept import CodeableConcept
from fhir.resources.STU3.composition import Composition, CompositionSection
from fhir.resources.STU3.contactpoint import ContactPoint
from fhir.resources.STU3.extension import Extension
from fhir.resources.STU3.fhirresourcemodel import FHIRResourceModel
from fhir.resources.STU3.humanname import HumanName
from fhir.resources.STU3.identifier import Identifier
from fhir.resources.STU3.location import Location
from fhir.resources.STU3.narrative import Narrative
from fhir.resources.STU3.patient import Patient
from fhir.resources.STU3.practitioner import Practitioner
from fhir.resources.STU3.reference import Reference
from fhir.resources.STU3.slot import Slot
from pydantic import ValidationError

from ehr.errors import EHRTransientError

SD = "https://select.nextech-api.com/api/structuredefinition"
NOTE_SYSTEM = "urn:hello-practice-portal:note"


class NextechInvalidResource(EHRTransientError):
    """Nextech answered with a resource that is not valid STU3 (and not one of the tolerated
    quirks). Transient: a broken answer is more often a hiccup than a permanent change."""

    kind = "invalid_resource"


# -- our types ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NxPractitioner:
    id: str
    family: str
    given: str
    display: str


@dataclass(frozen=True)
class NxLocation:
    id: str
    name: str


@dataclass(frozen=True)
class NxCode:
    """An appointment type or purpose (Nextech's own resources, not FHIR core)."""

    id: str
    name: str
    duration_minutes: int | None = None


@dataclass(frozen=True)
class NxSlot:
    practitioner_id: str
    location_id: str
    start: datetime
    end: datetime
    schedule: str
    appointment_type_id: str | None = None


@dataclass(frozen=True)
class NxPatient:
    id: str
    family: str
    given: tuple[str, ...]
    birth_date: date | None
    phones: tuple[str, ...]
    email: str | None
    prospect: bool = False
    chart: str | None = None  # the Nextech chart number (identifier use "usual")


@dataclass(frozen=True)
class NxAppointment:
    id: str
    status: str  # FHIR status: proposed (held), booked, pending, arrived, fulfilled, cancelled
    start: datetime
    end: datetime
    patient_id: str | None
    practitioner_id: str | None
    location_id: str | None
    appointment_type_id: str | None
    purpose_ids: tuple[str, ...]
    schedule_mode: str | None  # "book" | "hold" as Nextech recorded it
    cancel_requested: bool
    last_updated: datetime | None
    comment: str | None = None

    @property
    def held(self) -> bool:
        """On the office's follow-up list for staff to confirm, not yet on the schedule as
        confirmed."""
        return self.status == "proposed"

    @property
    def cancelled(self) -> bool:
        return self.status == "cancelled"


@dataclass(frozen=True)
class NewPatient:
    """A caller not (yet) in Nextech, as Nextech requires a prospect: name, a phone, an email."""

    family: str
    given: str
    phone: str
    email: str
    birth_date: date | None = None
    postal_code: str | None = None
    phone_use: str = "mobile"


@dataclass(frozen=True)
class BookingRequest:
    location_id: str
    practitioner_id: str
    start: datetime
    end: datetime
    appointment_type_id: str | None
    purpose_ids: tuple[str, ...] = ()
    mode: str = "book"  # "book": on the schedule; "hold": the office's follow-up list
    comment: str | None = None
    patient_id: str | None = None
    new_patient: NewPatient | None = None


@dataclass
class ChangeBatch:
    """What changed since a cursor, and the cursor to ask from next time."""

    appointments: list[NxAppointment]
    cursor: datetime | None
    seen_at_cursor: frozenset[str] = field(default_factory=frozenset)


# -- helpers ------------------------------------------------------------------------------------


def dump(model: FHIRResourceModel) -> dict[str, Any]:
    """The JSON we send: the model's own serialisation (aliases, no empty elements)."""
    return dict(json.loads(model.model_dump_json(exclude_none=True)))


def _tidy(value: Any) -> Any:
    """Drop the empty strings FHIR forbids but Nextech sends (``given: ["Sherri", ""]``)."""
    if isinstance(value, dict):
        return {k: _tidy(v) for k, v in value.items() if v != "" and v is not None}
    if isinstance(value, list):
        return [_tidy(v) for v in value if v != "" and v is not None]
    return value


def validate(model: type[FHIRResourceModel], raw: Any) -> Any:
    if not isinstance(raw, dict) or raw.get("resourceType") != model.get_resource_type():
        raise NextechInvalidResource(f"expected a {model.get_resource_type()} resource")
    body = _tidy(raw)
    if model is Appointment:
        for part in body.get("participant") or []:
            part.setdefault("status", "accepted")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        where = "; ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors()[:3])
        raise NextechInvalidResource(
            f"Nextech sent an invalid {model.get_resource_type()} ({where})"
        ) from exc


def ref_id(reference: str | None, kind: str) -> str | None:
    """``Practitioner/9323`` (any case) -> ``9323``; None when it names another kind."""
    if not reference or "/" not in reference:
        return None
    head, _, tail = reference.partition("/")
    return tail if head.lower() == kind.lower() and tail else None


def _ext_refs(extensions: Any, name: str, kind: str) -> list[str]:
    out = []
    for ext in extensions or []:
        if ext.url == f"{SD}/{name}" and ext.valueReference is not None:
            ident = ref_id(ext.valueReference.reference, kind)
            if ident:
                out.append(ident)
    return out


def _ext_string(extensions: Any, name: str) -> str | None:
    for ext in extensions or []:
        if ext.url == f"{SD}/{name}" and ext.valueString:
            return str(ext.valueString)
    return None


def digits(value: str | None) -> str:
    return re.sub(r"\D", "", value or "")


# -- parsing ------------------------------------------------------------------------------------


def parse_practitioner(raw: Any) -> NxPractitioner:
    res = validate(Practitioner, raw)
    name = (res.name or [HumanName.model_construct()])[0]
    given = " ".join(name.given or [])
    return NxPractitioner(
        id=str(res.id),
        family=name.family or "",
        given=given,
        display=name.text or " ".join(x for x in (given, name.family or "") if x),
    )


def parse_location(raw: Any) -> NxLocation:
    res = validate(Location, raw)
    return NxLocation(id=str(res.id), name=res.name or "")


def parse_code(raw: Any, kind: str) -> NxCode:
    """Nextech's ``appointment-type`` / ``appointment-purpose``: id plus ``#name`` extensions."""
    if not isinstance(raw, dict) or raw.get("resourceType") != kind or not raw.get("id"):
        raise NextechInvalidResource(f"expected an {kind} resource")
    name, duration = "", None
    for ext in raw.get("extension") or []:
        if ext.get("url") == f"{SD}/{kind}#name":
            name = str(ext.get("valueString") or "")
        elif ext.get("url") == f"{SD}/{kind}#duration" and isinstance(ext.get("valueInteger"), int):
            duration = int(ext["valueInteger"])
    return NxCode(id=str(raw["id"]), name=name, duration_minutes=duration)


def parse_slot(raw: Any) -> NxSlot:
    res = validate(Slot, raw)
    schedule = str(res.schedule.reference or "")
    # Schedule/location_1_practitioner_9323: the pair the slot belongs to.
    match = re.search(r"location_([^_/]+)_practitioner_([^_/]+)$", schedule)
    if match is None:
        raise NextechInvalidResource("a Slot whose schedule names no location and practitioner")
    types = _ext_refs(res.extension, "appointment-type", "appointment-type")
    return NxSlot(
        practitioner_id=match.group(2),
        location_id=match.group(1),
        start=res.start,
        end=res.end,
        schedule=schedule,
        appointment_type_id=types[0] if types else None,
    )


def parse_patient(raw: Any) -> NxPatient:
    res = validate(Patient, raw)
    name = (res.name or [HumanName.model_construct()])[0]
    phones = tuple(t.value for t in res.telecom or [] if t.system == "phone" and t.value)
    email = next((t.value for t in res.telecom or [] if t.system == "email" and t.value), None)
    return NxPatient(
        id=str(res.id),
        family=name.family or "",
        given=tuple(name.given or ()),
        birth_date=res.birthDate,
        phones=phones,
        email=email,
        prospect=_ext_string(res.extension, "patient-type") == "prospect",
        chart=next((i.value for i in res.identifier or [] if i.use == "usual" and i.value), None),
    )


def parse_appointment(raw: Any) -> NxAppointment:
    res = validate(Appointment, raw)
    refs: dict[str, str] = {}
    for part in res.participant or []:
        if part.actor is None or not part.actor.reference:
            continue
        kind, _, ident = part.actor.reference.partition("/")
        refs[kind.lower()] = ident
    types = _ext_refs(res.extension, "appointment-type", "appointment-type")
    last = res.meta.lastUpdated if res.meta is not None else None
    return NxAppointment(
        id=str(res.id),
        status=str(res.status),
        start=res.start,
        end=res.end,
        patient_id=refs.get("patient"),
        practitioner_id=refs.get("practitioner"),
        location_id=refs.get("location"),
        appointment_type_id=types[0] if types else None,
        purpose_ids=tuple(_ext_refs(res.extension, "appointment-purpose", "appointment-purpose")),
        schedule_mode=_ext_string(res.extension, "appointment-schedule"),
        cancel_requested=_ext_string(res.extension, "request-type") == "queue",
        last_updated=last,
        comment=res.comment,
    )


def appointment_response_comment(raw: Any) -> str:
    if isinstance(raw, dict) and raw.get("resourceType") == "AppointmentResponse":
        return str(raw.get("comment") or "the time is no longer available")
    return "the time is no longer available"


def note_identifier(raw: Any) -> str | None:
    """Our key on a Composition we wrote (``identifier`` with our system), if any."""
    if not isinstance(raw, dict):
        return None
    ident = raw.get("identifier") or {}
    if isinstance(ident, dict) and ident.get("system") == NOTE_SYSTEM:
        return str(ident.get("value") or "") or None
    return None


# -- building -----------------------------------------------------------------------------------


def _reference_ext(name: str, kind: str, ident: str) -> Extension:
    return Extension(url=f"{SD}/{name}", valueReference=Reference(reference=f"{kind}/{ident}"))


def contained_patient(new: NewPatient) -> Patient:
    telecom = [
        ContactPoint(system="phone", use=new.phone_use, value=new.phone),
        ContactPoint(system="email", value=new.email),
    ]
    fields: dict[str, Any] = {
        "id": "prospect",
        "name": [HumanName(family=new.family, given=[new.given], text=f"{new.given} {new.family}")],
        "telecom": telecom,
    }
    if new.birth_date is not None:
        fields["birthDate"] = new.birth_date
    if new.postal_code:
        fields["address"] = [Address(use="home", postalCode=new.postal_code)]
    return Patient(**fields)


def build_appointment(request: BookingRequest, *, patient_id: str | None) -> dict[str, Any]:
    """``POST /Appointment``: status proposed, type, purposes, appointment-schedule, and the
    patient as a reference or, for a caller not in Nextech, a contained prospect."""
    if request.mode not in ("book", "hold"):
        raise ValueError("mode must be book or hold")
    extensions: list[Extension] = []
    if request.appointment_type_id:
        extensions.append(
            _reference_ext("appointment-type", "appointment-type", request.appointment_type_id)
        )
    for purpose in request.purpose_ids:
        extensions.append(_reference_ext("appointment-purpose", "appointment-purpose", purpose))
    extensions.append(Extension(url=f"{SD}/appointment-schedule", valueString=request.mode))
    participants = [
        AppointmentParticipant(
            actor=Reference(reference=f"Location/{request.location_id}"), status="accepted"
        ),
        AppointmentParticipant(
            actor=Reference(reference=f"Practitioner/{request.practitioner_id}"),
            status="accepted",
        ),
    ]
    fields: dict[str, Any] = {
        "status": "proposed",
        "start": request.start,
        "end": request.end,
        "extension": extensions,
        "participant": participants,
    }
    if request.comment:
        fields["comment"] = request.comment
    if patient_id is not None:
        participants.insert(
            0,
            AppointmentParticipant(
                actor=Reference(reference=f"Patient/{patient_id}"), status="accepted"
            ),
        )
    elif request.new_patient is not None:
        fields["contained"] = [contained_patient(request.new_patient)]
    else:
        raise ValueError("a booking needs a patient id or a new patient")
    return dump(Appointment(**fields))


def build_status_update(status: str, *, request_queue: bool = False) -> dict[str, Any]:
    """``PUT /Appointment/{id}``: Nextech takes a bare status (the STU3 model would demand the
    participants we are not changing, so this one small body is built by hand)."""
    body: dict[str, Any] = {"resourceType": "Appointment", "status": status}
    if request_queue:
        body["extension"] = [{"url": f"{SD}/request-type", "valueString": "queue"}]
    return body


def build_composition(
    *,
    patient_id: str,
    key: str,
    title: str,
    text: str,
    when: datetime,
    author: str,
    category: str = "Phone call",
    priority: str = "normal",
) -> dict[str, Any]:
    """A non-clinical note for the patient's Notes tab, carrying our ``key`` so that we can tell
    it is already there before writing it again."""
    from html import escape

    div = f'<div xmlns="http://www.w3.org/1999/xhtml"><p>{escape(text)}</p></div>'
    model = Composition(
        identifier=Identifier(system=NOTE_SYSTEM, value=key),
        status="final",
        type=CodeableConcept(text=category),
        subject=Reference(reference=f"Patient/{patient_id}"),
        date=when,
        author=[Reference(display=author)],
        title=title,
        extension=[
            Extension(url=f"{SD}/note-category", valueString=category),
            Extension(url=f"{SD}/flag-priority", valueString=priority),
        ],
        section=[CompositionSection(title=title, text=Narrative(status="generated", div=div))],
    )
    return dump(model)
