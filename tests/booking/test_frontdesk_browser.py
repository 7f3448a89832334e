"""Front desk in Chromium: a booking the EHR refused waits in "Needs attention" with its reason;
after the clash is moved in the EHR, Retry (confirmed in a dialog) shows the pending state and
the row updates itself, through htmx polling, to confirmed. Real sandbox, real worker."""

from __future__ import annotations

import pytest

from accounts.models import Role
from tests.booking.test_bookings import desk as ehr_desk
from tests.booking.test_frontdesk import fail_by_a_clash_in_the_ehr
from tests.browser import chromium, screenshot, sign_in
from tests.factories import MembershipFactory, UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.worker]


def test_front_desk_retries_a_failed_booking(live_server, settings):
    with ehr_desk(live_server, settings) as d:
        booking_id, clash_id = fail_by_a_clash_in_the_ehr(d)
        slug = d.world.practice.slug
        user = UserFactory(totp=True, first_name="Kim", last_name="Front")
        MembershipFactory(user=user, practice=d.world.practice, role=Role.FRONT_DESK)

        with chromium() as browser:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            sign_in(page, live_server.url, user)
            page.get_by_role("link", name="Needs attention").first.click()
            page.wait_for_url(f"**/p/{slug}/bookings/attention/")
            row = page.locator(f"#booking-{booking_id}")
            assert "taken in the EHR" in row.inner_text()
            assert page.locator("#queue-count").inner_text() == "1"
            assert "Lopez" not in row.inner_text() and "A. L." in row.inner_text()
            screenshot(page, "frontdesk-needs-attention")

            # Someone moves the other appointment in the EHR; the front desk retries ours.
            d.world.admin(
                "PATCH", f"/_admin/ehr/appointments/{clash_id}", {"appt": {"cancelled": True}}
            )
            page.once("dialog", lambda dialog: dialog.accept())
            row.get_by_role("button", name="Retry").click()
            status = page.locator(f"#booking-status-{booking_id}")
            status.get_by_text("Confirmed in the EHR").wait_for(timeout=45_000)
            screenshot(page, "frontdesk-retried-confirmed")

            page.get_by_role("link", name="AI bookings").click()
            page.wait_for_url(f"**/p/{slug}/bookings/")
            assert "Confirmed" in page.locator(f"#booking-{booking_id}").inner_text()
            page.locator(f"#booking-{booking_id}").get_by_role(
                "button", name="Show details"
            ).click()
            page.locator(f"#patient-{booking_id}").get_by_text("Ana Lopez").wait_for()
            screenshot(page, "frontdesk-ai-bookings")
        assert d.get(booking_id)["status"] == "confirmed"
