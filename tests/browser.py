"""Playwright for Python driving the system Chromium (never a downloaded browser build)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.db import connections
from playwright.sync_api import Browser, sync_playwright

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


def chromium_path() -> str:
    path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        raise RuntimeError(
            "Chromium is missing: `make test` installs it (scripts/ensure_chromium.sh)"
        )
    return path


@contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium_path(),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            yield browser
        finally:
            browser.close()
            # Inside Playwright's sync API, Django's connection handler hands out connections
            # of their own (not the test's): close them here, or each stays open after the
            # test and the test database cannot be dropped at the end of the run.
            connections.close_all()


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def sign_in(page, base_url: str, user) -> None:
    """Password and TOTP through the real forms, for a user enrolled by UserFactory(totp=True);
    returns once the browser has left the sign-in pages."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from tests.conftest import current_totp
    from tests.factories import PASSWORD

    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Email or username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/accounts/2fa/verify/**")
    page.get_by_label("Code").fill(current_totp(TOTPDevice.objects.get(user=user, confirmed=True)))
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(lambda url: "/accounts/" not in url)


def signed_in_page(browser: Browser, base_url: str, user, width: int = 1280, height: int = 900):
    """A new page of `width` x `height`, signed in as `user` with both factors."""
    page = browser.new_page(viewport={"width": width, "height": height})
    sign_in(page, base_url, user)
    return page
