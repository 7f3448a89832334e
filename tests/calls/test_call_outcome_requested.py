"""A call whose booking became a request (a request-mode type: staff confirm it first) came to
"requested": set when the booking turns requested (the EHR holds it, or it waits in our front
desk's queue), never replaced by the agent's own outcome, turned "booked" once staff confirm,
repaired by the sweep, and shown and filterable in the call list and on the call's page."""

from __future__ import annotations

import pytest
from django.utils import timezone

from booking import services as bookings
from calls import services
from calls.models import Call, CallOutcome
from core.tenancy import tenant_context
from scheduling.models import Booking, BookingStatus
from tests.calls import test_booking_page as booking_page
from tests.calls.factories import TURNS

pytestmark = pytest.mark.django_db
# The booking page's fixtures: Alpha Dental (Chicago, BAA in force), its desk, a front desk user.
practice, desk, front_desk = booking_page.practice, booking_page.desk, booking_page.front_desk


def outcome(practice, call: Call) -> str:
    with tenant_context(practice):
        return Call.objects.get(pk=call.pk).outcome


def test_a_booking_held_on_the_ehrs_list_makes_the_call_requested_then_booked(
    desk, practice, django_capture_on_commit_callbacks
):
    booking = desk.booking(status=BookingStatus.PENDING, call_id="vapi-r1")
    call = desk.call(external_id="vapi-r1")
    with tenant_context(practice), django_capture_on_commit_callbacks(execute=True):
        assert bookings.mark_requested(booking.pk, 8801)
    assert outcome(practice, call) == CallOutcome.REQUESTED
    # The agent's own outcome at the end of the call does not replace what the booking says.
    with tenant_context(practice), django_capture_on_commit_callbacks(execute=True):
        services.store_transcript(call, TURNS, ended_at=timezone.now(), outcome="abandoned")
    assert outcome(practice, call) == CallOutcome.REQUESTED
    # Staff confirm it in the EHR: booked.
    with tenant_context(practice), django_capture_on_commit_callbacks(execute=True):
        assert bookings.mark_confirmed(booking.pk, 8801)
    assert outcome(practice, call) == CallOutcome.BOOKED


def test_a_request_in_our_queue_found_by_the_transcript_makes_the_call_requested(
    desk, practice, django_capture_on_commit_callbacks
):
    booking = desk.booking(status=BookingStatus.REQUESTED, call_id="vapi-r2")
    call = desk.call(external_id="vapi-r2")
    with tenant_context(practice), django_capture_on_commit_callbacks(execute=True):
        services.store_transcript(call, TURNS, ended_at=timezone.now())
    with tenant_context(practice):
        saved = Call.objects.get(pk=call.pk)
    assert (saved.outcome, saved.booking_id) == (CallOutcome.REQUESTED, booking.pk)
    # Declined later: the call still came to a request (the booking's page says declined).
    with tenant_context(practice), django_capture_on_commit_callbacks(execute=True):
        bookings.decline_request(Booking.objects.get(pk=booking.pk), "No", None)
    assert outcome(practice, call) == CallOutcome.REQUESTED


def test_an_escalation_the_agent_stated_stays(desk, practice, django_capture_on_commit_callbacks):
    desk.booking(status=BookingStatus.REQUESTED, call_id="vapi-r3")
    call = desk.call(external_id="vapi-r3", outcome=CallOutcome.ESCALATED)
    with tenant_context(practice), django_capture_on_commit_callbacks(execute=True):
        services.store_transcript(call, TURNS, ended_at=timezone.now())
    assert outcome(practice, call) == CallOutcome.ESCALATED


def test_the_sweep_settles_a_call_left_in_progress_by_a_request(desk, practice):
    booking = desk.booking(status=BookingStatus.REQUESTED, call_id="old-r")
    call = desk.call(external_id="old-r", booking=booking, turns=TURNS)
    services.sweep_notes()
    assert outcome(practice, call) == CallOutcome.REQUESTED


def test_the_call_list_and_page_show_requested_and_filter_by_it(desk, front_desk):
    waiting = desk.booking(status=BookingStatus.REQUESTED, call_id="r-1")
    call = desk.call(external_id="r-1", booking=waiting, outcome=CallOutcome.REQUESTED)
    other = desk.call(external_id="gone", outcome=CallOutcome.ABANDONED)
    page = front_desk.get("/p/alpha/calls/").content.decode()
    assert 'class="outcome-requested">Requested<' in page
    assert '<option value="requested">Requested</option>' in page
    only = front_desk.get("/p/alpha/calls/?outcome=requested").content.decode()
    assert f"/p/alpha/calls/{call.pk}/" in only and f"/p/alpha/calls/{other.pk}/" not in only
    detail = front_desk.get(f"/p/alpha/calls/{call.pk}/").content.decode()
    assert 'id="call-outcome">Requested<' in detail
    assert f'href="/p/alpha/bookings/{waiting.pk}/"' in detail
