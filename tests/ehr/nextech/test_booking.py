"""The booking pipeline (booking.services.process_booking, through ehr.registry.port_for) books
a new caller into Nextech: found-or-provisional patient, live re-check, POST, confirmed."""

from __future__ import annotations

from datetime import timedelta

import pytest

from booking.services import process_booking
from core.tenancy import cross_tenant, tenant_context
from ehr.models import AppointmentTypeLink
from ehr.nextech.port import reset_ports
from scheduling.models import BookingStatus, Patient
from tests.factories import LocationFactory, PracticeFactory, sign_baa
from tests.scheduling.factories import (
    AppointmentTypeFactory,
    BookingFactory,
    OperatoryFactory,
    ProviderFactory,
    ReleasedHoldFactory,
)

from .conftest import NextechWorld, connect, local, next_weekday


@pytest.mark.django_db
def test_a_booking_for_a_new_caller_is_confirmed_in_nextech(nextech: NextechWorld) -> None:
    practice = PracticeFactory(timezone="America/Chicago")
    sign_baa(practice)
    location = LocationFactory(practice=practice, ehr_id=1)
    provider = ProviderFactory(practice=practice, ehr_id=9323)
    glaucoma = AppointmentTypeFactory(practice=practice, minutes=30)
    # Holds and bookings need a room of ours (room capabilities are our layer); Nextech has no
    # operatories, so its EHR id is never sent.
    room = OperatoryFactory(practice=practice, location=location, ehr_id=1)
    conn = connect(nextech, practice, location)
    with cross_tenant("test data setup"):
        AppointmentTypeLink.objects.create(
            practice=practice, connection=conn, appointment_type=glaucoma, ehr_id=32
        )
    start = local(next_weekday(1), "10:30")
    hold = ReleasedHoldFactory(
        practice=practice,
        appointment_type=glaucoma,
        provider=provider,
        operatory=room,
        location=location,
        start=start,
        end=start + timedelta(minutes=30),
    )
    booking = BookingFactory(
        practice=practice,
        appointment_type=glaucoma,
        provider=provider,
        operatory=room,
        location=location,
        start=start,
        end=start + timedelta(minutes=30),
        hold=hold,
        demographics={
            "first_name": "Jane",
            "last_name": "Smith",
            "date_of_birth": "1968-02-04",
            "phone": "+13465553682",
            "email": "jane@example.com",
        },
        reason="pressure check",
    )
    try:
        outcome = process_booking(booking.pk, practice.pk)
        with tenant_context(practice.pk):
            booking.refresh_from_db()
        assert booking.status == BookingStatus.CONFIRMED, (outcome, booking.failure_reason)
        made = nextech.appointments()
        assert [a["id"] for a in made] == [str(booking.ehr_appointment_id)]
        assert made[0]["comment"] == "pressure check"
        assert len([p for p in nextech.patients() if p["name"][0]["family"] == "Smith"]) == 1
        # The local patient now carries the chart number the booking created, not the
        # provisional id it was booked with.
        with tenant_context(practice.pk):
            patient = Patient.objects.get(pk=booking.patient_id)
        chart = next(
            i["value"]
            for p in nextech.patients()
            if p["name"][0]["family"] == "Smith"
            for i in p["identifier"]
            if i["use"] == "usual"
        )
        assert patient.ehr_id == int(chart)
    finally:
        reset_ports()
