"""The front desk's Requests page: bookings of request-mode types waiting for staff (masked, one
access event per page, constant queries), approved into the EHR pipeline or declined with the
slot freed; a request past its deadline is declined, not approved; another practice's request
is a 404; on a booking's page a request shows Approve and Decline, never Move."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Role
from booking import services as bookings
from core.tenancy import cross_tenant, tenant_context
from scheduling.models import Booking, BookingStatus, Hold, HoldStatus, OutboxMessage
from tests.booking import test_frontdesk as frontdesk
from tests.booking.test_frontdesk import Desk, phi_reads, staff_client
from tests.factories import sign_baa

pytestmark = pytest.mark.django_db
BASE = "/p/alpha/bookings"
# The front desk pages' fixtures: the practice "alpha" with a BAA, its desk, a front desk user.
practice, desk, front_desk = frontdesk.practice, frontdesk.desk, frontdesk.front_desk


def request(d: Desk, days: int = 1, hour: int = 10, expires_in_hours: float = 24, **kw) -> Booking:
    return d.booking(
        d.at(days, hour),
        BookingStatus.REQUESTED,
        request_expires_at=timezone.now() + timedelta(hours=expires_in_hours),
        **kw,
    )


def refreshed(d: Desk, booking: Booking) -> Booking:
    with tenant_context(d.practice):
        return Booking.objects.select_related("hold").get(pk=booking.pk)


def test_open_requests_are_listed_masked_soonest_deadline_first_with_one_access_event(
    desk, front_desk
):
    later = request(desk, 2, expires_in_hours=30, first="Bo", last="Chen")
    sooner = request(desk, 1, expires_in_hours=3)
    desk.booking(desk.at(3))  # a confirmed booking is no request
    page = front_desk.get(f"{BASE}/requests/").content.decode()
    assert page.index(f'id="booking-{sooner.pk}"') < page.index(f'id="booking-{later.pk}"')
    assert page.count('<tr id="booking-') == 2
    assert "A. L." in page and "B. C." in page and "Lopez" not in page
    assert "Dr. Patel" in page and "Cleaning" in page
    assert "in 2\xa0hours" in page and "in 1\xa0day" in page  # when each expires
    assert 'id="request-count"' in page and ">2</span>" in page
    assert page.count(">Approve</button>") == 2 and 'name="csrfmiddlewaretoken"' in page
    [event] = phi_reads()
    assert sorted(event.object_ids) == sorted([str(sooner.pk), str(later.pk)])
    assert event.reason == "front desk: booking requests (patient initials)"
    # The other front desk pages link it, with the count.
    other = front_desk.get(f"{BASE}/attention/").content.decode()
    assert f'href="{BASE}/requests/"' in other and 'id="request-count"' in other


def test_the_list_queries_do_not_grow_with_rows(desk, front_desk, django_assert_num_queries):
    for i in range(2):
        request(desk, 1, 8 + i)
    front_desk.get(f"{BASE}/requests/")  # warm the per-process key cache
    with CaptureQueriesContext(connection) as few:
        assert front_desk.get(f"{BASE}/requests/").status_code == 200
    for i in range(12):
        request(desk, 2 + i // 8, 8 + i % 8)
    with django_assert_num_queries(len(few.captured_queries)):
        page = front_desk.get(f"{BASE}/requests/").content.decode()
    assert page.count('<tr id="booking-') == 14


def test_approving_sends_it_down_the_booking_pipeline(desk, front_desk):
    waiting = request(desk)
    done = front_desk.post(f"{BASE}/{waiting.pk}/approve/", follow=True)
    assert done.redirect_chain[-1][0] == f"{BASE}/requests/"
    assert "Approved: it is being booked into the EHR" in done.content.decode()
    assert "No requests waiting" in done.content.decode()
    row = refreshed(desk, waiting)
    assert (row.status, row.pending_reason, row.request_expires_at) == ("pending", "queued", None)
    assert row.hold.status == HoldStatus.BOOKED
    with tenant_context(desk.practice):
        [message] = OutboxMessage.objects.filter(booking=waiting)
    assert message.kind == bookings.OUTBOX_PROCESS
    again = front_desk.post(f"{BASE}/{waiting.pk}/approve/", follow=True).content.decode()
    assert "no longer waiting (it is pending now): nothing was changed" in again
    with tenant_context(desk.practice):
        assert OutboxMessage.objects.filter(booking=waiting).count() == 1


def test_declining_frees_the_time_and_records_who_and_why(desk, client, practice):
    c, user = staff_client(client, practice)
    waiting = request(desk)
    done = c.post(f"{BASE}/{waiting.pk}/decline/", {"note": "Caller prefers Monday"}, follow=True)
    assert "Declined: nothing was sent to the EHR and the time is free again" in (
        done.content.decode()
    )
    row = refreshed(desk, waiting)
    assert (row.status, row.resolved_by, row.resolution_note) == (
        BookingStatus.DECLINED,
        user,
        "Caller prefers Monday",
    )
    assert row.hold.status == HoldStatus.RELEASED
    with tenant_context(practice):
        assert not OutboxMessage.objects.filter(booking=waiting).exists()
    # The time can be claimed again (a claiming hold over it would be refused otherwise).
    with tenant_context(practice):
        again = Hold.objects.create(
            practice=practice,
            appointment_type=desk.type,
            provider=desk.provider,
            operatory=desk.operatory,
            location=desk.location,
            start=waiting.start,
            end=waiting.end,
            expires_at=timezone.now() + timedelta(minutes=5),
        )
    assert again.status == HoldStatus.ACTIVE
    blank = request(desk, 2)
    c.post(f"{BASE}/{blank.pk}/decline/", {"note": "  "})
    assert refreshed(desk, blank).resolution_note == "Declined by the front desk."


def test_a_request_past_its_deadline_is_declined_not_approved(desk, front_desk):
    late = request(desk, expires_in_hours=-1)
    page = front_desk.post(f"{BASE}/{late.pk}/approve/", follow=True).content.decode()
    assert "not approved in time: it has been declined and its time freed" in page
    row = refreshed(desk, late)
    assert row.status == BookingStatus.DECLINED and row.hold.status == HoldStatus.RELEASED
    with tenant_context(desk.practice):
        assert not OutboxMessage.objects.filter(booking=late).exists()


def test_a_request_on_the_ehrs_follow_up_list_is_not_ours_to_approve(desk, front_desk):
    held = request(desk, ehr_appointment_id=4321)
    assert f'id="booking-{held.pk}"' not in front_desk.get(f"{BASE}/requests/").content.decode()
    page = front_desk.post(f"{BASE}/{held.pk}/approve/", follow=True).content.decode()
    assert "follow-up list: confirm or decline it in the EHR" in page
    assert refreshed(desk, held).status == BookingStatus.REQUESTED
    detail = front_desk.get(f"{BASE}/{held.pk}/").content.decode()
    assert "On the EHR's follow-up list" in detail and ">Approve</button>" not in detail


def test_approving_needs_a_baa_in_force(practice, front_desk):
    d = Desk(practice)
    waiting = request(d)
    page = front_desk.post(f"{BASE}/{waiting.pk}/approve/", follow=True).content.decode()
    assert "No executed BAA is in force" in page
    assert refreshed(d, waiting).status == BookingStatus.REQUESTED


def test_another_practices_request_is_404_and_changes_nothing(desk, front_desk, other_practice):
    sign_baa(other_practice)
    theirs = request(Desk(other_practice))
    assert front_desk.post(f"{BASE}/{theirs.pk}/approve/").status_code == 404
    assert front_desk.post(f"{BASE}/{theirs.pk}/decline/", {"note": "x"}).status_code == 404
    with cross_tenant("test: read the other practice's booking"):
        assert Booking.objects.get(pk=theirs.pk).status == BookingStatus.REQUESTED
    assert f'id="booking-{theirs.pk}"' not in front_desk.get(f"{BASE}/requests/").content.decode()


@pytest.mark.parametrize(
    "role,allowed",
    [(Role.FRONT_DESK, True), (Role.PRACTICE_MANAGER, True), (Role.CLINICIAN, False)],
)
def test_roles_and_the_nav_link(desk, client, practice, role, allowed):
    c, _ = staff_client(client, practice, role)
    waiting = request(desk)
    assert c.get(f"{BASE}/requests/").status_code == (200 if allowed else 403)
    assert c.post(f"{BASE}/{waiting.pk}/approve/").status_code == (302 if allowed else 403)
    nav = c.get("/p/alpha/locations/").content.decode()
    assert (f'href="{BASE}/requests/"' in nav) is allowed


def test_approve_and_decline_need_a_post_with_a_csrf_token(desk, front_desk):
    waiting = request(desk)
    assert front_desk.get(f"{BASE}/{waiting.pk}/approve/").status_code == 405
    strict = Client(enforce_csrf_checks=True)
    strict.cookies = front_desk.cookies
    assert strict.post(f"{BASE}/{waiting.pk}/approve/").status_code == 403
    assert strict.post(f"{BASE}/{waiting.pk}/decline/").status_code == 403
    assert refreshed(desk, waiting).status == BookingStatus.REQUESTED


def test_a_requests_page_shows_approve_and_decline_and_refuses_a_move(desk, front_desk):
    waiting = request(desk)
    page = front_desk.get(f"{BASE}/{waiting.pk}/").content.decode()
    assert 'id="booking-request"' in page and ">Approve</button>" in page
    assert 'id="move-booking"' not in page
    assert 'name="from" value="detail"' in page
    moved = front_desk.get(f"{BASE}/{waiting.pk}/move/", follow=True).content.decode()
    assert "still a request: approve or decline it before moving it" in moved
    # The service refuses it too, whoever calls it.
    with tenant_context(desk.practice):
        hold = Hold.objects.create(
            practice=desk.practice,
            appointment_type=desk.type,
            provider=desk.provider,
            operatory=desk.operatory,
            location=desk.location,
            start=desk.at(5),
            end=desk.at(5) + timedelta(minutes=30),
            expires_at=timezone.now() + timedelta(minutes=5),
        )
        with pytest.raises(bookings.MoveRefused, match="still a request"):
            bookings.reschedule_booking(waiting, hold)
    # Approved from its page, it comes back to its page, no longer a request.
    done = front_desk.post(f"{BASE}/{waiting.pk}/approve/", {"from": "detail"}, follow=True)
    assert done.redirect_chain[-1][0] == f"{BASE}/{waiting.pk}/"
    assert 'id="booking-request"' not in done.content.decode()


def test_the_bookings_list_says_a_request_waits_and_a_declined_one_was_declined(desk, front_desk):
    waiting = request(desk)
    declined = desk.booking(desk.at(2), BookingStatus.DECLINED, resolution_note="Not in time.")
    page = front_desk.get(f"{BASE}/").content.decode()
    cell = page.split(f'id="booking-status-{waiting.pk}"', 1)[1].split("</td>", 1)[0]
    assert "Requested" in cell and f"{BASE}/requests/#booking-{waiting.pk}" in cell
    assert "approve or decline" in cell
    cell = page.split(f'id="booking-status-{declined.pk}"', 1)[1].split("</td>", 1)[0]
    assert "Declined" in cell and "resolved" not in cell


def test_a_read_only_support_session_sees_no_initials_and_cannot_approve(desk, client):
    from accounts.models import VendorRole
    from tests.conftest import verify_second_factor
    from tests.factories import UserFactory

    waiting = request(desk)
    support = UserFactory(
        totp=True, username="support@hello.test", vendor_role=VendorRole.SUPPORT, is_staff=True
    )
    verify_second_factor(client, support)
    started = client.post(
        "/support/impersonate/",
        {"practice": "alpha", "reason": "request help", "ticket": "SUP-20", "minutes": 30},
    )
    assert started.status_code == 302
    page = client.get(f"{BASE}/requests/").content.decode()
    assert f'id="booking-{waiting.pk}"' in page and "A. L." not in page
    assert phi_reads() == []  # shown no initials, so nothing read
    assert client.post(f"{BASE}/{waiting.pk}/approve/").status_code == 403
    assert client.post(f"{BASE}/{waiting.pk}/decline/").status_code == 403
    assert refreshed(desk, waiting).status == BookingStatus.REQUESTED
