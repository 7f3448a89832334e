"""Vendor support in Chromium: signing in lands on the practice directory; in a read-only
session a practice's forms show as read-only, and a change pushed through anyway (htmx) is
refused with a visible reason; the open session is seen and ended from a second browser."""

from __future__ import annotations

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import expect

from accounts.models import VendorRole
from compliance.models import ImpersonationSession
from core.tenancy import cross_tenant
from scheduling.models import AppointmentType
from tests.browser import chromium, screenshot, sign_in, signed_in_page
from tests.factories import PracticeFactory, UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def test_support_lands_on_the_directory_works_read_only_and_ends_from_another_browser(
    live_server,
):
    practice = PracticeFactory(slug="alpha", name="Alpha Dental")
    with cross_tenant("test data setup"):
        kind = AppointmentType.objects.create(
            practice=practice, key="clean", name="Cleaning", minutes=30
        )
    support = UserFactory(
        totp=True, username="support@hello.test", vendor_role=VendorRole.SUPPORT, is_staff=True
    )
    with chromium() as browser:
        page = signed_in_page(browser, live_server.url, support)
        expect(page).to_have_url(f"{live_server.url}/support/")
        expect(page.get_by_role("heading", name="Practice directory")).to_be_visible()
        page.get_by_role("link", name="Start support access to Alpha Dental").click()
        page.get_by_label("Reason").fill("Phrases do not match what callers say")
        page.get_by_label("Ticket reference").fill("SUP-88")
        page.get_by_role("button", name="Start").click()
        page.wait_for_url("**/p/alpha/")

        page.goto(f"{live_server.url}/p/alpha/scheduling/types/{kind.pk}/")
        add = page.get_by_role("button", name="Add phrase")
        expect(add).to_be_disabled()
        expect(page.locator("#phrases .read-only-note")).to_contain_text(
            "Read-only support session"
        )
        # Pushed through anyway (as a stale page would): the refusal is shown, not swallowed.
        page.evaluate(
            """() => {
                const form = document.querySelector('#phrases form');
                form.querySelectorAll('input, button').forEach(c => { c.disabled = false; });
                form.querySelector('input[name=text]').value = 'teeth cleaned';
                htmx.trigger(form, 'submit');
            }"""
        )
        alert = page.locator("[data-request-error]")
        expect(alert).to_contain_text("read-only")
        expect(alert).to_contain_text("HTTP 403")
        screenshot(page, "support-read-only-refused")

        with cross_tenant("test"):
            session = ImpersonationSession.objects.get(ended_at__isnull=True)
        device = TOTPDevice.objects.get(user=support, confirmed=True)
        device.last_t = -1  # the same person signs in again within the same code window
        device.save()
        other = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        sign_in(other, live_server.url, support)
        row = other.locator(f"#session-{session.pk}")
        expect(row).to_contain_text("Alpha Dental")
        expect(row).to_contain_text("started in another browser")
        row.get_by_role("button", name="End this session").click()
        expect(other.get_by_role("status")).to_contain_text(f"Support session {session.pk} ended")
        expect(other.locator(f"#session-{session.pk}")).to_have_count(0)

        page.goto(f"{live_server.url}/support/")
        expect(page.locator("#impersonation-banner")).to_have_count(0)
    with cross_tenant("test"):
        session.refresh_from_db()
    assert session.end_reason == "ended by support"
