"""A practice manager sets a manual practice up in Chromium: adds a room with its capabilities,
a provider and an appointment type that needs the room's capability; gives the provider hours
in two rooms at once and is warned; then uploads an edited configuration file, reads the
preview (by key), applies it and sees every section counted. An EHR-linked type shows its
EHR-owned fields read-only with their source."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from accounts.models import Role
from core.tenancy import cross_tenant, tenant_context
from onboarding.services import export_config
from scheduling.models import AppointmentType, Operatory, Provider
from tests.browser import chromium, screenshot, signed_in_page
from tests.factories import LocationFactory, staff_member
from tests.scheduling.factories import AppointmentTypeFactory, OperatoryFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def test_the_manager_sets_up_rooms_providers_types_and_previews_a_config_upload(
    live_server, practice
):
    office = LocationFactory(practice=practice, key="main", name="Main Office")
    OperatoryFactory(practice=practice, location=office, name="Op 1", key="op1")
    linked = AppointmentTypeFactory(practice=practice, name="Implant consult", minutes=240)
    with cross_tenant("test: linked to the EHR by a sync"):
        AppointmentType.objects.filter(pk=linked.pk).update(ehr_id=9001)
    manager = staff_member(practice, Role.PRACTICE_MANAGER, first_name="Dana", last_name="Reyes")
    base = f"{live_server.url}/p/{practice.slug}"

    with chromium() as browser:
        page = signed_in_page(browser, live_server.url, manager)
        main = page.get_by_role("navigation", name="Main")

        # A room with capabilities.
        main.get_by_role("link", name="Rooms").click()
        page.get_by_role("link", name="Add a room").click()
        page.get_by_label("Location").select_option(label="Main Office")
        page.get_by_label("Name").fill("Laser room")
        page.get_by_label("Capabilities").fill("laser, imaging")
        page.get_by_role("button", name="Add the room").click()
        expect(page.locator(".messages")).to_contain_text("Added Laser room at Main Office.")
        laser_row = page.locator("#rooms tr", has_text="Laser room")
        expect(laser_row).to_contain_text("imaging")
        expect(laser_row).to_contain_text("laser")
        screenshot(page, "manager-rooms")

        # A provider.
        main.get_by_role("link", name="Providers").click()
        page.get_by_role("link", name="Add a provider").click()
        page.get_by_label("Name").fill("Dr. Ana Cho")
        page.get_by_label("On-call phone").fill("+1 555 555 0199")
        page.get_by_role("button", name="Add the provider").click()
        expect(page.locator(".messages")).to_contain_text("Added Dr. Ana Cho.")

        # A type only the laser room can host.
        main.get_by_role("link", name="Appointment types").click()
        page.get_by_role("link", name="Add an appointment type").click()
        page.get_by_label("Name").fill("Laser Hair Removal")
        page.get_by_label("Length (minutes)").fill("45")
        page.get_by_label("Dr. Ana Cho").check()
        page.locator("#field-required_capabilities").get_by_label("laser").check()
        page.get_by_role("button", name="Add the appointment type").click()
        expect(page.locator(".messages")).to_contain_text("Added Laser Hair Removal.")
        expect(page.get_by_label("Name")).to_have_value("Laser Hair Removal")

        # The EHR's type: its EHR fields are read-only and say where they come from.
        page.goto(f"{base}/scheduling/types/{linked.pk}/")
        expect(page.get_by_label("Length (minutes)")).to_be_disabled()
        expect(page.locator("#field-minutes")).to_contain_text("From the EHR (EHR id 9001)")
        expect(page.get_by_label("Lead time (hours)")).to_be_enabled()

        # Hours in two rooms at once are flagged when saved.
        with tenant_context(practice):
            cho = Provider.objects.get(name="Dr. Ana Cho")
            op1 = Operatory.objects.get(key="op1")
            laser = Operatory.objects.get(name="Laser room")
        for room, begin, end in ((op1, "08:00", "12:00"), (laser, "11:00", "15:00")):
            page.goto(f"{base}/scheduling/schedule/hours/new/?show=provider-{cho.pk}")
            page.get_by_label("Room").select_option(str(room.pk))
            page.get_by_label("Tuesday").check()
            page.get_by_label("From").fill(begin)
            page.get_by_label("Until").fill(end)
            page.get_by_role("button", name="Save").click()
            expect(page.locator(".messages")).to_contain_text("Saved the working hours.")
        expect(page.locator(".messages")).to_contain_text(
            "Dr. Ana Cho is also in Op 1 (Main Office) on Tuesday, 11:00 to 12:00"
        )
        screenshot(page, "manager-hours-clash")

        # The configuration file, edited: a preview by key, applied only on confirmation.
        with tenant_context(practice):
            doc = json.loads(json.dumps(export_config(practice), default=str))
        for t in doc["appointment_types"]:
            if t["key"] == "laser-hair-removal":
                t["minutes"] = 50
        doc["appointment_types"].append({"key": "peel", "name": "Chemical Peel", "minutes": 30})
        main.get_by_role("link", name="Configuration").click()
        page.get_by_label("Configuration file").set_input_files(
            files=[
                {
                    "name": "alpha.json",
                    "mimeType": "application/json",
                    "buffer": json.dumps(doc).encode(),
                }
            ]
        )
        page.get_by_role("button", name="Upload and preview").click()
        preview = page.locator("#import-preview")
        expect(preview).to_contain_text("Nothing has been changed yet.")
        items = page.locator("#preview-items-appointment_types")
        expect(items).to_contain_text("Added peel")
        expect(items).to_contain_text("Changed laser-hair-removal (minutes)")
        expect(preview).not_to_contain_text("[")
        screenshot(page, "manager-config-preview")
        with tenant_context(practice):
            assert not AppointmentType.objects.filter(key="peel").exists()

        page.get_by_role("button", name="Apply these 2 changes").click()
        summary = page.locator("#import-summary")
        expect(summary).to_contain_text("Imported: 2 changes")
        expect(summary.locator("#section-appointment_types")).to_be_visible()
        screenshot(page, "manager-config-applied")
    with tenant_context(practice):
        assert AppointmentType.objects.get(key="peel").minutes == 30
        assert AppointmentType.objects.get(key="laser-hair-removal").minutes == 50
