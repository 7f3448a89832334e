"""Builders for the calls tests: a practice's little schedule, a booking in a given state, a
call with a transcript. Rows are created under `cross_tenant` (test set-up), as in
tests/factories.py; the code under test never gets that for free."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from accounts.models import Location, Practice
from calls.models import Call
from core.tenancy import cross_tenant
from scheduling.models import (
    AppointmentType,
    Booking,
    BookingStatus,
    Hold,
    HoldStatus,
    Operatory,
    Patient,
    Provider,
)
from tests.factories import PracticeFactory, sign_baa

TURNS = [
    {
        "speaker": "agent",
        "text": "Hello, Alpha Dental, how can I help?",
        "at": "2026-05-04T10:00:01-07:00",
    },
    {
        "speaker": "caller",
        "text": "Hi, I need a cleaning, my gums bleed when I brush.",
        "at": "2026-05-04T10:00:06-07:00",
    },
    {
        "speaker": "agent",
        "text": "I can book you Thursday at ten.",
        "at": "2026-05-04T10:00:12-07:00",
    },
]


@dataclass
class Desk:
    practice: Practice
    location: Location
    provider: Provider
    operatory: Operatory
    cleaning: AppointmentType
    n: int = 0

    def patient(self, ehr_id: int | None = None, **kwargs: Any) -> Patient:
        values = {
            "first_name": "Ana",
            "last_name": "Lopez",
            "date_of_birth": "1985-04-12",
            "phone": "+15555550101",
            "insurance": {"carrier": "Delta Dental", "member_id": "DD-778812"},
            **kwargs,
        }
        with cross_tenant("test data setup"):
            return Patient.objects.create(
                practice=self.practice, location=self.location, ehr_id=ehr_id, **values
            )

    def booking(
        self,
        *,
        status: str = BookingStatus.CONFIRMED,
        patient: Patient | None = None,
        call_id: str | None = None,
        appointment_type: AppointmentType | None = None,
        start: datetime | None = None,
    ) -> Booking:
        self.n += 1
        start = start or (timezone.now() + timedelta(days=3, hours=self.n)).replace(
            second=0, microsecond=0
        )
        end = start + timedelta(minutes=30)
        kind = appointment_type or self.cleaning
        slot = {
            "practice": self.practice,
            "appointment_type": kind,
            "provider": self.provider,
            "operatory": self.operatory,
            "location": self.location,
            "start": start,
            "end": end,
        }
        with cross_tenant("test data setup"):
            hold = Hold.objects.create(**slot, expires_at=start, status=HoldStatus.BOOKED)
            return Booking.objects.create(
                **slot,
                hold=hold,
                status=status,
                idempotency_key=uuid.uuid4().hex,
                request_fingerprint="test",
                call_id=call_id,
                reason="cleaning; gums bleed when brushing",
                demographics=None
                if patient is not None
                else {"first_name": "Ana", "last_name": "Lopez", "date_of_birth": "1985-04-12"},
                patient=patient,
                confirmed_at=timezone.now() if status == BookingStatus.CONFIRMED else None,
            )

    def call(
        self,
        *,
        external_id: str | None = None,
        phone: str | None = "+1 (555) 555-0101",
        started_at: datetime | None = None,
        turns: list[dict[str, Any]] | None = None,
        booking: Booking | None = None,
        outcome: str = "in_progress",
    ) -> Call:
        with cross_tenant("test data setup"):
            return Call.objects.create(
                practice=self.practice,
                external_id=external_id or uuid.uuid4().hex,
                started_at=started_at or timezone.now(),
                caller_phone=phone,
                transcript=turns,
                transcript_turns=len(turns or []),
                transcript_received_at=timezone.now() if turns else None,
                booking=booking,
                outcome=outcome,
            )


def desk_for(practice: Practice, location: Location | None = None) -> Desk:
    """A provider, a room and a cleaning type at the practice (EHR ids when given a synced
    location are taken from the mirror by the caller instead)."""
    with cross_tenant("test data setup"):
        location = location or Location.objects.create(
            practice=practice, key=f"main-{uuid.uuid4().hex[:6]}", name="Main Office"
        )
        provider = Provider.objects.create(
            practice=practice, key=f"prov-{uuid.uuid4().hex[:6]}", name="Dr. Patel"
        )
        operatory = Operatory.objects.create(
            practice=practice, location=location, key=f"op-{uuid.uuid4().hex[:6]}", name="Op 1"
        )
        cleaning = AppointmentType.objects.create(
            practice=practice, key=f"clean-{uuid.uuid4().hex[:6]}", name="Cleaning", minutes=30
        )
    return Desk(practice, location, provider, operatory, cleaning)


def chicago_practice(capture_on_commit) -> Practice:
    """Alpha Dental in Chicago with a BAA in force; the on-commit work of its set-up run (with
    pytest-django's `django_capture_on_commit_callbacks`)."""
    with capture_on_commit(execute=True):
        practice = PracticeFactory(slug="alpha", name="Alpha Dental", timezone="America/Chicago")
    sign_baa(practice)
    return practice
