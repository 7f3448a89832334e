"""Front desk in Chromium: sign in with both factors, find a booked call, open it, reveal the
masked transcript with a reason (htmx, no page reload), see the audit event it left."""

from __future__ import annotations

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Role
from calls.models import EncounterNote, NoteStatus
from compliance.models import AccessEvent
from core.tenancy import tenant_context
from tests.browser import chromium, screenshot
from tests.calls.factories import TURNS, desk_for
from tests.conftest import current_totp
from tests.factories import PASSWORD, MembershipFactory, PracticeFactory, UserFactory, sign_baa

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def test_front_desk_reveals_a_transcript_with_a_reason(live_server):
    practice = PracticeFactory(slug="alpha", name="Alpha Dental", timezone="America/New_York")
    sign_baa(practice)
    desk = desk_for(practice)
    call = desk.call(turns=TURNS, booking=desk.booking(), outcome="booked")
    desk.call(outcome="message_taken", phone="+1 555 555 0177")
    with tenant_context(practice):
        EncounterNote.objects.create(
            practice=practice,
            call=call,
            booking=call.booking,
            status=NoteStatus.WRITTEN,
            ehr_document_id=12,
        )
    user = UserFactory(first_name="Robin", last_name="Diaz", totp=True)
    MembershipFactory(user=user, practice=practice, role=Role.FRONT_DESK)
    device = TOTPDevice.objects.get(user=user)

    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{live_server.url}/p/alpha/calls/")
        page.get_by_label("Email or username").fill(user.username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Continue").click()
        page.get_by_label("Code").fill(current_totp(device))
        page.get_by_role("button", name="Verify").click()

        page.get_by_role("link", name="Calls").first.click()
        page.wait_for_url("**/p/alpha/calls/")
        rows = page.locator("#call-rows tbody tr")
        assert rows.count() == 2
        page.get_by_label("Outcome").select_option("booked")
        page.get_by_role("button", name="Search").click()
        assert rows.count() == 1 and "Booked" in rows.first.inner_text()
        rows.first.get_by_role("link").click()

        assert page.locator("#note-status").inner_text().startswith("Written to the EHR")
        assert page.locator("#transcript-masked").is_visible()
        assert "gums bleed" not in page.content()
        reason = page.get_by_label("Why do you need to read this transcript?")
        page.get_by_role("button", name="Reveal").click()  # no reason: the browser refuses
        assert reason.evaluate("e => e.validity.valueMissing")
        assert page.locator("#transcript-masked").is_visible()
        reason.fill("Patient called back to ask what was booked")
        page.get_by_role("button", name="Reveal").click()
        page.locator("#transcript-turns").wait_for()
        assert "my gums bleed when I brush" in page.locator("#transcript-turns").inner_text()
        screenshot(page, "calls-transcript-revealed")

    with tenant_context(practice):
        [event] = AccessEvent.objects.filter(object_type="calls.transcript")
    assert event.reason == "Patient called back to ask what was booked"
    assert event.actor_user_id == user.pk and event.object_ids == [str(call.pk)]
