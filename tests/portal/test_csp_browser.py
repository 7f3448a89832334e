"""The Content-Security-Policy in Chromium: the main pages of every role load with no violation
(no inline script, handler or style left in a template, nothing htmx adds on its own)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from core.tenancy import cross_tenant
from tests.browser import chromium, sign_in
from tests.calls.test_escalation_world import clinic
from tests.factories import PASSWORD, LocationFactory, MembershipFactory, UserFactory, sign_baa
from tests.scheduling.factories import BlockFactory, WorkingHourFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

# Every violation the page reports, and what the console says about the policy.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(
    `${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`
  );
});
"""

PAGES_BY_ROLE = {
    Role.PRACTICE_MANAGER: [
        "dashboard",
        "location_list",
        "team",
        "scheduling_types",
        "scheduling_providers",
        "scheduling_schedule",
        "scheduling_console",
        "golive",
        "setup_api_clients",
        "setup_config",
        "ehr_connections",
        "calls_retention",
    ],
    Role.FRONT_DESK: [
        "frontdesk_bookings",
        "frontdesk_requests",
        "frontdesk_needs_attention",
        "calls_list",
    ],
    Role.CLINICIAN: ["escalation_protocols", "escalation_console", "oncall_rota"],
    Role.COMPLIANCE_OFFICER: ["compliance_audit", "compliance_baa_list"],
}


class Recorder:
    def __init__(self, page) -> None:
        self.page = page
        self.console: list[str] = []
        page.add_init_script(RECORD_VIOLATIONS)
        page.on(
            "console",
            lambda m: self.console.append(m.text) if "Content Security Policy" in m.text else None,
        )

    def take(self) -> list[str]:
        found = self.page.evaluate("window.__cspViolations") + self.console
        self.page.evaluate("window.__cspViolations = []")
        self.console.clear()
        return found


def visit(page, recorder: Recorder, url: str) -> list[str]:
    response = page.goto(url)
    assert response is not None and response.status == 200, url
    assert "script-src 'self'" in response.headers["content-security-policy"], url
    page.wait_for_load_state("networkidle")
    return recorder.take()


def test_the_main_pages_of_every_role_load_without_a_policy_violation(live_server):
    surgery = clinic(slug="alpha", name="Alpha Surgery")
    practice = surgery.practice
    sign_baa(practice)
    now = timezone.now()
    surgery.protocol("Post-op bleeding", ["bleeding"])
    surgery.on_call("martinez", now - timedelta(hours=1), now + timedelta(hours=12))
    with cross_tenant("test data setup"):
        location = LocationFactory(practice=practice)
        provider = surgery.providers["martinez"]
        WorkingHourFactory(
            practice=practice,
            provider=provider,
            days=["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"],
        )
        BlockFactory(practice=practice, location=location)

    violations: dict[str, list[str]] = {}
    with chromium() as browser:
        for role, names in PAGES_BY_ROLE.items():
            user = UserFactory(totp=True)
            MembershipFactory(user=user, practice=practice, role=role)
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            recorder = Recorder(page)
            if role == Role.PRACTICE_MANAGER:
                # The recorder works: a style attribute set from script is refused and seen.
                visit(page, recorder, f"{live_server.url}/accounts/login/")
                page.evaluate("document.body.setAttribute('style', 'color: red')")
                page.wait_for_function("window.__cspViolations.length > 0")
                assert any("style-src" in v for v in recorder.take())
            sign_in(page, live_server.url, user)  # the sign-in and second-factor pages
            violations[f"{role} sign-in"] = recorder.take()
            for name in names:
                url = live_server.url + reverse(name, kwargs={"practice_slug": "alpha"})
                violations[name] = visit(page, recorder, url)
            if role == Role.PRACTICE_MANAGER:
                # A provider's week: the grid is laid out from data attributes by our script.
                schedule = reverse("scheduling_schedule", kwargs={"practice_slug": "alpha"})
                violations["a provider's week"] = visit(
                    page, recorder, f"{live_server.url}{schedule}?show=provider-{provider.pk}"
                )
                items = page.locator(".week-grid .item")
                assert items.count() >= 5
                assert items.first.evaluate("el => getComputedStyle(el).gridRowStart") != "auto"
            if role == Role.CLINICIAN:
                bar = page.locator(".grid .bar span").first
                assert bar.evaluate("el => el.style.width").endswith("%")
            context.close()

        # Enrolment: the QR code page of an account without an authenticator yet.
        newcomer = UserFactory()
        MembershipFactory(user=newcomer, practice=practice, role=Role.FRONT_DESK)
        page = browser.new_page()
        recorder = Recorder(page)
        page.goto(f"{live_server.url}/accounts/login/")
        page.get_by_label("Email or username").fill(newcomer.username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Continue").click()
        page.wait_for_url("**/accounts/2fa/setup/**")
        assert page.locator(".qr svg").count() == 1
        page.wait_for_load_state("networkidle")
        violations["enrolment"] = recorder.take()

    assert {page: found for page, found in violations.items() if found} == {}
