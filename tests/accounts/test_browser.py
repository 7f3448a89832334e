"""A person in Chromium: sign in, enrol an authenticator from the QR page, reach the dashboard."""

from __future__ import annotations

import base64

import pytest
from django.db import connection
from django_otp.oath import TOTP

from accounts.models import Role
from tests.browser import chromium, screenshot
from tests.factories import (
    PASSWORD,
    LocationFactory,
    MembershipFactory,
    PracticeFactory,
    UserFactory,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def test_sign_in_enrol_totp_see_dashboard_and_be_refused_another_practice(live_server):
    mine = PracticeFactory(slug="alpha", name="Alpha Dental")
    PracticeFactory(slug="beta", name="Beta Surgery")
    LocationFactory.create_batch(2, practice=mine)
    user = UserFactory(first_name="Robin", last_name="Diaz")
    MembershipFactory(user=user, practice=mine, role=Role.PRACTICE_MANAGER)

    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{live_server.url}/")
        assert "/accounts/login/" in page.url
        page.get_by_label("Email or username").fill(user.username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Continue").click()

        page.wait_for_url("**/accounts/2fa/setup/**")
        assert page.locator(".qr svg").count() == 1
        screenshot(page, "foundation-totp-enrolment")
        secret = page.locator("#totp-secret").inner_text().strip()
        key = base64.b32decode(secret + "=" * (-len(secret) % 8))
        page.get_by_label("Code").fill(f"{TOTP(key).token():06d}")
        page.get_by_role("button", name="Confirm").click()

        assert page.locator("#backup-codes li").count() == 10
        page.get_by_role("link", name="I have saved them").click()
        page.wait_for_url("**/p/alpha/")
        assert page.get_by_role("heading", name="Alpha Dental").is_visible()
        assert page.locator("#count-locations").inner_text() == "2"
        screenshot(page, "foundation-dashboard")

        response = page.goto(f"{live_server.url}/p/beta/")
        assert response is not None and response.status == 404
        assert "Beta Surgery" not in page.content()


def test_database_sessions_opened_while_the_browser_runs_are_closed_with_it():
    """Under Playwright's sync API a test's queries run on a connection of their own; left open,
    it keeps the test database from being dropped at the end of the run."""
    with chromium(), connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        [(inside,)] = cur.fetchall()
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [inside])
        [(still_open,)] = cur.fetchall()
    assert still_open == 0
