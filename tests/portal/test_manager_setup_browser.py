"""A practice manager in Chromium: creates an API client for the voice agent and sees its secret
exactly once; adds a go-live test scenario and runs it to a pass; the checklist follows."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from accounts.models import Role
from core.tenancy import tenant_context
from scheduling.models import ApiClient, TestScenario
from tests.browser import chromium, screenshot, signed_in_page
from tests.factories import staff_member
from tests.scheduling.factories import AppointmentTypeFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.browser,
    pytest.mark.usefixtures("fast_secret_hashing"),
]


def test_the_manager_creates_an_api_client_and_runs_a_scenario_to_pass(live_server, practice):
    AppointmentTypeFactory(practice=practice, name="Adult Cleaning", phrases=["teeth cleaned"])
    AppointmentTypeFactory(practice=practice, name="Periodic Exam", phrases=["check-up"])
    manager = staff_member(practice, Role.PRACTICE_MANAGER, first_name="Dana", last_name="Reyes")

    with chromium() as browser:
        page = signed_in_page(browser, live_server.url, manager)
        expect(page.locator("#golive-checklist")).to_be_visible()
        expect(page.locator("#golive-status")).to_have_text("Not ready yet")
        screenshot(page, "manager-setup-dashboard")

        # API client: created with chosen scopes, the secret shown once.
        nav = page.get_by_role("navigation", name="Main")
        nav.get_by_role("link", name="API clients").click()
        expect(page.locator(".empty")).to_contain_text("No API clients yet")
        page.get_by_label("Name").fill("Voice agent (production)")
        page.get_by_label("Record calls, transcripts and screening").check()
        page.get_by_role("button", name="Create client").click()
        expect(page.get_by_role("heading", name="API client created")).to_be_visible()
        secret = page.locator("#client-secret").inner_text().strip()
        assert len(secret) >= 30
        expect(page.get_by_text("shown only this once")).to_be_visible()
        screenshot(page, "manager-setup-api-client-secret")
        page.get_by_role("link", name="I have saved it").click()
        expect(page.locator("#api-clients")).to_contain_text("Voice agent (production)")
        assert secret not in page.content()
        with tenant_context(practice):
            api = ApiClient.objects.get()
        assert api.scopes == ["availability:read", "bookings:write", "calls:write"]
        screenshot(page, "manager-setup-api-clients")

        # Go-live: add a scenario and run it (htmx, with a progress indicator) to a pass.
        nav.get_by_role("link", name="Go-live").click()
        expect(page.locator("#check-scenarios")).to_have_attribute("data-status", "fail")
        page.get_by_label("What the caller says").fill("I'd like to get my teeth cleaned")
        page.get_by_label("Caller is a").select_option("existing")
        page.get_by_label("Expected appointment type").select_option(label="Adult Cleaning")
        page.get_by_role("button", name="Add scenario").click()
        with tenant_context(practice):
            scenario = TestScenario.objects.get()
        row = page.locator(f"#scenario-{scenario.pk}")
        expect(row).to_have_attribute("data-result", "not-run")
        url_before = page.url
        page.get_by_role("button", name="Run all").click()
        expect(page.locator("#run-summary")).to_have_text("1 of 1 scenario(s) passed.")
        expect(row).to_have_attribute("data-result", "pass")
        expect(row).to_contain_text("Adult Cleaning")
        # the checklist was refreshed in place, without a page load
        expect(page.locator("#check-scenarios")).to_have_attribute("data-status", "pass")
        assert page.url == url_before
        screenshot(page, "manager-setup-golive-scenarios")
