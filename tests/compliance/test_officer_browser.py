"""The compliance officer in Chromium: the audit table fits the page at a laptop's width (request
ids on one line, reason and sequence in view, nothing scrolling sideways), actions read as
labels, and the day filters are date pickers that filter."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import expect

from accounts.models import Role
from compliance import audit
from compliance.context import audit_context
from compliance.models import AuditAction
from tests.browser import chromium, screenshot, signed_in_page
from tests.factories import PracticeFactory, staff_member

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def test_the_audit_table_fits_the_page_and_filters_by_date_pickers(live_server):
    practice = PracticeFactory(slug="alpha", name="Alpha Dental", timezone="America/Denver")
    for n in range(12):
        with audit_context(request_id=uuid.uuid4().hex, ip="203.0.113.77"):
            audit.record(
                AuditAction.PHI_READ,
                practice=practice,
                object_type="calls.transcript",
                object_ids=[1000 + n, 2000 + n],
                reason="Caller asked us to confirm what they said about their medication dose",
            )
    audit.seal_now()
    officer = staff_member(practice, Role.COMPLIANCE_OFFICER, username="officer@alpha.test")

    with chromium() as browser:
        page = signed_in_page(browser, live_server.url, officer)
        page.goto(f"{live_server.url}/p/alpha/compliance/audit/")
        table = page.locator("#audit-rows")
        expect(table.locator('td.action[data-action="phi.read"]').first).to_have_text("PHI read")
        fits = page.evaluate(
            """() => {
                const box = document.querySelector('.table-scroll');
                const table = document.querySelector('#audit-rows');
                const heads = [...table.querySelectorAll('th')]
                    .map(th => th.getBoundingClientRect().right);
                const code = table.querySelector('code.request-id');
                const line = parseFloat(getComputedStyle(code).lineHeight) || 24;
                return {
                    table: table.scrollWidth, box: box.clientWidth,
                    page: document.documentElement.scrollWidth, viewport: window.innerWidth,
                    rightmost: Math.max(...heads), code: code.getBoundingClientRect().height, line,
                };
            }"""
        )
        assert fits["table"] <= fits["box"], fits  # no scrolling inside the box either
        assert fits["page"] <= fits["viewport"], fits
        assert fits["rightmost"] <= fits["viewport"], fits  # reason and Seq are in view
        assert fits["code"] < 1.5 * fits["line"], fits  # the request id is one line
        expect(table.locator("th").nth(4)).to_have_text("Reason")
        expect(table.locator("th").nth(6)).to_have_text("Seq")
        screenshot(page, "compliance-audit-table")

        assert page.get_by_label("From (day)").get_attribute("type") == "date"
        page.get_by_label("From (day)").fill("2000-01-01")
        page.get_by_label("Through (day)").fill("2000-01-02")
        page.get_by_role("button", name="Filter").click()
        expect(page.get_by_text("No audit entries match.")).to_be_visible()
        assert "since=2000-01-01" in page.url
