"""A Nextech location in native mode: its free time is Nextech's own ``GET /Slot``, kept in
``scheduling.NativeSlot`` by the change poll, with our layer (rooms, types, holds) on top."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from time import monotonic as time_monotonic
from typing import Any

import pytest

from accounts.models import Location
from booking.failures import FailureCategory, category_of
from booking.services import process_booking
from core.tenancy import tenant_context
from ehr.native_slots import NEAR_DAYS, refresh_for_poll, refresh_native_slots
from ehr.nextech.poller import poll_changes
from ehr.services import sync_connection
from scheduling.models import (
    BookingStatus,
    NativeSlot,
    WorkingHoursMode,
)
from tests.scheduling.factories import (
    BookingFactory,
    ReleasedHoldFactory,
)

from .conftest import (
    TZ,
    Native,
    NextechWorld,
    build_native,
    forget_native,
    local,
    next_weekday,
    staff_block,
    staff_book,
    staff_cancel,
)


@pytest.fixture
def native(nextech: NextechWorld, db: None) -> Iterator[Native]:
    world = build_native(nextech)
    yield world
    forget_native(world)


HALF_HOURS = [f"{h:02d}:{m:02d}" for h in range(8, 16) for m in (0, 30)]


def test_nothing_is_offered_before_the_ehrs_slots_are_read_then_exactly_them(
    native: Native, nextech: NextechWorld
) -> None:
    day = next_weekday(1)
    assert native.offered(day) == []  # native mode: no EHR slots, no free time
    report = refresh_native_slots(native.conn, days=NEAR_DAYS)
    assert report.requests == 1 and report.stored == native.stored() > 0
    assert native.offered(day) == HALF_HOURS
    # A refresh replaces the window: the same slots again, not twice as many.
    assert refresh_native_slots(native.conn, days=NEAR_DAYS).stored == report.stored
    assert native.stored() == report.stored
    # Both modes exist: the same location in manual mode offers its working hours.
    with tenant_context(native.practice):
        Location.objects.filter(pk=native.location.pk).update(
            working_hours_mode=WorkingHoursMode.MANUAL
        )
    assert native.offered(day) == HALF_HOURS


def test_a_staff_booking_and_a_block_in_nextech_leave_availability_after_the_next_poll(
    native: Native, nextech: NextechWorld
) -> None:
    day = next_weekday(2)
    poll_changes(native.conn, native.port)
    assert native.offered(day) == HALF_HOURS
    booked = staff_book(nextech, local(day, "10:00"))
    # A block is no appointment: no _lastUpdated search shows it, only Nextech's own slots do.
    staff_block(nextech, local(day, "13:00"), local(day, "14:00"))
    report = poll_changes(native.conn, native.port)
    assert report.changed == 1 and report.slots > 0
    gone = {"10:00", "13:00", "13:30"}
    assert native.offered(day) == [t for t in HALF_HOURS if t not in gone]
    staff_cancel(nextech, booked)
    poll_changes(native.conn, native.port)
    assert native.offered(day) == [t for t in HALF_HOURS if t not in {"13:00", "13:30"}]


def test_the_far_days_are_read_less_often_than_the_near_ones(
    native: Native, nextech: NextechWorld
) -> None:
    first = refresh_for_poll(native.conn)
    assert [(r.start - first[0].start).days for r in first] == [0, NEAR_DAYS]
    assert [r.days for r in first] == [NEAR_DAYS, 31 - NEAR_DAYS]  # the type's 30-day horizon
    both = nextech.stats()["requests"]["GET /Slot"]  # pages of the near and the far read
    assert len(refresh_for_poll(native.conn)) == 1  # the far days are not due again yet
    near = nextech.stats()["requests"]["GET /Slot"] - both
    assert 0 < near < both


def test_a_failed_slot_read_keeps_the_window_it_had(native: Native, nextech: NextechWorld) -> None:
    stored = refresh_native_slots(native.conn, days=NEAR_DAYS).stored
    staff_block(nextech, local(next_weekday(1), "08:00"), local(next_weekday(1), "12:00"))
    nextech.faults(error_share=1.0, only_endpoints=["GET /Slot"])
    with pytest.raises(Exception):  # noqa: B017 - whichever EHR error, nothing stored
        refresh_native_slots(native.conn, days=NEAR_DAYS)
    assert native.stored() == stored
    assert native.offered(next_weekday(1)) == HALF_HOURS


def test_syncing_a_native_location_reads_the_whole_horizon(native: Native) -> None:
    report = sync_connection(native.conn)
    assert report.fetched["native_slots"] == native.stored() > 0
    with tenant_context(native.practice):
        last = NativeSlot.objects.order_by("-start").first()
    assert last is not None
    assert (last.start.date() - date.today()).days >= 28  # the type's 30-day horizon, not 14


def _booking_at(native: Native, start: datetime, last_name: str = "Smith") -> int:
    """A booking of the glaucoma check at `start` for a caller new to Nextech. A booking that
    lands makes the caller a chart, remembered in Redis past the sandbox's reset: such a test
    names its caller afresh (`last_name`)."""
    slot = {
        "practice": native.practice,
        "appointment_type": native.glaucoma,
        "provider": native.walters,
        "operatory": native.room,
        "location": native.location,
        "start": start,
        "end": start + timedelta(minutes=30),
    }
    booking = BookingFactory(
        **slot,
        hold=ReleasedHoldFactory(**slot),
        demographics={
            "first_name": "Jane",
            "last_name": last_name,
            "date_of_birth": "1968-02-04",
            "phone": "+13465553682",
            "email": "jane@example.com",
        },
    )
    return int(booking.pk)


def _failed(native: Native, booking_id: int) -> FailureCategory:
    with tenant_context(native.practice):
        from scheduling.models import Booking

        booking = Booking.objects.get(pk=booking_id)
    assert booking.status == BookingStatus.FAILED
    assert booking.ehr_appointment_id is None
    return category_of(booking.failure_reason)


def test_a_block_staff_add_in_nextech_fails_the_booking_before_any_post(
    native: Native, nextech: NextechWorld
) -> None:
    day = next_weekday(3)
    refresh_native_slots(native.conn, days=NEAR_DAYS)
    assert "11:00" in native.offered(day)
    # Staff block the held time in Nextech: no appointment for an appointment read to see, only
    # Nextech's own slots show it, so the re-check asks them before posting.
    staff_block(nextech, local(day, "11:00"), local(day, "11:30"))
    before = nextech.stats()["requests"]
    booking_id = _booking_at(native, local(day, "11:00"))
    process_booking(booking_id, native.practice.pk)
    assert _failed(native, booking_id) is FailureCategory.SLOT_TAKEN
    seen = nextech.stats()["requests"]
    assert seen["GET /Slot"] - before.get("GET /Slot", 0) == 1  # one day, one provider, one type
    assert "POST /Appointment" not in seen
    assert nextech.appointments() == []
    assert "11:00" not in native.offered(day)
    assert "10:30" in native.offered(day) and "11:30" in native.offered(day)


def test_a_time_still_offered_is_booked_after_one_slot_read(
    native: Native, nextech: NextechWorld
) -> None:
    day = next_weekday(3)
    refresh_native_slots(native.conn, days=NEAR_DAYS)
    before = nextech.stats()["requests"].get("GET /Slot", 0)
    booking_id = _booking_at(native, local(day, "14:00"), last_name=f"Smith-{uuid.uuid4().hex[:6]}")
    process_booking(booking_id, native.practice.pk)
    with tenant_context(native.practice):
        from scheduling.models import Booking

        booking = Booking.objects.get(pk=booking_id)
    assert booking.status != BookingStatus.FAILED and booking.ehr_appointment_id is not None
    assert len(nextech.appointments()) == 1
    assert nextech.stats()["requests"]["GET /Slot"] - before == 1


def test_a_409_from_nextech_fails_the_booking_as_slot_taken_and_stops_offering_the_time(
    native: Native, nextech: NextechWorld
) -> None:
    day = next_weekday(3)
    refresh_native_slots(native.conn, days=NEAR_DAYS)
    assert "11:00" in native.offered(day)
    # Staff book the time after our re-check, while our POST is on its way (stalled in the
    # sandbox's gateway): Nextech answers the POST 409.
    nextech.faults(stall_count=1, stall_seconds=3.0, only_endpoints=["POST /Appointment"])

    def staff_book_once_the_post_is_stalled() -> None:
        deadline = time_monotonic() + 20
        while not nextech.stats().get("faults_injected", {}).get("stall"):
            assert time_monotonic() < deadline, "our POST never reached the sandbox"
            threading.Event().wait(0.02)
        staff_book(nextech, local(day, "11:00"))

    staff = threading.Thread(target=staff_book_once_the_post_is_stalled)
    staff.start()
    booking_id = _booking_at(native, local(day, "11:00"))
    process_booking(booking_id, native.practice.pk)
    staff.join(timeout=20)
    assert _failed(native, booking_id) is FailureCategory.SLOT_TAKEN
    assert nextech.stats()["responses"]["409"] == 1  # the POST's answer
    assert "11:00" not in native.offered(day)
    assert len(nextech.appointments()) == 1  # only the staff's


def test_a_staff_booking_of_the_same_time_fails_ours_as_slot_taken(
    native: Native, nextech: NextechWorld
) -> None:
    day = next_weekday(4)
    refresh_native_slots(native.conn, days=NEAR_DAYS)
    assert "09:30" in native.offered(day)
    staff_book(nextech, local(day, "09:30"))
    booking_id = _booking_at(native, local(day, "09:30"))
    process_booking(booking_id, native.practice.pk)
    assert _failed(native, booking_id) is FailureCategory.SLOT_TAKEN
    assert "09:30" not in native.offered(day)
    assert len(nextech.appointments()) == 1  # only the staff's


@pytest.mark.worker
def test_end_to_end_a_staff_booking_in_nextech_leaves_the_api_within_ten_seconds(
    nextech: NextechWorld, transactional_db: None, client: Any, settings: Any
) -> None:
    """The deployed path: the beat's poll fan-out, a real worker running the poll, the API."""
    from ehr.native_slots import refresh_horizon
    from ehr.tasks import poll_nextech_all
    from tests.receptionist_api.factories import api_client, token_for
    from tests.workers import celery_worker

    native = build_native(nextech)
    queue = f"test-native-{uuid.uuid4().hex[:8]}"
    settings.INTEGRATIONS_QUEUES = {"bookings": queue, "sync": queue}
    day = next_weekday(1)
    try:
        refresh_horizon(native.conn)  # what connecting the location does
        with tenant_context(native.practice):
            raw, _ = token_for(api_client(native.practice)[0])

        def offered() -> set[str]:
            response = client.get(
                "/api/v1/availability",
                {
                    "appointment_type_id": native.glaucoma.pk,
                    "start_date": day.isoformat(),
                    "days": 1,
                },
                HTTP_AUTHORIZATION=f"Bearer {raw}",
            )
            assert response.status_code == 200
            slots = response.json()["slots"]
            return {
                datetime.fromisoformat(s["start"]).astimezone(TZ).strftime("%H:%M") for s in slots
            }

        assert "10:30" in offered()
        with celery_worker(queues=queue, extra_env={"BOOKINGS_QUEUE": queue}):
            staff_book(nextech, local(day, "10:30"))
            deadline = time_monotonic() + 10
            while "10:30" in offered():
                assert time_monotonic() < deadline, "still offered 10 s after staff booked it"
                poll_nextech_all()  # the beat's tick
                threading.Event().wait(0.5)  # the beat's period (the test's NEXTECH_POLL)
        assert offered() == set(HALF_HOURS) - {"10:30"}
    finally:
        forget_native(native)
