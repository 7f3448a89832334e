"""A booking's page for the front desk (masked patient revealed on a reason, times in the
practice's zone, EHR id and status history, the call, its transcript link and the note),
cancelling it through the EHR with a confirmation step, and a call's outcome following its
booking whenever the booking settles."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import Role, VendorRole
from booking import services as bookings
from calls import services
from calls.models import Call, CallOutcome, EncounterNote, NoteStatus
from compliance.models import AccessEvent
from core.tenancy import cross_tenant, tenant_context
from scheduling.models import Booking, BookingStatus, Hold, HoldStatus, OutboxMessage
from tests.calls.factories import TURNS, chicago_practice, desk_for
from tests.conftest import verify_second_factor
from tests.factories import MembershipFactory, PracticeFactory, UserFactory, sign_baa, staff_member

pytestmark = pytest.mark.django_db


@pytest.fixture
def practice(db, django_capture_on_commit_callbacks):
    return chicago_practice(django_capture_on_commit_callbacks)


@pytest.fixture
def desk(practice):
    return desk_for(practice)


@pytest.fixture
def front_desk(client, practice):
    user = staff_member(practice, Role.FRONT_DESK, first_name="Kim", last_name="Front")
    verify_second_factor(client, user)
    client.user = user
    return client


def reads(practice) -> list[AccessEvent]:
    with tenant_context(practice):
        return list(AccessEvent.objects.filter(action="phi.read").order_by("id"))


def confirmed_with_a_call(desk):
    start = datetime(2031, 3, 4, 9, 30, tzinfo=ZoneInfo("America/Chicago"))
    booking = desk.booking(status=BookingStatus.PENDING, start=start, call_id="vapi-77")
    call = desk.call(external_id="vapi-77", turns=TURNS, booking=booking)
    with tenant_context(desk.practice):
        assert bookings.mark_confirmed(booking.pk, 5150)
    return booking, call


def test_the_page_shows_the_booking_in_the_practices_zone_with_its_history_call_and_note(
    desk, front_desk, practice, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        booking, call = confirmed_with_a_call(desk)
    page = front_desk.get(f"/p/alpha/bookings/{booking.pk}/").content.decode()
    assert "Cleaning (30 min)" in page and "Dr. Patel" in page and "Op 1 · Main Office" in page
    assert "Tue 4 Mar 2031, 09:30" in page and "10:00 CST" in page and "America/Chicago" in page
    assert "<code>5150</code>" in page
    history = page.split('id="status-history"')[1].split("</table>")[0]
    assert history.index("Pending") < history.index("Confirmed")
    assert f'href="/p/alpha/calls/{call.pk}/#transcript"' in page and "3 turns, masked" in page
    with tenant_context(practice):
        assert EncounterNote.objects.get(call=call).status == NoteStatus.PENDING
    assert "Encounter note: Pending" in page
    # Masked: initials only, one recorded read naming the booking; nothing else of the patient.
    assert "A. L." in page and "Lopez" not in page and "1985-04-12" not in page
    [event] = reads(practice)
    assert event.object_ids == [str(booking.pk)] and "booking detail" in event.reason
    assert 'name="reason"' in page  # the reveal asks why, as a transcript's does


def test_revealing_the_patient_needs_a_reason_and_records_it(desk, front_desk, practice):
    booking = desk.booking()
    url = f"/p/alpha/bookings/{booking.pk}/patient/"
    refused = front_desk.post(url, {"reason": "  "})
    assert refused.status_code == 400 and "Lopez" not in refused.content.decode()
    assert reads(practice) == []
    shown = front_desk.post(url, {"reason": "Patient called to confirm"})
    assert shown.status_code == 200 and "Ana Lopez" in shown.content.decode()
    [event] = reads(practice)
    assert event.reason == "Patient called to confirm" and event.object_ids == [str(booking.pk)]


def test_cancel_asks_first_then_cancels_here_and_queues_the_ehr(desk, front_desk, practice):
    booking = desk.booking()
    with cross_tenant("test: the EHR took it"):
        Booking.objects.filter(pk=booking.pk).update(ehr_appointment_id=880)
    ask = front_desk.get(f"/p/alpha/bookings/{booking.pk}/cancel/")
    assert ask.status_code == 200 and "Yes, cancel the appointment" in ask.content.decode()
    assert "appointment <code>880</code>" in ask.content.decode()
    with tenant_context(practice):
        assert Booking.objects.get(pk=booking.pk).status == BookingStatus.CONFIRMED

    done = front_desk.post(f"/p/alpha/bookings/{booking.pk}/cancel/", follow=True)
    page = done.content.decode()
    assert done.redirect_chain[-1][0] == f"/p/alpha/bookings/{booking.pk}/"
    assert "being cancelled in the EHR" in page and 'id="ehr-cancellation"' in page
    assert 'id="cancel-booking"' not in page
    with tenant_context(practice):
        booking.refresh_from_db()
        assert booking.status == BookingStatus.CANCELLED
        assert Hold.objects.get(pk=booking.hold_id).status == HoldStatus.RELEASED
        [message] = OutboxMessage.objects.filter(booking=booking)
        assert message.kind == bookings.OUTBOX_CANCEL
    history = page.split('id="status-history"')[1].split("</table>")[0]
    assert "Cancelled" in history and "Kim Front" in history

    again = front_desk.post(f"/p/alpha/bookings/{booking.pk}/cancel/", follow=True)
    assert "nothing to cancel" in again.content.decode()
    with tenant_context(practice):
        assert OutboxMessage.objects.filter(booking=booking).count() == 1


def test_a_failed_booking_cannot_be_cancelled(desk, front_desk):
    failed = desk.booking(status=BookingStatus.FAILED)
    page = front_desk.get(f"/p/alpha/bookings/{failed.pk}/").content.decode()
    assert 'id="cancel-booking"' not in page and "needs attention" in page
    response = front_desk.post(f"/p/alpha/bookings/{failed.pk}/cancel/", follow=True)
    assert "nothing to cancel" in response.content.decode()


def test_another_practices_booking_is_404(desk, front_desk):
    other = PracticeFactory(slug="beta", name="Beta Surgery")
    sign_baa(other)
    theirs = desk_for(other).booking()
    assert front_desk.get(f"/p/alpha/bookings/{theirs.pk}/").status_code == 404
    assert front_desk.get(f"/p/alpha/bookings/{theirs.pk}/cancel/").status_code == 404
    assert front_desk.post(f"/p/alpha/bookings/{theirs.pk}/cancel/").status_code == 404
    with tenant_context(other):
        assert Booking.objects.get(pk=theirs.pk).status == BookingStatus.CONFIRMED
    assert reads(other) == []


def test_cancel_needs_the_csrf_token(desk, practice, front_desk):
    booking = desk.booking()
    strict = Client(enforce_csrf_checks=True)
    strict.cookies = front_desk.cookies  # the same signed-in session, without the form's token
    assert strict.post(f"/p/alpha/bookings/{booking.pk}/cancel/").status_code == 403
    with tenant_context(practice):
        assert Booking.objects.get(pk=booking.pk).status == BookingStatus.CONFIRMED


def test_a_read_only_support_session_reads_the_page_but_cannot_cancel(client, desk, practice):
    booking = desk.booking()
    support = UserFactory(
        totp=True, username="support@hello.test", vendor_role=VendorRole.SUPPORT, is_staff=True
    )
    verify_second_factor(client, support)
    started = client.post(
        "/support/impersonate/",
        {"practice": "alpha", "reason": "booking issue", "ticket": "SUP-9", "minutes": 30},
    )
    assert started.status_code == 302
    page = client.get(f"/p/alpha/bookings/{booking.pk}/").content.decode()
    assert "A. L." not in page and f'id="patient-reason-{booking.pk}"' in page
    assert reads(practice) == []  # support is shown no initials, so reads none
    assert client.post(f"/p/alpha/bookings/{booking.pk}/cancel/").status_code == 403
    with tenant_context(practice):
        assert Booking.objects.get(pk=booking.pk).status == BookingStatus.CONFIRMED


@pytest.mark.parametrize("role", [Role.CLINICIAN, Role.COMPLIANCE_OFFICER])
def test_other_roles_are_refused(client, desk, practice, role):
    booking = desk.booking()
    user = UserFactory(totp=True)
    MembershipFactory(user=user, practice=practice, role=role)
    verify_second_factor(client, user)
    assert client.get(f"/p/alpha/bookings/{booking.pk}/").status_code == 403
    assert client.post(f"/p/alpha/bookings/{booking.pk}/cancel/").status_code == 403


def test_the_page_makes_a_constant_number_of_queries(
    desk, front_desk, practice, django_assert_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    booking, _ = confirmed_with_a_call(desk)
    url = f"/p/alpha/bookings/{booking.pk}/"
    front_desk.get(url)
    with CaptureQueriesContext(connection) as few:
        front_desk.get(url)
    with tenant_context(practice):  # a longer history: retried, failed, retried, confirmed
        for _ in range(3):
            b = Booking.objects.get(pk=booking.pk)
            b.status = BookingStatus.FAILED
            b.save(update_fields=["status", "updated_at"])
            b.status = BookingStatus.CONFIRMED
            b.save(update_fields=["status", "updated_at"])
    with django_assert_num_queries(len(few.captured_queries)):
        page = front_desk.get(url).content.decode()
    history = page.split('id="status-history"')[1].split("</table>")[0]
    assert history.count("<tr>") == 1 + 2 + 6


# --- a call's outcome follows its booking ----------------------------------------------------


def test_a_booking_that_fails_after_the_transcript_settles_the_call(
    desk, practice, django_capture_on_commit_callbacks
):
    booking = desk.booking(status=BookingStatus.PENDING, call_id="vapi-9")
    call = desk.call(external_id="vapi-9")
    with tenant_context(practice), django_capture_on_commit_callbacks(execute=True):
        services.store_transcript(call, TURNS, ended_at=timezone.now())
    with tenant_context(practice):
        assert Call.objects.get(pk=call.pk).outcome == CallOutcome.IN_PROGRESS  # still booking
        with django_capture_on_commit_callbacks(execute=True):
            assert bookings.mark_failed(booking.pk, "The slot was taken in the EHR.")
        assert Call.objects.get(pk=call.pk).outcome == CallOutcome.BOOKING_FAILED
        # The front desk retries it and the EHR takes it: booked after all.
        with django_capture_on_commit_callbacks(execute=True):
            bookings.retry_booking(Booking.objects.get(pk=booking.pk))
            assert bookings.mark_confirmed(booking.pk, 77)
        assert Call.objects.get(pk=call.pk).outcome == CallOutcome.BOOKED


def test_a_call_that_ended_with_nothing_decided_is_abandoned(
    desk, practice, django_capture_on_commit_callbacks
):
    call = desk.call(external_id="hung-up")
    with tenant_context(practice):
        services.store_transcript(call, TURNS[:1], ended_at=timezone.now())
        assert Call.objects.get(pk=call.pk).outcome == CallOutcome.ABANDONED
    stated = desk.call(external_id="message")
    with tenant_context(practice):
        services.store_transcript(
            stated, TURNS, ended_at=timezone.now(), outcome=CallOutcome.MESSAGE_TAKEN
        )
        assert Call.objects.get(pk=stated.pk).outcome == CallOutcome.MESSAGE_TAKEN
    # A booking naming the abandoned call that fails later still says so.
    booking = desk.booking(status=BookingStatus.PENDING, call_id="hung-up")
    with tenant_context(practice), django_capture_on_commit_callbacks(execute=True):
        bookings.mark_failed(booking.pk, "Not mapped to the EHR: no provider id.")
    with tenant_context(practice):
        assert Call.objects.get(pk=call.pk).outcome == CallOutcome.BOOKING_FAILED


def test_the_sweep_settles_calls_left_in_progress_by_a_failed_booking(desk, practice):
    booking = desk.booking(status=BookingStatus.FAILED, call_id="old-1")
    call = desk.call(external_id="old-1", booking=booking, turns=TURNS)
    services.sweep_notes()
    with tenant_context(practice):
        assert Call.objects.get(pk=call.pk).outcome == CallOutcome.BOOKING_FAILED


def test_the_call_list_and_page_show_the_outcome(desk, front_desk, practice):
    failed = desk.booking(status=BookingStatus.FAILED, call_id="f-1")
    call = desk.call(external_id="f-1", booking=failed, outcome=CallOutcome.BOOKING_FAILED)
    desk.call(external_id="gone", outcome=CallOutcome.ABANDONED)
    page = front_desk.get("/p/alpha/calls/").content.decode()
    assert "Booking failed" in page and "Abandoned" in page
    detail = front_desk.get(f"/p/alpha/calls/{call.pk}/").content.decode()
    assert "Booking failed" in detail and f'href="/p/alpha/bookings/{failed.pk}/"' in detail
