"""Compliance and support in Chromium: a compliance officer drafts a BAA, uploads the signed PDF,
executes it and exports the audit log; Hello support finds the practice in the directory,
starts a support session (banner on every page) and ends it; the practice manager then sees
that access under "Support access"."""

from __future__ import annotations

import csv
import hashlib
import io

import pytest

from accounts.models import Role, VendorRole
from compliance.models import BAAStatus, BusinessAssociateAgreement
from core.tenancy import tenant_context
from tests.browser import chromium, screenshot, sign_in, signed_in_page
from tests.factories import PracticeFactory, UserFactory, staff_member

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n% countersigned by both parties\n%%EOF\n"


def test_compliance_officer_uploads_a_baa_and_exports_the_audit_log(live_server):
    practice = PracticeFactory(slug="alpha", name="Alpha Dental")
    officer = staff_member(
        practice, Role.COMPLIANCE_OFFICER, first_name="Cleo", last_name="Officer"
    )

    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        page.on("dialog", lambda dialog: dialog.accept())
        sign_in(page, live_server.url, officer)
        page.get_by_role("link", name="BAA", exact=True).click()
        assert page.locator("#baa-in-force").inner_text().startswith("No executed agreement")
        page.get_by_role("link", name="New agreement (draft)").click()
        page.get_by_label("Practice signatory", exact=True).fill("Dana Reyes")
        page.get_by_label("Hello signatory", exact=True).fill("Sam Hello")
        page.get_by_role("button", name="Create draft").click()
        page.get_by_text("Draft version 1 created.").wait_for()

        page.get_by_label("Signed agreement (PDF)").set_input_files(
            files=[{"name": "baa-signed.pdf", "mimeType": "application/pdf", "buffer": PDF}]
        )
        page.get_by_role("button", name="Upload signed PDF").click()
        digest = hashlib.sha256(PDF).hexdigest()
        assert page.locator("#baa-sha256").inner_text() == digest

        page.get_by_role("link", name="Record the signature (execute)…").click()
        page.get_by_label("Signed by both parties on").fill("2026-01-05")
        page.get_by_label("In force from").fill("2026-01-05")
        page.get_by_label("Last day in force").fill("2025-12-31")
        page.get_by_role("button", name="Execute").click()
        page.get_by_text("The last day in force is before the first.").wait_for()
        page.get_by_label("Last day in force").fill("")
        page.get_by_role("button", name="Execute").click()
        page.get_by_text("Version 1 is executed.").wait_for()
        assert "Executed" in page.locator("#baa-status").inner_text()
        screenshot(page, "compliance-baa-executed")
        page.get_by_role("link", name="All versions").click()
        assert page.locator("#baa-in-force").inner_text().startswith("In force: version 1")
        screenshot(page, "compliance-baa-list")

        page.get_by_role("link", name="Audit log").click()
        page.wait_for_url("**/p/alpha/compliance/audit/")
        screenshot(page, "compliance-audit-log")
        with page.expect_download() as download_info:
            page.get_by_role("link", name="CSV").click()
        exported = download_info.value.path().read_text()
    with tenant_context(practice):
        agreement = BusinessAssociateAgreement.objects.get()
    assert agreement.status == BAAStatus.EXECUTED and agreement.signed_pdf_sha256 == digest
    entries = list(csv.DictReader(io.StringIO(exported)))
    assert entries, "the export holds the BAA's change entries"
    assert any("businessassociateagreement" in str(row).lower() for row in entries)


def test_support_starts_a_session_sees_the_banner_and_the_manager_sees_it(live_server):
    practice = PracticeFactory(slug="alpha", name="Alpha Dental")
    PracticeFactory(slug="beta", name="Beta Surgery")
    support = UserFactory(
        totp=True,
        username="support@hello.test",
        first_name="Sasha",
        last_name="Support",
        vendor_role=VendorRole.SUPPORT,
        is_staff=True,
    )
    manager = staff_member(practice, Role.PRACTICE_MANAGER, first_name="Mo", last_name="Manager")

    with chromium() as browser:
        page = signed_in_page(browser, live_server.url, support)
        page.goto(f"{live_server.url}/support/")
        page.get_by_label("Search practices").fill("alpha")
        page.get_by_role("button", name="Search").click()
        assert page.locator("#practice-beta").count() == 0
        screenshot(page, "support-directory")
        page.get_by_role("link", name="Start support access to Alpha Dental").click()
        page.get_by_label("Reason").fill("Agent books the wrong visit type")
        page.get_by_label("Ticket reference").fill("SUP-1234")
        page.get_by_role("button", name="Start").click()
        page.wait_for_url("**/p/alpha/")
        banner = page.locator("#impersonation-banner")
        assert "SUP-1234" in banner.inner_text() and "read-only" in banner.inner_text()
        screenshot(page, "support-impersonation-banner")
        page.goto(f"{live_server.url}/p/alpha/locations/")
        assert page.locator("#impersonation-banner").is_visible()
        page.get_by_role("button", name="End support session").click()
        page.wait_for_url("**/support/")
        assert page.locator("#impersonation-banner").count() == 0
        page.get_by_role("button", name="Sign out").click()

        sign_in(page, live_server.url, manager)
        page.get_by_role("link", name="Support access").click()
        row = page.locator("#support-sessions tbody tr").first
        text = row.inner_text()
        assert "SUP-1234" in text and "Agent books the wrong visit type" in text
        assert "Sasha Support" in text and "ended by support" in text
        screenshot(page, "support-access-seen-by-manager")


def test_support_reveals_a_patient_only_after_typing_why(live_server):
    """In a read-only support session the AI bookings list shows no initials; each patient is
    revealed through a reason form (htmx), and the read carries that reason."""
    from compliance.models import AccessEvent, AuditAction
    from tests.calls.factories import desk_for
    from tests.factories import sign_baa

    practice = PracticeFactory(slug="alpha", name="Alpha Dental")
    sign_baa(practice)
    booking = desk_for(practice).booking()
    support = UserFactory(
        totp=True, username="support@hello.test", vendor_role=VendorRole.SUPPORT, is_staff=True
    )
    with chromium() as browser:
        page = signed_in_page(browser, live_server.url, support)
        page.goto(f"{live_server.url}/support/impersonate/?practice=alpha")
        page.get_by_label("Reason").fill("Caller says the booking has the wrong name")
        page.get_by_label("Ticket reference").fill("SUP-77")
        page.get_by_role("button", name="Start").click()
        page.wait_for_url("**/p/alpha/")
        page.goto(f"{live_server.url}/p/alpha/bookings/?since=2000-01-01")
        row = page.locator(f"#booking-{booking.pk}")
        assert "A. L." not in row.inner_text() and "Ana Lopez" not in row.inner_text()
        row.get_by_label("Why do you need this patient's details?").fill(
            "Checking the name the caller gave (SUP-77)"
        )
        row.get_by_role("button", name="Show details").click()
        row.get_by_text("Ana Lopez").wait_for()
        screenshot(page, "support-patient-revealed-with-reason")
    with tenant_context(practice):
        [event] = AccessEvent.objects.filter(action=AuditAction.PHI_READ)
    assert event.reason == "Checking the name the caller gave (SUP-77)"
    assert event.actor_user_id == support.pk and event.impersonation_session_id is not None
