"""The front desk approves a request in Chromium: the voice agent booked a request-mode type at a
NexHealth practice, so the booking waits on the Requests page (masked, with when it expires);
Approve books it into the EHR through the real worker and the sandbox, and it ends confirmed,
once. Real sandbox, real worker, real browser."""

from __future__ import annotations

import pytest

from accounts.models import Role
from core.tenancy import tenant_context
from scheduling.models import AppointmentType, BookingMode
from tests.booking.test_bookings import booking_body
from tests.booking.test_bookings import desk as ehr_desk
from tests.browser import chromium, screenshot, signed_in_page
from tests.factories import staff_member

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.worker]


def test_front_desk_approves_a_request_and_it_is_confirmed_in_the_ehr(live_server, settings):
    with ehr_desk(live_server, settings) as d:
        with tenant_context(d.world.practice):
            AppointmentType.objects.filter(pk=d.cleaning.pk).update(
                booking_mode=BookingMode.REQUEST
            )
        answer = d.post(booking_body(d.hold()), "request-1")
        assert answer.status_code == 202, answer.text  # accepted, as every booking is
        booking_id = answer.json()["id"]
        assert d.get(booking_id)["status"] == "requested"
        assert d.ehr_appointments() == []  # nothing is sent before staff approve
        slug = d.world.practice.slug
        user = staff_member(d.world.practice, Role.FRONT_DESK, first_name="Kim", last_name="Front")

        with chromium() as browser:
            page = signed_in_page(browser, live_server.url, user)
            page.get_by_role("link", name="Requests").first.click()
            page.wait_for_url(f"**/p/{slug}/bookings/requests/")
            row = page.locator(f"#booking-{booking_id}")
            text = row.inner_text()
            assert "A. L." in text and "Lopez" not in text and "in 1" in text  # expires in a day
            assert page.locator("#request-count").inner_text() == "1"
            screenshot(page, "frontdesk-requests")

            row.get_by_role("button", name="Approve").click()
            page.get_by_text("Approved: it is being booked into the EHR").wait_for()
            assert page.locator(f"#booking-{booking_id}").count() == 0
            assert page.locator("#request-count").inner_text() == "0"

            d.wait_status(booking_id, "confirmed")
            page.goto(f"{live_server.url}/p/{slug}/bookings/{booking_id}/")
            assert page.locator("#booking-status").inner_text().startswith("Confirmed")
            assert page.locator("#booking-request").count() == 0
            assert page.locator("#move-booking").is_visible()
            screenshot(page, "frontdesk-request-approved")
        body = d.get(booking_id)
        live = [a for a in d.ehr_appointments() if not a["cancelled"]]
        assert [a["id"] for a in live] == [body["ehr_appointment_id"]]
