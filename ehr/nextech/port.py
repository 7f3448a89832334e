"""``ehr.port.EHRPort`` for Nextech: the port's shapes over ``NextechAdapter``.

Where Nextech differs from the port's NexHealth-born shape, and what this does about it:

- **Patient ids.** Nextech names patients by GUID; the port's ids are integers. Through the
  port a patient is its Nextech **chart number** (numeric, and accepted by Nextech wherever a
  patient is named in a search). Chart and GUID are mapped both ways in Redis (they never
  change), so every process learns each pair once.
- **No patient create.** The Select API creates a patient only as a *prospect* contained in the
  appointment POST. ``create_patient`` therefore finds first (name + birth date + phone) and,
  when nobody matches, returns a **provisional** patient: a negative id whose demographics wait
  in Redis; ``create_appointment`` with that id sends them as the contained Patient, and the
  appointment it returns names the real chart number. From then on the provisional id resolves
  to that chart (kept in Redis for good), so a row that stored it keeps working. Nextech
  requires an email (and a phone) for a prospect; without them ``create_patient`` refuses at
  once rather than at booking time.
- **Availability** is Nextech's own (``Capability.NATIVE_SLOTS``: ``free_slots``); there are no
  working hours or operatories to read.
- **A hold** (``as_request=True``: ``appointment-schedule: hold``, the office's follow-up list)
  comes back with ``insertion_status`` ``HELD``: not confirmed until staff confirm it and
  Nextech says ``booked`` (found by the change poll or by reading the appointment again).
- **Cancel** is a request staff act on (``Capability.CANCEL_REQUESTS``): the answer is
  ``cancelled`` only once they have; until then it carries ``cancel_requested``.
- **Documents** are Compositions in the patient's Notes tab, found again by our reference.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import date, datetime, timedelta
from datetime import time as dtime
from hashlib import sha256
from typing import Any, Unpack
from zoneinfo import ZoneInfo

from core.phone import to_e164
from core.redis import get_redis
from ehr.errors import EHRNotFound, EHRValidationError
from ehr.instances import PerConnection
from ehr.port import (
    AppointmentDetails,
    AppointmentKey,
    Capability,
    DocumentDetails,
    FreeSlotsQuery,
    PatientDetails,
    PatientQuery,
    WorkingHoursQuery,
)
from ehr.ratelimit import redis_prefix
from ehr.types import (
    EHRAppointment,
    EHRAppointmentType,
    EHRDescriptor,
    EHRDocument,
    EHROperatory,
    EHRPatient,
    EHRProvider,
    EHRWorkingHour,
    InsertionStatus,
    WebhookRegistration,
)

from .adapter import NextechAdapter
from .client import NextechClient
from .config import NextechConfig
from .resources import (
    BookingRequest,
    NewPatient,
    NextechInvalidResource,
    NxAppointment,
    NxCode,
    NxPatient,
    parse_appointment,
    parse_patient,
)

CACHE_SECONDS = 300.0
PROVISIONAL_SECONDS = 2 * 86400


def _e164(value: str | None) -> str:
    return to_e164(value or "", "US") or ""


def _int(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


class NextechPort:
    """One Nextech connection behind ``EHRPort`` (and ``SlotSource``). Thread-safe."""

    kind = "nextech"
    capabilities = frozenset(
        {
            Capability.NATIVE_SLOTS,
            Capability.REQUEST_MODE,
            Capability.CANCEL_REQUESTS,
            Capability.NEW_PATIENT_EMAIL,
        }
    )

    def __init__(self, config: NextechConfig, client: NextechClient | None = None) -> None:
        self.config = config
        self.client = client or NextechClient(config)
        self.nextech = NextechAdapter(self.client)
        self.tz = ZoneInfo(config.timezone)
        self.redis = get_redis()
        self._prefix = f"{redis_prefix()}:nextech:ids:{config.practice_id}"
        self._lock = threading.Lock()
        self._types: tuple[float, list[NxCode]] | None = None

    def close(self) -> None:
        self.client.close()

    def check(self) -> str:
        """ "Test connection": sign in afresh and read the connection's location; returns its
        name. Raises ``NextechCredentialsNeedReset`` (say so to the practice), other errors."""
        self.client.tokens.forget()
        location = self._location(None)
        for loc in self.nextech.locations():
            if loc.id == location:
                return loc.name
        raise EHRNotFound(f"Nextech location {location} is not visible to the service user")

    # -- ids ------------------------------------------------------------------------------------

    def _remember(self, patient: NxPatient) -> int | None:
        chart = _int(patient.chart)
        if chart is not None:
            self.redis.set(f"{self._prefix}:chart:{patient.id}", chart)
            self.redis.set(f"{self._prefix}:guid:{chart}", patient.id)
        return chart

    def chart_for(self, guid: str | None) -> int | None:
        """The chart number of the patient Nextech names by ``guid`` (one read, then cached)."""
        if not guid:
            return None
        cached = self.redis.get(f"{self._prefix}:chart:{guid}")
        if cached:
            return int(cached)
        return self._remember(self.nextech.patient(guid))

    def guid_for(self, chart: int) -> str:
        cached = self.redis.get(f"{self._prefix}:guid:{chart}")
        if cached:
            return cached.decode() if isinstance(cached, bytes) else str(cached)
        patient = self.nextech.patient(str(chart))  # Nextech reads a patient by chart number too
        self._remember(patient)
        return patient.id

    def _location(self, location_id: int | None) -> str:
        if location_id is not None:
            return str(location_id)
        if self.config.default_location_id is None:
            raise EHRValidationError("a Nextech location is needed (the connection has none)")
        return self.config.default_location_id

    # -- mapping --------------------------------------------------------------------------------

    def as_ehr(self, appt: NxAppointment) -> EHRAppointment:
        # Nextech writes synchronously: an appointment it answers with is in the schedule, and
        # only a hold still waits (for staff to confirm it, not for an insertion).
        insertion = InsertionStatus.HELD if appt.held else InsertionStatus.COMPLETE
        return EHRAppointment(
            id=int(appt.id),
            location_id=_int(appt.location_id),
            provider_id=_int(appt.practitioner_id),
            operatory_id=None,
            patient_id=self.chart_for(appt.patient_id),
            appointment_type_id=_int(appt.appointment_type_id),
            start=appt.start,
            end=appt.end,
            cancelled=appt.status in ("cancelled", "noshow", "entered-in-error"),
            unavailable=False,
            updated_at=appt.last_updated,
            insertion_status=insertion,
            note=appt.comment or "",
            descriptor_ids=tuple(int(p) for p in appt.purpose_ids if p.isdigit()),
            cancel_requested=appt.cancel_requested and not appt.cancelled,
        )

    def _patient(self, patient: NxPatient) -> EHRPatient:
        chart = self._remember(patient)
        if chart is None:
            raise EHRValidationError("Nextech patient without a chart number")
        return EHRPatient(
            id=chart,
            first_name=patient.given[0] if patient.given else "",
            last_name=patient.family,
            date_of_birth=patient.birth_date,
            phone=_e164(patient.phones[0]) if patient.phones else "",
            email=(patient.email or "").lower(),
        )

    # -- the practice's resources ---------------------------------------------------------------

    def providers(self, location_id: int | None = None) -> list[EHRProvider]:
        return [
            EHRProvider(
                id=int(p.id),
                name=p.display,
                first_name=p.given,
                last_name=p.family,
                inactive=False,
                location_ids=(),
            )
            for p in self.nextech.practitioners()
            if p.id.isdigit()
        ]

    def provider(self, provider_id: int) -> EHRProvider:
        found = self.nextech.practitioner(str(provider_id))
        return EHRProvider(
            id=int(found.id),
            name=found.display,
            first_name=found.given,
            last_name=found.family,
            inactive=False,
            location_ids=(),
        )

    def operatories(self, location_id: int | None = None) -> list[EHROperatory]:
        return []  # Nextech's scheduling resources are not in the API

    def descriptors(self, location_id: int | None = None) -> list[EHRDescriptor]:
        """Nextech's appointment purposes (the reason a type of visit is for). A purpose has
        no code of its own: its name is the code a configuration file names it by."""
        return [
            EHRDescriptor(
                id=int(p.id),
                code=p.name[:32] or p.id,
                name=p.name,
                kind="appointment_purpose",
                location_id=None,
                active=True,
            )
            for p in self.nextech.appointment_purposes()
            if p.id.isdigit()
        ]

    def _type_list(self) -> list[NxCode]:
        with self._lock:
            if self._types is not None and time.monotonic() - self._types[0] < CACHE_SECONDS:
                return self._types[1]
        types = self.nextech.appointment_types()
        with self._lock:
            self._types = (time.monotonic(), types)
        return types

    def appointment_types(self, location_id: int | None = None) -> list[EHRAppointmentType]:
        return [
            EHRAppointmentType(
                id=int(t.id),
                name=t.name,
                minutes=t.duration_minutes or 0,
                location_id=None,
                descriptor_ids=(),
                bookable_online=True,
            )
            for t in self._type_list()
            if t.id.isdigit()
        ]

    def working_hours(self, **query: Unpack[WorkingHoursQuery]) -> list[EHRWorkingHour]:
        return []  # availability is Nextech's own (free_slots)

    # -- availability (NATIVE_SLOTS) ------------------------------------------------------------

    def free_slots(self, **query: Unpack[FreeSlotsQuery]) -> list[tuple[int, datetime, datetime]]:
        start = datetime.combine(query["start_date"], dtime(0), tzinfo=self.tz)
        type_id = query.get("appointment_type_id")
        slots = self.nextech.slots(
            location_id=self._location(query.get("location_id")),
            start=start,
            end=start + timedelta(days=query["days"]),
            practitioner_ids=[str(p) for p in query["provider_ids"]],
            appointment_type_id=str(type_id) if type_id else None,
        )
        return [
            (int(s.practitioner_id), s.start, s.end) for s in slots if s.practitioner_id.isdigit()
        ]

    # -- appointments ---------------------------------------------------------------------------

    def appointments(
        self, start: datetime, end: datetime, *, location_id: int | None = None, **filters: Any
    ) -> list[EHRAppointment]:
        params = [("date", f"ge{start.isoformat()}"), ("date", f"lt{end.isoformat()}")]
        params.append(("location.id", self._location(location_id)))
        if filters.get("provider_id") is not None:
            params.append(("practitioner.id", str(filters["provider_id"])))
        if filters.get("patient_id") is not None:
            params.append(("patient", str(filters["patient_id"])))
        return [
            self.as_ehr(parse_appointment(r)) for r in self.client.search("/Appointment", params)
        ]

    def appointments_listed(
        self, start: datetime, end: datetime, *, location_id: int | None = None
    ) -> tuple[list[EHRAppointment], list[str]]:
        """The location's appointments in [start, end), and a problem for each one Nextech sent
        that is not valid STU3 (kept out of the list, never half-applied)."""
        params = [("date", f"ge{start.isoformat()}"), ("date", f"lt{end.isoformat()}")]
        params.append(("location.id", self._location(location_id)))
        listed: list[EHRAppointment] = []
        problems: list[str] = []
        for raw in self.client.search("/Appointment", params):
            try:
                listed.append(self.as_ehr(parse_appointment(raw)))
            except (NextechInvalidResource, ValueError) as exc:
                problems.append(
                    f"appointment {raw.get('id') if isinstance(raw, dict) else '?'}: {exc}"
                )
        return listed, problems

    def appointment(self, appointment_id: int) -> EHRAppointment:
        return self.as_ehr(self.nextech.appointment(str(appointment_id)))

    def find_appointment(self, **key: Unpack[AppointmentKey]) -> EHRAppointment | None:
        found = self.nextech.find_appointment(
            patient_id=str(key["patient_id"]),
            practitioner_id=str(key["provider_id"]),
            start=key["start"],
        )
        return self.as_ehr(found) if found is not None else None

    def create_appointment(self, **new: Unpack[AppointmentDetails]) -> EHRAppointment:
        """Book (``appointment-schedule: book``) or, ``as_request``, hold (``hold``: the
        office's follow-up list) in Nextech, never the office's default. Raises ``NextechSlotTaken``
        (an ``EHRError``) when Nextech answers 409; safe to call again after any error."""
        patient_id, start, end = new["patient_id"], new["start"], new.get("end")
        appointment_type_id = new.get("appointment_type_id")
        if end is None:
            minutes = next(
                (t.duration_minutes for t in self._type_list() if t.id == str(appointment_type_id)),
                None,
            )
            if not minutes:
                raise EHRValidationError("an end time is needed (the type has no duration)")
            end = start + timedelta(minutes=minutes)
        if patient_id < 0:
            patient_id = self.resolved(patient_id) or patient_id
        new_patient = self._provisional(patient_id) if patient_id < 0 else None
        request = BookingRequest(
            location_id=self._location(new.get("location_id")),
            practitioner_id=str(new["provider_id"]),
            start=start,
            end=end,
            appointment_type_id=str(appointment_type_id) if appointment_type_id else None,
            purpose_ids=tuple(str(d) for d in new.get("descriptor_ids") or ()),
            mode="hold" if new.get("as_request") else "book",
            comment=new.get("note"),
            patient_id=None if new_patient is not None else self.guid_for(patient_id),
            new_patient=new_patient,
        )
        appt, _ = self.nextech.create_appointment(request)
        booked = self.as_ehr(appt)
        if new_patient is not None and booked.patient_id is not None:
            # The provisional id now names a chart, for good: whoever still holds it (a stored
            # patient row) books that chart from now on, never a second prospect.
            self.redis.set(f"{self._prefix}:resolved:{-patient_id}", booked.patient_id)
        return booked

    def resolved(self, provisional_id: int) -> int | None:
        """The chart a provisional patient became with its first booking, if it has."""
        raw = self.redis.get(f"{self._prefix}:resolved:{-provisional_id}")
        return int(raw) if raw else None

    def cancel_appointment(self, appointment_id: int) -> EHRAppointment:
        return self.as_ehr(self.nextech.request_cancel(str(appointment_id)))

    # -- patients -------------------------------------------------------------------------------

    def search_patients(self, **query: Unpack[PatientQuery]) -> list[EHRPatient]:
        params: list[tuple[str, str]] = []
        if name := query.get("name"):
            parts = name.split()
            params.append(("family", parts[-1]))
            if len(parts) > 1:
                params.append(("given", parts[0]))
        if date_of_birth := query.get("date_of_birth"):
            dob = date_of_birth.isoformat() if isinstance(date_of_birth, date) else date_of_birth
            params.append(("birthdate", dob))
        if phone_number := query.get("phone_number"):
            params.append(("phone", "".join(c for c in phone_number if c.isdigit())))
        if email := query.get("email"):
            params.append(("email", email))
        if not params:
            raise EHRValidationError("a patient search needs at least one criterion")
        return [self._patient(parse_patient(r)) for r in self.client.search("/Patient", params)]

    def create_patient(self, **new: Unpack[PatientDetails]) -> EHRPatient:
        """The patient found by name + birth date + phone, else a provisional one (see the
        module docstring) that the first booking creates in Nextech as a prospect."""
        first_name, last_name = new["first_name"], new["last_name"]
        date_of_birth, phone_number = new.get("date_of_birth"), new.get("phone_number")
        email = new.get("email")
        found = self.nextech.find_patient(
            family=last_name, given=first_name, birth_date=date_of_birth, phone=phone_number
        )
        if found is not None:
            return self._patient(found)
        if not phone_number or not email:
            raise EHRValidationError(
                "Nextech needs a phone number and an email address to create a new patient"
            )
        prospect = NewPatient(
            family=last_name,
            given=first_name,
            phone=phone_number,
            email=email,
            birth_date=date_of_birth,
        )
        material = json.dumps(
            [
                self.config.practice_id,
                last_name.lower(),
                first_name.lower(),
                str(date_of_birth),
                phone_number,
                email.lower(),
            ]
        )
        provisional = -int(sha256(material.encode()).hexdigest()[:12], 16)
        self.redis.set(
            f"{self._prefix}:provisional:{-provisional}",
            json.dumps(
                {
                    "family": prospect.family,
                    "given": prospect.given,
                    "phone": prospect.phone,
                    "email": prospect.email,
                    "birth_date": date_of_birth.isoformat() if date_of_birth else None,
                }
            ),
            ex=PROVISIONAL_SECONDS,
        )
        return EHRPatient(
            id=provisional,
            first_name=first_name,
            last_name=last_name,
            date_of_birth=date_of_birth,
            phone=_e164(phone_number),
            email=email.lower(),
        )

    def _provisional(self, patient_id: int) -> NewPatient:
        raw = self.redis.get(f"{self._prefix}:provisional:{-patient_id}")
        if not raw:
            raise EHRNotFound(f"provisional patient {patient_id} has expired; find or create again")
        data = json.loads(raw)
        birth = data.get("birth_date")
        return NewPatient(
            family=data["family"],
            given=data["given"],
            phone=data["phone"],
            email=data["email"],
            birth_date=date.fromisoformat(birth) if birth else None,
        )

    # -- the chart ------------------------------------------------------------------------------

    def _chart_guid(self, patient_id: int) -> str:
        if patient_id < 0:
            chart = self.resolved(patient_id)
            if chart is None:
                raise EHRNotFound("a provisional patient has no chart yet")
            patient_id = chart
        return self.guid_for(patient_id)

    def _document(self, raw: dict[str, Any], patient_id: int) -> EHRDocument:
        return EHRDocument(
            id=int(raw["id"]),
            patient_id=patient_id,
            title=str(raw.get("title") or ""),
            # Nextech writes a note at once: the answer to the POST is the note in the chart.
            insertion_status=InsertionStatus.COMPLETE,
        )

    def find_document(self, patient_id: int, reference: str) -> EHRDocument | None:
        found = self.nextech.find_note(self._chart_guid(patient_id), reference)
        return self._document(found, patient_id) if found is not None else None

    def document(self, patient_id: int, document_id: int) -> EHRDocument:
        for raw in self.client.search(f"/Patient/{self._chart_guid(patient_id)}/Composition"):
            if str(raw.get("id")) == str(document_id):
                return self._document(dict(raw), patient_id)
        raise EHRNotFound(f"note {document_id} not found")

    def create_document(self, patient_id: int, **new: Unpack[DocumentDetails]) -> EHRDocument:
        """The note as a Composition in the Notes tab, once per ``reference`` (kept on the
        Composition's identifier, and in the title as the port asks)."""
        title, reference = new["title"], new["reference"]
        if reference not in title:
            title = f"{title} [{reference}]"
        raw = self.nextech.write_note(
            patient_id=self._chart_guid(patient_id), key=reference, title=title, text=new["content"]
        )
        return self._document(raw, patient_id)

    # -- changes --------------------------------------------------------------------------------

    def register_webhooks(self, target_url: str, endpoint_id: int | None) -> WebhookRegistration:
        """Nextech has no webhooks (``Capability.WEBHOOKS`` is not offered): changes are found by
        the change poll (``ehr.nextech.poller``)."""
        raise EHRValidationError("Nextech has no webhooks; its changes are polled")


_ports: PerConnection[NextechPort] = PerConnection()


def port_for_config(config: NextechConfig, key: int | str) -> NextechPort:
    """The process's port for a connection (rebuilt when its settings change)."""
    return _ports.get(key, config.fingerprint, lambda: NextechPort(config))


def reset_ports() -> None:
    """Close every cached port (tests)."""
    _ports.clear()
