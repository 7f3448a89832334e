"""Moving a booking from the portal: free times of its type offered, the chosen one held and
booked like any other; the original cancelled (here and in the EHR) only once the new time is
confirmed, kept if the move fails; refused for another practice, a read-only support session,
a bad choice, or a move already under way."""

from __future__ import annotations

import re
from datetime import time

import pytest

from accounts.models import Role, VendorRole
from booking import services as bookings
from calls.booking_views import MOVE_SLOTS
from core.tenancy import cross_tenant, tenant_context
from scheduling.models import Booking, BookingStatus, Hold, HoldStatus, OutboxMessage
from tests.calls.factories import chicago_practice, desk_for
from tests.conftest import verify_second_factor
from tests.factories import PracticeFactory, UserFactory, sign_baa, staff_member
from tests.scheduling.factories import WorkingHourFactory

pytestmark = pytest.mark.django_db
EVERY_DAY = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


@pytest.fixture
def practice(db, django_capture_on_commit_callbacks):
    return chicago_practice(django_capture_on_commit_callbacks)


@pytest.fixture
def desk(practice):
    d = desk_for(practice)
    with cross_tenant("test data setup"):
        WorkingHourFactory(
            practice=practice,
            provider=d.provider,
            operatory=d.operatory,
            days=EVERY_DAY,
            begin=time(8),
            end=time(17),
            appointment_types=[d.cleaning],
        )
    return d


@pytest.fixture
def front_desk(client, practice):
    user = staff_member(practice, Role.FRONT_DESK, first_name="Kim", last_name="Front")
    verify_second_factor(client, user)
    return client


def offered(page: str) -> list[str]:
    return re.findall(r'name="slot" value="([^"]+)"', page)


def move(front_desk, booking, slot: str):
    return front_desk.post(f"/p/alpha/bookings/{booking.pk}/move/", {"slot": slot})


def test_a_move_books_the_new_time_and_cancels_the_old_once_confirmed(
    desk, front_desk, practice, django_capture_on_commit_callbacks
):
    old = desk.booking()
    with cross_tenant("test: the EHR took it"):
        Booking.objects.filter(pk=old.pk).update(ehr_appointment_id=501)
    page = front_desk.get(f"/p/alpha/bookings/{old.pk}/move/").content.decode()
    slots = offered(page)
    assert 0 < len(slots) <= MOVE_SLOTS and "Dr. Patel · Op 1" in page
    assert "America/Chicago" in page
    assert not any(s.endswith(old.start.isoformat()) for s in slots)  # its own time is taken

    response = move(front_desk, old, slots[3])
    with tenant_context(practice):
        new = Booking.objects.get(replaces=old)
    assert response.status_code == 302 and response["Location"] == f"/p/alpha/bookings/{new.pk}/"
    with tenant_context(practice):
        old.refresh_from_db()
        assert old.status == BookingStatus.CONFIRMED  # stands until the new one is confirmed
        assert new.status == BookingStatus.PENDING and new.call_id == old.call_id
        assert new.demographics == old.demographics and new.reason == old.reason
        assert [m.kind for m in OutboxMessage.objects.filter(booking=new)] == ["process_booking"]
    detail = front_desk.get(f"/p/alpha/bookings/{new.pk}/").content.decode()
    assert 'id="moved-from"' in detail and "cancelled once this time is confirmed" in detail

    with tenant_context(practice), django_capture_on_commit_callbacks(execute=False):
        assert bookings.mark_confirmed(new.pk, 777)
        old.refresh_from_db()
        assert old.status == BookingStatus.CANCELLED
        assert Hold.objects.get(pk=old.hold_id).status == HoldStatus.RELEASED
        assert OutboxMessage.objects.filter(booking=old, kind="cancel_in_ehr").exists()
    page = front_desk.get(f"/p/alpha/bookings/{old.pk}/").content.decode()
    assert f'id="moved-to-{new.pk}"' in page and "(confirmed)" in page
    assert 'id="move-booking"' not in page  # cancelled: nothing to move


def test_a_failed_move_keeps_the_original(desk, front_desk, practice):
    old = desk.booking()
    slot = offered(front_desk.get(f"/p/alpha/bookings/{old.pk}/move/").content.decode())[0]
    move(front_desk, old, slot)
    with tenant_context(practice):
        new = Booking.objects.get(replaces=old)
        assert bookings.mark_failed(new.pk, "The slot was taken in the EHR.")
        old.refresh_from_db()
        assert old.status == BookingStatus.CONFIRMED
    page = front_desk.get(f"/p/alpha/bookings/{old.pk}/").content.decode()
    assert "failed: this appointment stands" in page and 'id="move-booking"' in page


def test_bad_choices_and_a_second_move_are_refused(desk, front_desk, practice):
    old = desk.booking()
    bad = move(front_desk, old, "1|2|yesterday")
    assert bad.status_code == 400 and "Choose one of the times offered." in bad.content.decode()
    slots = offered(front_desk.get(f"/p/alpha/bookings/{old.pk}/move/").content.decode())
    move(front_desk, old, slots[0])
    again = move(front_desk, old, slots[1])
    assert again.status_code == 400 and "already being moved" in again.content.decode()
    with tenant_context(practice):
        assert Booking.objects.filter(replaces=old).count() == 1
        # The refused move's hold was given back.
        assert not Hold.objects.filter(status=HoldStatus.ACTIVE).exists()
    failed = desk.booking(status=BookingStatus.FAILED)
    refused = front_desk.post(f"/p/alpha/bookings/{failed.pk}/move/", {"slot": slots[2]})
    assert refused.status_code == 302
    with tenant_context(practice):
        assert not Booking.objects.filter(replaces=failed).exists()


def test_moves_are_this_practices_and_not_a_read_only_support_sessions(
    client, desk, front_desk, practice
):
    other = PracticeFactory(slug="beta", name="Beta")
    sign_baa(other)
    theirs = desk_for(other).booking()
    assert front_desk.get(f"/p/alpha/bookings/{theirs.pk}/move/").status_code == 404
    assert front_desk.post(f"/p/alpha/bookings/{theirs.pk}/move/", {"slot": "x"}).status_code == 404

    mine = desk.booking()
    slot = offered(front_desk.get(f"/p/alpha/bookings/{mine.pk}/move/").content.decode())[0]
    support = UserFactory(
        totp=True, username="support@hello.test", vendor_role=VendorRole.SUPPORT, is_staff=True
    )
    other_client = type(client)()
    verify_second_factor(other_client, support)
    other_client.post(
        "/support/impersonate/",
        {"practice": "alpha", "reason": "caller asks", "ticket": "SUP-1", "minutes": 30},
    )
    assert other_client.get(f"/p/alpha/bookings/{mine.pk}/move/").status_code == 200
    assert move(other_client, mine, slot).status_code == 403
    with tenant_context(practice):
        assert not Booking.objects.filter(replaces=mine).exists()
