"""The Nextech adapter behind ``ehr.port.EHRPort``: chosen by ``port_for`` for a Nextech
connection, speaking the port's integer ids (patients as chart numbers), creating a new caller
as a prospect with the first booking, and writing the note once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import pytest

from ehr.errors import EHRValidationError
from ehr.nextech.errors import NextechSlotTaken
from ehr.nextech.port import NextechPort, reset_ports
from ehr.port import Capability, EHRPort, SlotSource
from ehr.registry import port_for
from ehr.types import InsertionStatus
from tests.factories import LocationFactory, PracticeFactory, sign_baa

from .conftest import NextechWorld, connect, local, make_config, next_weekday


@pytest.fixture
def port(nextech: NextechWorld) -> Iterator[NextechPort]:
    running = NextechPort(make_config(nextech, default_location_id="1", timezone="America/Chicago"))
    yield running
    running.close()


def test_is_an_ehr_port_with_native_slots(port: NextechPort) -> None:
    assert isinstance(port, EHRPort)
    source: SlotSource = port  # checked by mypy: the port's NATIVE_SLOTS shape
    assert callable(source.free_slots)
    assert Capability.NATIVE_SLOTS in port.capabilities
    assert Capability.WORKING_HOURS not in port.capabilities


def test_reads_in_the_ports_shapes(port: NextechPort) -> None:
    assert {p.id for p in port.providers()} == {9323, 9324, 9325}
    assert port.provider(9324).last_name == "Okafor"
    with pytest.raises(EHRValidationError, match="no webhooks"):
        port.register_webhooks("https://portal.example/hooks", None)
    minutes = {t.name: t.minutes for t in port.appointment_types()}
    assert minutes["Cataract Evaluation"] == 90
    assert {d.kind for d in port.descriptors()} == {"appointment_purpose"}
    day = next_weekday(0)
    slots = port.free_slots(start_date=day, days=1, provider_ids=[9323], appointment_type_id=31)
    # Cataract evaluations (90 min) with Walters, 08:00-16:00 every 30 minutes: 14 starts.
    assert len(slots) == 14
    assert slots[0][0] == 9323
    assert slots[0][1] == local(day, "08:00")


def test_new_caller_is_created_with_the_first_booking(
    port: NextechPort, nextech: NextechWorld
) -> None:
    details = {
        "first_name": "Jane",
        "last_name": "Smith",
        "date_of_birth": date(1968, 2, 4),
        "phone_number": "346-555-3682",
        "email": "jane@example.com",
    }
    assert port.search_patients(name="Jane Smith", date_of_birth=date(1968, 2, 4)) == []
    provisional = port.create_patient(**details)  # type: ignore[arg-type]
    assert provisional.id < 0
    assert nextech.patients()[1:] == []  # nothing in Nextech yet (only the seeded Brimley)
    start = local(next_weekday(1), "09:00")
    appt = port.create_appointment(
        patient_id=provisional.id,
        provider_id=9323,
        operatory_id=None,
        start=start,
        appointment_type_id=32,
        descriptor_ids=[202],
        note="Pressure check",
    )
    assert appt.confirmed
    assert appt.end - appt.start == timedelta(minutes=30)
    assert appt.patient_id is not None and appt.patient_id > 0
    # From now on the caller is found, by the chart number the booking returned.
    again = port.create_patient(**details)  # type: ignore[arg-type]
    assert again.id == appt.patient_id
    assert [p.id for p in port.search_patients(name="Jane Smith", date_of_birth="1968-02-04")] == [
        appt.patient_id
    ]
    assert port.find_appointment(patient_id=again.id, provider_id=9323, start=start) == appt
    # Whoever kept the provisional id books (and writes notes for) the same chart with it.
    assert port.resolved(provisional.id) == appt.patient_id
    later = port.create_appointment(
        patient_id=provisional.id,
        provider_id=9323,
        operatory_id=None,
        start=start + timedelta(days=7),
        appointment_type_id=32,
    )
    assert later.patient_id == appt.patient_id
    assert port.create_document(provisional.id, title="Call", content="x", reference="n-1").written
    assert len([p for p in nextech.patients() if p["name"][0]["family"] == "Smith"]) == 1
    # The booking flow's live re-check reads the location's calendar around the time.
    around = port.appointments(start - timedelta(hours=4), start + timedelta(hours=1))
    assert [a.id for a in around] == [appt.id]
    assert port.appointments_listed(start, start + timedelta(hours=1)) == (around, [])
    assert port.appointments(start, start + timedelta(hours=1), provider_id=9325) == []
    with pytest.raises(NextechSlotTaken):
        port.create_appointment(
            patient_id=port.create_patient(
                first_name="Other",
                last_name="Caller",
                phone_number="312-555-0199",
                email="o@example.com",
            ).id,
            provider_id=9323,
            operatory_id=None,
            start=start,
            appointment_type_id=32,
        )


def test_a_new_patient_needs_phone_and_email(port: NextechPort) -> None:
    with pytest.raises(EHRValidationError, match="email"):
        port.create_patient(first_name="No", last_name="Email", phone_number="312-555-0100")


def test_hold_is_not_confirmed_until_staff_confirm(
    port: NextechPort, nextech: NextechWorld
) -> None:
    brimley = port.search_patients(name="Henry Brimley")[0]
    appt = port.create_appointment(
        patient_id=brimley.id,
        provider_id=9323,
        operatory_id=None,
        start=local(next_weekday(2), "10:00"),
        appointment_type_id=32,
        as_request=True,
    )
    assert appt.insertion_status == InsertionStatus.HELD and appt.held and not appt.confirmed
    nextech.admin("POST", f"/_admin/practices/{nextech.practice_id}/appointments/{appt.id}/confirm")
    assert port.appointment(appt.id).confirmed
    cancel = port.cancel_appointment(appt.id)
    assert not cancel.cancelled and cancel.cancel_requested  # a request: staff act on it
    nextech.admin("POST", f"/_admin/practices/{nextech.practice_id}/cancel_requests/process")
    assert port.appointment(appt.id).cancelled


def test_document_is_a_note_written_once(port: NextechPort, nextech: NextechWorld) -> None:
    brimley = port.search_patients(name="Henry Brimley")[0]
    first = port.create_document(
        brimley.id, title="Call", content="Asked about drops.", reference="c-1"
    )
    second = port.create_document(
        brimley.id, title="Call", content="Asked about drops.", reference="c-1"
    )
    assert first.id == second.id and first.written
    assert "c-1" in first.title
    assert port.find_document(brimley.id, "c-1") == first
    assert port.document(brimley.id, first.id) == first
    assert port.find_document(brimley.id, "c-2") is None


@pytest.mark.django_db
def test_port_for_chooses_the_nextech_adapter(nextech: NextechWorld) -> None:
    practice = PracticeFactory(timezone="America/Chicago")
    sign_baa(practice)
    location = LocationFactory(practice=practice)
    conn = connect(nextech, practice, location)
    try:
        chosen = port_for(conn)
        assert isinstance(chosen, NextechPort)
        assert chosen.config.timezone == "America/Chicago"
        assert port_for(conn) is chosen
        assert len(chosen.free_slots(start_date=next_weekday(0), days=1, provider_ids=[9325])) > 0
    finally:
        reset_ports()
