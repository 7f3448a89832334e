"""What the voice agent is offered, the same for either EHR: the type's duration, its eligible
providers, its lead time and horizon; a live hold is not offered to anyone else."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from core.tenancy import tenant_context
from ehr.models import AppointmentTypeLink

from .conftest import HORIZON_DAYS, LA, LEAD_TIME_HOURS, World


def test_slots_honour_duration_providers_lead_time_and_horizon(world: World) -> None:
    today = timezone.now().astimezone(LA).date()
    slots = world.agent.availability(world.cleaning.pk, today, 31)
    assert slots, "nothing offered at all"
    starts = [datetime.fromisoformat(s["start"]) for s in slots]
    # The type's 30 minutes, inside the weekday hours 09:00-12:00: six starts a day.
    assert {
        datetime.fromisoformat(s["end"]) - datetime.fromisoformat(s["start"]) for s in slots
    } == {timedelta(minutes=30)}
    assert {s.astimezone(LA).strftime("%H:%M") for s in starts} == {
        "09:00",
        "09:30",
        "10:00",
        "10:30",
        "11:00",
        "11:30",
    }
    assert {s.astimezone(LA).weekday() for s in starts} <= {0, 1, 2, 3, 4}
    # Only Dr. Patel takes cleanings, though Dr. Kim works the same hours for the same types.
    assert {s["provider_id"] for s in slots} == {world.patel.pk}
    # Not inside the lead time, not past the horizon.
    now = timezone.now()
    assert min(starts) >= now + timedelta(hours=LEAD_TIME_HOURS)
    assert max(starts).astimezone(LA).date() <= today + timedelta(days=HORIZON_DAYS)
    # The exam (60 minutes, both doctors, no lead time) shows the difference is the type's.
    exams = world.agent.availability(world.exam.pk, world.day, 1)
    assert {s["provider_id"] for s in exams} == {world.patel.pk, world.kim.pk}
    assert {
        datetime.fromisoformat(s["end"]) - datetime.fromisoformat(s["start"]) for s in exams
    } == {timedelta(hours=1)}


def test_a_live_hold_is_not_offered_and_its_release_offers_it_again(world: World) -> None:
    start = world.at(10)
    assert world.offered(start)
    hold = world.agent.hold(world.slot(10), world.cleaning.pk)
    assert hold.status_code == 201, hold.text
    assert not world.offered(start)
    assert world.offered(world.at(10, 30))  # the neighbours are still there
    assert world.agent.call("DELETE", f"/holds/{hold.json()['id']}").status_code == 204
    assert world.offered(start)


@pytest.mark.parametrize("ehr_kind", ["nextech"])
def test_nextechs_own_slots_are_the_hours_availability_offers(world: World) -> None:
    """The Nextech practice's schedule templates are the file's working hours, so Nextech's
    /Slot offers what our hours do (and these tests hold if availability comes from it)."""
    from ehr.registry import port_for

    with tenant_context(world.practice):
        type_ehr_id = AppointmentTypeLink.objects.get(appointment_type=world.cleaning).ehr_id
    native = port_for(world.conn).free_slots(
        start_date=world.day,
        days=1,
        provider_ids=[world.patel.ehr_id],
        appointment_type_id=type_ehr_id,
    )
    ours = world.agent.availability(world.cleaning.pk, world.day, 1)
    assert [(start, end) for _, start, end in native] == [
        (datetime.fromisoformat(s["start"]), datetime.fromisoformat(s["end"])) for s in ours
    ]
