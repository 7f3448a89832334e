"""The front desk in Chromium, end to end against the real sandbox and a real worker: the agent
books a caller; the front desk sorts the bookings, opens the booking's page (patient masked,
times in the practice's zone with the zone named, the EHR id, the status history, the call and
its transcript link), reveals the patient with a reason, cancels after confirming and sees the
EHR appointment cancelled; a call whose booking failed says so on the calls list; the
dashboard's failures chart names categories."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from accounts.models import Role
from calls import services as call_services
from calls.models import Call
from compliance.models import AccessEvent
from core.tenancy import tenant_context
from ehr_sandbox.testing import wait_until
from scheduling.models import Booking, OutboxMessage
from tests.booking.test_bookings import booking_body
from tests.booking.test_bookings import desk as ehr_desk
from tests.booking.test_frontdesk import fail_by_a_clash_in_the_ehr
from tests.browser import chromium, screenshot, sign_in
from tests.calls.factories import TURNS
from tests.factories import MembershipFactory, UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.worker]


def cancel_acknowledged(practice, booking_id: int) -> bool:
    with tenant_context(practice):
        return OutboxMessage.objects.filter(
            booking_id=booking_id, kind="cancel_in_ehr", acked_at__isnull=False
        ).exists()


def test_front_desk_opens_a_booking_reveals_the_patient_and_cancels_it_in_the_ehr(
    live_server, settings
):
    with ehr_desk(live_server, settings) as d:
        practice = d.world.practice
        slug = practice.slug
        body = booking_body(d.hold(11), first_name="Rosa", last_name="Diaz")
        body["call_id"] = "vapi-rosa"
        booking_id = d.post(body, "rosa-1").json()["id"]
        ehr_id = d.wait_status(booking_id, "confirmed")["ehr_appointment_id"]
        with tenant_context(practice):
            started = Booking.objects.get(pk=booking_id).created_at
            call = Call.objects.create(
                practice=practice, external_id="vapi-rosa", started_at=started
            )
            call_services.store_transcript(call, TURNS)
        # And one the EHR refused: the call made during it ends "Booking failed".
        failed_id, _ = fail_by_a_clash_in_the_ehr(d)
        with tenant_context(practice):
            failed_call = Call.objects.create(
                practice=practice, external_id="call-1", started_at=started
            )
            call_services.store_transcript(failed_call, TURNS)

        user = UserFactory(totp=True, first_name="Kim", last_name="Front")
        MembershipFactory(user=user, practice=practice, role=Role.FRONT_DESK)
        with chromium() as browser:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            sign_in(page, live_server.url, user)
            page.goto(f"{live_server.url}/p/{slug}/bookings/?since=")
            page.get_by_role("link", name="Status").click()  # sort by a column
            expect(page.locator('th[aria-sort="ascending"]')).to_have_text("Status ▲")
            rows = page.locator("#bookings tbody tr")
            expect(rows.first).to_contain_text("Confirmed")
            screenshot(page, "frontdesk-bookings-sorted")

            page.locator(f"#booking-{booking_id}").get_by_role("link").first.click()
            page.wait_for_url(f"**/p/{slug}/bookings/{booking_id}/")
            facts = page.locator("#booking-facts")
            expect(facts).to_contain_text("R. D.")
            expect(facts).not_to_contain_text("Diaz")
            expect(page.locator("#booking-when")).to_contain_text(practice.timezone)
            expect(page.locator("#booking-ehr-id")).to_have_text(str(ehr_id))
            expect(page.locator("#status-history")).to_contain_text("Confirmed")
            expect(page.locator("#booking-call")).to_contain_text("3 turns, masked")

            page.get_by_label("Why do you need this patient's details?").fill(
                "Caller asked to cancel"
            )
            page.get_by_role("button", name="Show details").click()
            expect(page.locator(f"#patient-{booking_id}")).to_contain_text("Rosa Diaz")
            screenshot(page, "frontdesk-booking-detail")

            page.get_by_role("link", name="Cancel this appointment…").click()
            expect(page.get_by_role("heading", name="Cancel this appointment?")).to_be_visible()
            page.get_by_role("button", name="Yes, cancel the appointment").click()
            expect(page.locator("#booking-status")).to_contain_text("Cancelled")
            expect(page.locator(".messages")).to_contain_text("being cancelled in the EHR")
            wait_until(
                lambda: any(a["id"] == ehr_id and a["cancelled"] for a in d.ehr_appointments()),
                timeout=40,
                interval=0.2,
                message="the EHR appointment to be cancelled",
            )
            wait_until(
                lambda: cancel_acknowledged(practice, booking_id),
                timeout=20,
                interval=0.1,
                message="the cancel task to finish",
            )
            page.reload()
            expect(page.locator("#ehr-cancellation")).to_have_text("Cancellation sent to the EHR.")
            history = page.locator("#status-history")
            expect(history).to_contain_text("Cancelled")
            expect(history).to_contain_text("Kim Front")
            screenshot(page, "frontdesk-booking-cancelled")

            page.get_by_role("navigation", name="Main").get_by_role("link", name="Calls").click()
            row = page.locator("#call-rows tbody tr", has_text="Booking failed")
            expect(row).to_have_count(1)
            expect(page.locator("#call-rows")).not_to_contain_text("In progress")
            screenshot(page, "frontdesk-calls-outcomes")

        with tenant_context(practice):
            reveal = AccessEvent.objects.filter(
                action="phi.read", reason="Caller asked to cancel"
            ).get()
            assert reveal.object_ids == [str(booking_id)]
            assert Call.objects.get(pk=failed_call.pk).outcome == "booking_failed"
        assert d.get(booking_id)["status"] == "cancelled" and failed_id


def test_the_dashboard_groups_failures_by_category(live_server, practice):
    from tests.scheduling.factories import BookingFactory

    first = BookingFactory(practice=practice, status="confirmed", attempts=1)
    for n in (7101, 7102, 7103):
        BookingFactory(
            practice=practice,
            appointment_type=first.appointment_type,
            provider=first.provider,
            operatory=first.operatory,
            status="failed",
            failure_reason=f"The slot was taken in the EHR before we could book it (EHR "
            f"appointment {n}). Offer the caller another time.",
        )
    manager = UserFactory(totp=True)
    MembershipFactory(user=manager, practice=practice, role=Role.PRACTICE_MANAGER)
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        sign_in(page, live_server.url, manager)
        page.goto(f"{live_server.url}/p/{practice.slug}/")
        chart = page.locator("#chart-failures")
        expect(chart.locator("rect")).to_have_count(1)
        expect(chart.locator(".chart-label")).to_have_text("Slot taken in the EHR")
        expect(chart).not_to_contain_text("7101")
        first_try = page.locator("#chart-first-try .chart-value")
        expect(first_try.first).to_contain_text("%")
        expect(first_try.last).to_contain_text("%")
        screenshot(page, "dashboard-failures-by-category")


def test_front_desk_moves_a_booking_and_the_ehr_follows(live_server, settings):
    with ehr_desk(live_server, settings) as d:
        practice = d.world.practice
        body = booking_body(d.hold(9), first_name="Lena", last_name="Park")
        body["call_id"] = "vapi-lena"
        old_id = d.post(body, "lena-1").json()["id"]
        old_ehr = d.wait_status(old_id, "confirmed")["ehr_appointment_id"]
        user = UserFactory(totp=True, first_name="Kim", last_name="Front")
        MembershipFactory(user=user, practice=practice, role=Role.FRONT_DESK)
        with chromium() as browser:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            sign_in(page, live_server.url, user)
            page.goto(f"{live_server.url}/p/{practice.slug}/bookings/{old_id}/")
            page.get_by_role("link", name="Move to another time…").click()
            page.goto(f"{page.url}?from={d.day.isoformat()}")
            page.get_by_label("11:00", exact=False).first.check()
            screenshot(page, "frontdesk-move-choose")
            page.get_by_role("button", name="Move to the chosen time").click()
            expect(page.locator(".messages")).to_contain_text("Moving: the new time")
            expect(page.locator("#moved-from")).to_be_visible()
            new_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
            new_ehr = d.wait_status(new_id, "confirmed")["ehr_appointment_id"]
            wait_until(
                lambda: any(a["id"] == old_ehr and a["cancelled"] for a in d.ehr_appointments()),
                timeout=40,
                interval=0.2,
                message="the original EHR appointment to be cancelled",
            )
            page.reload()
            expect(page.locator("#booking-status")).to_contain_text("Confirmed")
            expect(page.locator("#moved-from")).to_contain_text("cancelled")
            screenshot(page, "frontdesk-moved")
        live = [a["id"] for a in d.ehr_appointments() if not a["cancelled"]]
        assert live == [new_ehr] and d.get(old_id)["status"] == "cancelled"
