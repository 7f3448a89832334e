"""Idle sign-out in Chromium: the page warns before signing out, "Stay signed in" keeps the
session (the server's clock too), and when the time runs out the sign-in page says why."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from accounts.models import Role
from tests.browser import chromium, screenshot, sign_in
from tests.factories import MembershipFactory, PracticeFactory, UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def test_the_page_warns_before_the_idle_sign_out_and_the_sign_in_page_says_why(
    live_server, settings
):
    settings.IDLE_TIMEOUT_SECONDS = 8
    settings.IDLE_WARNING_SECONDS = 5
    practice = PracticeFactory(slug="alpha", name="Alpha Dental")
    user = UserFactory(totp=True)
    MembershipFactory(user=user, practice=practice, role=Role.FRONT_DESK)
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        sign_in(page, live_server.url, user)
        page.goto(f"{live_server.url}/p/alpha/locations/")
        warning = page.locator("#idle-warning")
        expect(warning).to_be_hidden()
        expect(warning).to_be_visible(timeout=10_000)
        expect(warning).to_contain_text("You will be signed out in")
        screenshot(page, "idle-warning")
        page.get_by_role("button", name="Stay signed in").click()
        expect(warning).to_be_hidden()
        assert page.url.endswith("/p/alpha/locations/")

        # Left alone this time: signed out, and told why.
        page.wait_for_url("**/accounts/login/**", timeout=20_000)
        expect(page.locator("#signed-out-reason")).to_contain_text("without activity")
        screenshot(page, "idle-signed-out")
        page.goto(f"{live_server.url}/p/alpha/locations/")
        assert "/accounts/login/" in page.url  # the server signed the session out too
