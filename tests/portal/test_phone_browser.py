"""The front desk on a phone (390 px wide, Chromium): every page of their day fits the screen.
The header and navigation wrap to fit, tables scroll inside their own box (never the page), and
nothing scrolls sideways, with realistic rows (long names, failure reasons, transcripts)."""

from __future__ import annotations

import pytest

from accounts.models import Role
from scheduling.models import BookingStatus
from tests.browser import chromium, screenshot, sign_in
from tests.calls.factories import TURNS, desk_for
from tests.factories import PracticeFactory, sign_baa, staff_member

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

PHONE = {"width": 390, "height": 844}

FITS = """() => {
    const doc = document.documentElement;
    const bad = [];
    for (const el of document.querySelectorAll('header, nav, main, table, form')) {
        const box = el.getBoundingClientRect();
        if (box.width === 0) continue;
        let clipped = false;  // inside a box of its own that scrolls
        for (let up = el.parentElement; up; up = up.parentElement) {
            const style = getComputedStyle(up);
            const scrolls = ['auto', 'scroll'].includes(style.overflowX);
            if (scrolls && up.getBoundingClientRect().right <= innerWidth + 0.5) {
                clipped = true;
                break;
            }
        }
        if (!clipped && box.right > innerWidth + 0.5) {
            bad.push(el.tagName + '#' + (el.id || el.className));
        }
    }
    return {overflow: doc.scrollWidth - innerWidth, bad};
}"""


def test_the_front_desk_pages_fit_a_phone(live_server):
    practice = PracticeFactory(
        slug="alpha", name="Alpha Dental and Oral Surgery of Greater Springfield"
    )
    sign_baa(practice)
    desk = desk_for(practice)
    booked = desk.booking()
    failed = desk.booking(status=BookingStatus.FAILED)
    failed.failure_reason = (
        "EHR rejected the appointment: provider 4471 has no availability at operatory 12 "
        "(descriptor D1110-ADULT-PROPHYLAXIS-EXTENDED-VISIT)"
    )
    from core.tenancy import cross_tenant

    with cross_tenant("test data setup"):
        failed.save(update_fields=["failure_reason"])
    call = desk.call(turns=TURNS, booking=booked, outcome="booked")
    desk.call(outcome="escalated")
    user = staff_member(
        practice, Role.FRONT_DESK, first_name="Bartholomew", last_name="Featherstonehaugh-Smythe"
    )
    pages = [
        ("dashboard", "/p/alpha/"),
        ("bookings", "/p/alpha/bookings/?since=2000-01-01"),
        ("needs-attention", "/p/alpha/bookings/attention/"),
        ("resolve", f"/p/alpha/bookings/{failed.pk}/resolve/"),
        ("calls", "/p/alpha/calls/"),
        ("call", f"/p/alpha/calls/{call.pk}/"),
        ("locations", "/p/alpha/locations/"),
    ]
    with chromium() as browser:
        page = browser.new_page(viewport=PHONE)
        sign_in(page, live_server.url, user)
        for name, url in pages:
            response = page.goto(f"{live_server.url}{url}")
            assert response is not None and response.status == 200, (name, url)
            fits = page.evaluate(FITS)
            screenshot(page, f"phone-{name}")
            assert fits["overflow"] <= 0, (name, fits)
            assert not fits["bad"], (name, fits)
            nav = page.get_by_role("navigation", name="Main")
            assert nav.get_by_role("link", name="Calls").is_visible(), name
            assert page.get_by_role("button", name="Sign out").is_visible(), name
        # The transcript, revealed, fits too.
        page.goto(f"{live_server.url}/p/alpha/calls/{call.pk}/")
        page.get_by_label("Why do you need to read this transcript?").fill(
            "Checking what the caller asked for"
        )
        page.get_by_role("button", name="Reveal").click()
        page.locator("#transcript-turns").wait_for()
        fits = page.evaluate(FITS)
        screenshot(page, "phone-transcript")
        assert fits["overflow"] <= 0 and not fits["bad"], fits
