"""A practice manager in Chromium: maps a caller's phrase to a type, then sees the "what would the
agent book?" console pick that type with its next slots; looks at the provider's week."""

from __future__ import annotations

from datetime import time

import pytest
from playwright.sync_api import expect

from accounts.models import Role
from core.tenancy import tenant_context
from scheduling.models import CallerPhrase
from tests.browser import chromium, screenshot, signed_in_page
from tests.factories import LocationFactory, staff_member
from tests.scheduling.factories import (
    AppointmentDescriptorFactory,
    AppointmentTypeFactory,
    OperatoryFactory,
    ProviderFactory,
    WorkingHourFactory,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

EVERY_DAY = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def test_the_manager_maps_a_phrase_and_the_console_picks_the_type(live_server, practice):
    location = LocationFactory(practice=practice, key="main", name="Main Office")
    patel = ProviderFactory(practice=practice, name="Dr. Patel")
    room = OperatoryFactory(practice=practice, location=location, name="Operatory 1")
    AppointmentDescriptorFactory(
        practice=practice, location=location, code="D1110", description="Prophylaxis Adult"
    )
    cleaning = AppointmentTypeFactory(practice=practice, name="Adult Cleaning", phrases=[])
    exam = AppointmentTypeFactory(practice=practice, name="Periodic Exam", phrases=["check-up"])
    WorkingHourFactory(
        practice=practice,
        provider=patel,
        operatory=room,
        days=EVERY_DAY,
        begin=time(8),
        end=time(17),
        appointment_types=[cleaning, exam],
    )
    manager = staff_member(practice, Role.PRACTICE_MANAGER, first_name="Dana", last_name="Reyes")

    with chromium() as browser:
        page = signed_in_page(browser, live_server.url, manager)

        # Before the mapping, the console has nothing for the caller's words.
        page.get_by_role("navigation", name="Main").get_by_role(
            "link", name="Appointment types"
        ).click()
        page.get_by_role("link", name="What would the agent book?").first.click()
        page.get_by_label("What the caller says").fill("I need a scale and polish")
        page.get_by_role("button", name="Ask").click()
        expect(page.locator("#no-match")).to_be_visible()

        # Map the phrase on the type's page (htmx, no reload) and its EHR code.
        page.get_by_role("navigation", name="Scheduling set-up").get_by_role(
            "link", name="Appointment types"
        ).click()
        page.get_by_role("link", name="Adult Cleaning").click()
        page.get_by_label("Add a phrase a caller says").fill("scale and polish")
        page.get_by_role("button", name="Add phrase").click()
        expect(page.locator("#phrases .phrase", has_text="scale and polish")).to_be_visible()
        expect(page.get_by_label("Add a phrase a caller says")).to_have_value("")
        page.get_by_label("D1110 — Prophylaxis Adult (Main Office)").check()
        page.get_by_role("button", name="Save").click()
        expect(page.locator(".messages")).to_contain_text("Saved Adult Cleaning.")
        expect(page.get_by_label("D1110 — Prophylaxis Adult (Main Office)")).to_be_checked()
        screenshot(page, "manager-appointment-type")

        # The console now picks the type and shows the slots the agent would offer.
        page.get_by_role("link", name="Check what the agent would book").click()
        page.get_by_label("What the caller says").fill("I need a scale and polish")
        page.get_by_label("The caller is").select_option("existing")
        page.get_by_role("button", name="Ask").click()
        pick = page.locator("#console-result li.answer").first
        expect(pick).to_contain_text("Adult Cleaning")
        expect(pick).to_contain_text("the agent's pick")
        expect(pick.locator("table.slots tbody tr")).to_have_count(5)
        expect(pick).to_contain_text("Dr. Patel")
        assert page.url.endswith("/scheduling/console/")  # answered in place, by htmx
        screenshot(page, "manager-console")

        # The provider's week on the grid.
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Schedule").click()
        expect(page.locator(".week-grid .item.hour")).to_have_count(7)
        page.get_by_role("link", name="Next week →").click()
        expect(page.locator(".week-grid .item.hour")).to_have_count(7)
        screenshot(page, "manager-schedule")

    with tenant_context(practice):
        assert list(
            CallerPhrase.objects.filter(appointment_type=cleaning).values_list("text", flat=True)
        ) == ["scale and polish"]
