"""A practice manager in Chromium connects a location to Nextech (the sandbox's Nextech surface,
a real process) on the connection page and sees "connected"; when Nextech then requires the
service user to reset its password, "Test connection" says "credentials need a reset"."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from accounts.models import Role
from core.tenancy import tenant_context
from ehr.models import ConnectionState, EHRConnection
from ehr.nextech.port import reset_ports
from tests.browser import chromium, screenshot, signed_in_page
from tests.factories import LocationFactory, sign_baa, staff_member

from .conftest import NextechWorld

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def test_the_manager_connects_nextech_then_sees_credentials_need_a_reset(
    live_server, practice, nextech: NextechWorld, settings
) -> None:
    settings.NEXTECH_SANDBOX_URL = nextech.server.base_url
    settings.NEXTECH_SANDBOX_CLIENT_ID = nextech.server.client_id
    settings.NEXTECH_SANDBOX_CLIENT_SECRET = nextech.server.client_secret
    sign_baa(practice)
    location = LocationFactory(practice=practice, key="eye", name="Eye Center")
    manager = staff_member(practice, Role.PRACTICE_MANAGER)
    try:
        with chromium() as browser:
            page = signed_in_page(browser, live_server.url, manager)
            page.goto(f"{live_server.url}/p/{practice.slug}/ehr/")
            form = page.get_by_role("form", name="Nextech connection, Eye Center")
            form.get_by_label("Select API base URL").fill(nextech.server.api_url)
            form.get_by_label("Nextech practice id (nx-practice-id)").fill(nextech.practice_id)
            form.get_by_label("Nextech location id").fill("1")
            form.get_by_label("Service username").fill(nextech.username)
            form.get_by_label("Service password").fill(nextech.password)
            form.get_by_role("button", name="Save and test").click()
            expect(page.locator(".messages")).to_contain_text("Eye Center: connected")
            with tenant_context(practice):
                conn = EHRConnection.objects.get(location=location)
            status = page.locator(f"#status-{conn.pk}")
            expect(status).to_have_text("connected")
            # The password is never put back into the page.
            expect(page.get_by_label("Service password")).to_have_value("")
            assert nextech.password not in page.content()
            screenshot(page, "nextech-connected")

            # Nextech now wants the service user to set a new password.
            nextech.admin("POST", f"/_admin/users/{nextech.username}/require_reset")
            page.get_by_role("button", name="Test connection").click()
            expect(page.locator(".messages")).to_contain_text(
                "Eye Center: credentials need a reset"
            )
            expect(page.locator(f"#status-{conn.pk}")).to_have_text("credentials need a reset")
            expect(page.locator(f"#detail-{conn.pk}")).to_contain_text("set a new password")
            screenshot(page, "nextech-credentials-need-a-reset")
        with tenant_context(practice):
            conn.refresh_from_db()
        assert conn.state == ConnectionState.RESET_REQUIRED
    finally:
        reset_ports()
