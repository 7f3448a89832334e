"""Clinicians in Chromium: one edits a live protocol (a draft) and may not approve their own
draft; a second clinician approves it after confirming; the test console shows the new decision
and who is on call now, and the rota shows the gaps."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import Role
from calls.models import ProtocolVersion
from core.tenancy import tenant_context
from tests.browser import chromium, screenshot, sign_in, signed_in_page
from tests.calls.test_escalation_world import clinic
from tests.factories import staff_member

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def test_a_clinician_edits_approves_and_the_console_shows_the_decision(live_server):
    surgery = clinic()
    version = surgery.protocol(
        "Vomiting after anaesthesia",
        ["throwing up"],
        severity="routine",
        instructions="Take a message for the nurse.",
    )
    now = timezone.now()
    surgery.on_call("martinez", now - timedelta(hours=1), now + timedelta(hours=12))
    user = staff_member(surgery.practice, Role.CLINICIAN, first_name="Mei", last_name="Chen")
    author = staff_member(surgery.practice, Role.CLINICIAN, first_name="Ana", last_name="Ruiz")

    with chromium() as browser:
        page = signed_in_page(browser, live_server.url, author, 1280, 1000)

        page.get_by_role("navigation", name="Main").get_by_role("link", name="Protocols").click()
        page.get_by_role("link", name="Vomiting after anaesthesia").click()
        page.get_by_role("link", name="Edit (creates a draft)").click()
        page.get_by_label("Severity").select_option("urgent")
        page.get_by_label("Route the caller to").select_option("on_call")
        page.get_by_label("What the agent says").fill("Connect the caller to the on-call doctor.")
        page.get_by_role("button", name="Save draft").click()
        expect(page.get_by_role("status")).to_contain_text("Draft version 2 saved")
        page.get_by_role("link", name="Review and approve draft v2").click()
        expect(page.locator("#approval-refused")).to_contain_text("another clinician approves")
        expect(page.get_by_role("button", name="Approve and put live")).to_have_count(0)
        protocol_url = page.url.split("versions/")[0]

        page = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
        sign_in(page, live_server.url, user)  # the second clinician
        page.goto(protocol_url)
        page.get_by_role("link", name="Review and approve draft v2").click()
        confirm = page.get_by_label("I have reviewed this version")
        page.get_by_role("button", name="Approve and put live").click()  # not confirmed yet
        assert page.url.endswith("/approve/")  # the browser refused to submit
        assert confirm.evaluate("box => !box.validity.valid")
        confirm.check()
        page.get_by_role("button", name="Approve and put live").click()
        expect(page.get_by_role("status")).to_contain_text("Version 2 approved")
        expect(page.locator("#live-approval")).to_contain_text("Mei Chen")
        screenshot(page, "escalation-protocol-approved")

        page.get_by_role("navigation", name="Escalation").get_by_role(
            "link", name="Test console"
        ).click()
        page.get_by_label("What the caller says").fill(
            "I've been vomiting all night since my surgery"
        )
        page.get_by_role("button", name="Screen").click()
        result = page.locator("#decision-result")
        expect(result).to_have_attribute("data-escalate", "true")
        expect(result).to_contain_text("Urgent")
        expect(page.locator("#route-to")).to_contain_text("Dr. Martinez")
        expect(page.locator("#route-to")).to_contain_text("+15555550111")
        assert "/protocols/console/" in page.url  # htmx swapped the result in place
        screenshot(page, "escalation-console")

        page.get_by_role("navigation", name="Escalation").get_by_role(
            "link", name="On-call rota"
        ).click()
        expect(page.locator("#on-call-now")).to_contain_text("Dr. Martinez")
        expect(page.locator("table.grid")).to_contain_text("Dr. Martinez")
        expect(page.locator("#oncall-gaps")).to_contain_text("gap")  # uncovered after the shift
        screenshot(page, "escalation-oncall")

    with tenant_context(surgery.practice):
        live = ProtocolVersion.objects.get(protocol_id=version.protocol_id, status="live")
    assert (live.number, live.severity, live.approved_by_id) == (2, "urgent", user.pk)
