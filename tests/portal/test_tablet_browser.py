"""The portal at tablet width: every page a person with every role reaches fits the screen (no
sideways scrolling) and keeps its navigation in reach."""

from __future__ import annotations

import pytest

from accounts.models import Role
from tests.browser import chromium, screenshot, signed_in_page
from tests.factories import (
    LocationFactory,
    MembershipFactory,
    PracticeFactory,
    UserFactory,
    sign_baa,
    staff_member,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

PAGES = [
    ("Dashboard", "/p/alpha/"),
    ("Go-live", "/p/alpha/setup/golive/"),
    ("Bookings", "/p/alpha/bookings/"),
    ("Needs attention", "/p/alpha/bookings/attention/"),
    ("Calls", "/p/alpha/calls/"),
    ("Appointment types", "/p/alpha/scheduling/types/"),
    ("Schedule", "/p/alpha/scheduling/schedule/"),
    ("Protocols", "/p/alpha/protocols/"),
    ("On call", "/p/alpha/on-call/"),
    ("Audit log", "/p/alpha/compliance/audit/"),
]


def test_every_main_page_fits_a_tablet_without_sideways_scrolling(live_server):
    practice = PracticeFactory(slug="alpha", name="Alpha Dental")
    LocationFactory(practice=practice)
    user = UserFactory(totp=True, first_name="Ada", last_name="Allroles")
    for role in Role.values:
        MembershipFactory(user=user, practice=practice, role=role)
    sign_baa(practice)

    with chromium() as browser:
        page = signed_in_page(browser, live_server.url, user, 768, 1024)
        nav = page.get_by_role("navigation", name="Main")
        for label, _ in PAGES:
            link = nav.get_by_role("link", name=label, exact=True)
            assert link.is_visible(), label
            link.click()
            page.wait_for_load_state()
            overflow = page.evaluate(
                "() => document.documentElement.scrollWidth - window.innerWidth"
            )
            assert overflow <= 0, f"{label} scrolls sideways by {overflow}px at 768px"
            if label == "Dashboard":
                screenshot(page, "tablet-dashboard")
        screenshot(page, "tablet-audit-log")


def test_a_page_closed_by_the_baa_gate_says_why_and_keeps_the_navigation(live_server):
    practice = PracticeFactory(slug="alpha", name="Alpha Dental")
    user = staff_member(practice, Role.FRONT_DESK)

    with chromium() as browser:
        page = signed_in_page(browser, live_server.url, user, 768, 1024)
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Calls").click()
        assert (
            "No executed business associate agreement"
            in page.locator("#denied-reason").inner_text()
        )
        assert page.get_by_role("link", name="Back to the dashboard").is_visible()
        screenshot(page, "tablet-baa-gate")
