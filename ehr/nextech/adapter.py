"""The Nextech adapter: our EHR operations over Nextech's Select API (FHIR STU3).

Reads (practitioners, locations, appointment types and purposes, free slots), the patient found
before created, the booking with its lost-answer resolution, the cancellation request, the note
written once, and change detection by ``_lastUpdated`` (Nextech has no webhooks).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from .client import NextechClient, NxResponse
from .errors import NextechSlotTaken
from .resources import (
    BookingRequest,
    ChangeBatch,
    NewPatient,
    NxAppointment,
    NxCode,
    NxLocation,
    NxPatient,
    NxPractitioner,
    NxSlot,
    build_appointment,
    build_composition,
    build_status_update,
    digits,
    note_identifier,
    parse_appointment,
    parse_code,
    parse_location,
    parse_patient,
    parse_practitioner,
    parse_slot,
)

log = logging.getLogger("ehr.nextech.adapter")

MAX_SLOT_DAYS = 60  # Nextech refuses a longer /Slot window


def _when(value: datetime) -> str:
    """A search date-time; the ``+`` of an offset is encoded by httpx as Nextech asks."""
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _same_name(a: str, b: str) -> bool:
    return a.strip().casefold() == b.strip().casefold()


class NextechAdapter:
    def __init__(self, client: NextechClient) -> None:
        self.client = client

    # -- practice set-up ------------------------------------------------------------------------

    def practitioners(self) -> list[NxPractitioner]:
        return [parse_practitioner(r) for r in self.client.search("/Practitioner")]

    def practitioner(self, practitioner_id: str) -> NxPractitioner:
        return parse_practitioner(
            self.client.request("GET", f"/Practitioner/{practitioner_id}").body
        )

    def locations(self) -> list[NxLocation]:
        return [parse_location(r) for r in self.client.search("/Location")]

    def appointment_types(self) -> list[NxCode]:
        return [parse_code(r, "appointment-type") for r in self.client.search("/appointment-type")]

    def appointment_purposes(self) -> list[NxCode]:
        return [
            parse_code(r, "appointment-purpose") for r in self.client.search("/appointment-purpose")
        ]

    # -- availability ---------------------------------------------------------------------------

    def slots(
        self,
        *,
        location_id: str,
        start: datetime,
        end: datetime,
        practitioner_ids: Iterable[str] = (),
        appointment_type_id: str | None = None,
        slot_minutes: int | None = None,
    ) -> list[NxSlot]:
        """Free slots in [start, end), asked in windows of at most 60 days (Nextech's limit)."""
        out: list[NxSlot] = []
        cursor = start
        pracs = list(practitioner_ids)
        while cursor < end:
            upto = min(end, cursor + timedelta(days=MAX_SLOT_DAYS))
            params = [
                ("start", f"ge{_when(cursor)}"),
                ("start", f"lt{_when(upto)}"),
                ("schedule.actor", f"location/{location_id}"),
            ]
            if pracs:
                params.append(("schedule.actor", ",".join(f"practitioner/{p}" for p in pracs)))
            if appointment_type_id:
                params.append(("appointment-type", f"appointment-type/{appointment_type_id}"))
            if slot_minutes:
                params.append(("slot-length", str(slot_minutes)))
            out += [parse_slot(r) for r in self.client.search("/Slot", params)]
            cursor = upto
        return out

    def slot_is_free(self, request: BookingRequest) -> bool:
        """The live re-check before a booking: is exactly this time still offered?"""
        minutes = int((request.end - request.start).total_seconds() // 60)
        found = self.slots(
            location_id=request.location_id,
            start=request.start,
            end=request.start + timedelta(seconds=1),
            practitioner_ids=[request.practitioner_id],
            appointment_type_id=request.appointment_type_id,
            slot_minutes=minutes,
        )
        return any(s.start == request.start and s.end >= request.end for s in found)

    # -- patients -------------------------------------------------------------------------------

    def find_patient(
        self, *, family: str, given: str, birth_date: date | None, phone: str | None
    ) -> NxPatient | None:
        """The one patient with this name, birth date and phone, or None.

        Nextech's name search matches prefixes, so the answer is checked exactly here; a chart
        (a real patient) is preferred over a prospect when both match.
        """
        params = [("family", family), ("given", given)]
        if birth_date is not None:
            params.append(("birthdate", birth_date.isoformat()))
        if phone:
            params.append(("phone", digits(phone)))
        want_phone = digits(phone)[-10:] if phone else None
        matches = []
        for raw in self.client.search("/Patient", params):
            patient = parse_patient(raw)
            if not _same_name(patient.family, family):
                continue
            if not any(_same_name(g, given) for g in patient.given[:1]):
                continue
            if birth_date is not None and patient.birth_date != birth_date:
                continue
            if want_phone and not any(digits(p)[-10:] == want_phone for p in patient.phones):
                continue
            matches.append(patient)
        matches.sort(key=lambda p: (p.prospect, p.id))
        return matches[0] if matches else None

    def find_new_patient(self, new: NewPatient) -> NxPatient | None:
        return self.find_patient(
            family=new.family, given=new.given, birth_date=new.birth_date, phone=new.phone
        )

    def patient(self, patient_id: str) -> NxPatient:
        return parse_patient(self.client.request("GET", f"/Patient/{patient_id}").body)

    # -- appointments ---------------------------------------------------------------------------

    def appointment(self, appointment_id: str) -> NxAppointment:
        return parse_appointment(self.client.request("GET", f"/Appointment/{appointment_id}").body)

    def _find_appointment_raw(
        self, *, patient_id: str, practitioner_id: str, start: datetime
    ) -> dict[str, Any] | None:
        params = [
            ("patient", patient_id),
            ("practitioner.id", practitioner_id),
            ("date", f"eq{_when(start)}"),
        ]
        for raw in self.client.search("/Appointment", params):
            appt = parse_appointment(raw)
            if appt.start == start and not appt.cancelled:
                return dict(raw)
        return None

    def find_appointment(
        self, *, patient_id: str, practitioner_id: str, start: datetime
    ) -> NxAppointment | None:
        """What a booking for this patient, practitioner and start may have made (not cancelled)."""
        raw = self._find_appointment_raw(
            patient_id=patient_id, practitioner_id=practitioner_id, start=start
        )
        return parse_appointment(raw) if raw is not None else None

    def create_appointment(self, request: BookingRequest) -> tuple[NxAppointment, str]:
        """Book (or hold) in Nextech; returns the appointment and the patient's id.

        The patient: the given id, else the one found by name + birth date + phone, else a
        contained prospect Nextech creates with the appointment. A 409 raises
        ``NextechSlotTaken`` unless the time is taken by this same booking (an earlier call that
        gave up after its write landed). When the POST's answer is lost, what it may have made is
        searched for (the prospect by its demographics, then the appointment by patient,
        practitioner and start) before the POST is tried again, so a lost answer never makes a
        second one. Calling this again after an error is therefore safe.
        """
        patient_id = request.patient_id
        if patient_id is None and request.new_patient is not None:
            found = self.find_new_patient(request.new_patient)
            patient_id = found.id if found else None
        body = build_appointment(request, patient_id=patient_id)

        def lookup() -> NxResponse | None:
            pid = patient_id
            if pid is None and request.new_patient is not None:
                prospect = self.find_new_patient(request.new_patient)
                pid = prospect.id if prospect else None
            if pid is None:
                return None  # no prospect: Nextech makes both or neither
            made = self._find_appointment_raw(
                patient_id=pid, practitioner_id=request.practitioner_id, start=request.start
            )
            return NxResponse(200, made) if made is not None else None

        try:
            answer = self.client.request("POST", "/Appointment", json=body, lookup=lookup)
        except NextechSlotTaken:
            # Taken by whom? After an earlier attempt whose answer was lost (a task retrying a
            # call that gave up), the time may be taken by this very booking.
            ours = lookup()
            if ours is None:
                raise
            answer = ours
        appt = parse_appointment(answer.body)
        if appt.patient_id is None:
            raise ValueError("Nextech booked an appointment without a patient")
        return appt, appt.patient_id

    def confirm(self, appointment_id: str) -> NxAppointment:
        """Mark a held appointment booked (``PUT`` with ``status: booked``)."""
        body = build_status_update("booked")
        return parse_appointment(
            self.client.request("PUT", f"/Appointment/{appointment_id}", json=body).body
        )

    def request_cancel(self, appointment_id: str) -> NxAppointment:
        """Nextech's cancel is a request staff act on: ``cancelled`` + request-type ``queue``.
        The answer says whether it is already cancelled or still waiting for staff."""
        body = build_status_update("cancelled", request_queue=True)
        return parse_appointment(
            self.client.request("PUT", f"/Appointment/{appointment_id}", json=body).body
        )

    # -- notes ----------------------------------------------------------------------------------

    def find_note(self, patient_id: str, key: str) -> dict[str, Any] | None:
        for raw in self.client.search(f"/Patient/{patient_id}/Composition"):
            if note_identifier(raw) == key:
                return dict(raw)
        return None

    def write_note(
        self,
        *,
        patient_id: str,
        key: str,
        title: str,
        text: str,
        author: str = "Hello AI receptionist",
        category: str = "Phone call",
        priority: str = "normal",
        when: datetime | None = None,
    ) -> dict[str, Any]:
        """The call's note in the patient's Notes tab, once: ``key`` (ours, on the Composition's
        identifier) is looked for before writing and before any retry of a lost answer."""
        existing = self.find_note(patient_id, key)
        if existing is not None:
            return existing
        body = build_composition(
            patient_id=patient_id,
            key=key,
            title=title,
            text=text,
            when=when or datetime.now(UTC),
            author=author,
            category=category,
            priority=priority,
        )

        def lookup() -> NxResponse | None:
            found = self.find_note(patient_id, key)
            return NxResponse(200, found) if found is not None else None

        answer = self.client.request(
            "POST", f"/Patient/{patient_id}/Composition", json=body, lookup=lookup
        )
        return dict(answer.body or {})

    # -- change detection -----------------------------------------------------------------------

    def changes_since(
        self,
        *,
        location_ids: Iterable[str],
        cursor: datetime | None,
        seen_at_cursor: frozenset[str] = frozenset(),
        initial_lookback: timedelta = timedelta(minutes=5),
    ) -> ChangeBatch:
        """Appointments changed at or after ``cursor`` at these locations.

        Asked with ``ge`` (not ``gt``) so a change stamped in the same instant as the last one we
        saw is not missed; those already seen at the cursor (``seen_at_cursor``: ids) are
        dropped. The batch's cursor is the newest ``lastUpdated`` seen, with the ids seen at it.
        """
        since = cursor or datetime.now(UTC) - initial_lookback
        params = [("_lastUpdated", f"ge{_when(since)}")]
        locs = list(location_ids)
        if locs:
            params.append(("location.id", ",".join(locs)))
        changed: list[NxAppointment] = []
        for raw in self.client.search("/Appointment", params):
            appt = parse_appointment(raw)
            if cursor is not None and appt.last_updated == cursor and appt.id in seen_at_cursor:
                continue
            changed.append(appt)
        newest = max((a.last_updated for a in changed if a.last_updated), default=None)
        if newest is None:
            return ChangeBatch([], cursor, seen_at_cursor)
        at_newest = frozenset(a.id for a in changed if a.last_updated == newest)
        if newest == cursor:
            at_newest |= seen_at_cursor
        return ChangeBatch(changed, newest, at_newest)
