"""PHI in a support session: every read states its own reason and is attributed to the support
user and the session; lists show support nothing of the patient (so read nothing); exports
are not support's, read-only or not."""

from __future__ import annotations

import pytest

from accounts.models import Role
from compliance import audit, impersonation
from compliance.context import audit_context
from compliance.models import AccessEvent, AuditAction, ImpersonationSession
from compliance.support_policy import SupportReasonRequired
from core.tenancy import tenant_context
from tests.calls.factories import TURNS, desk_for
from tests.conftest import verify_second_factor
from tests.factories import sign_baa, staff_member

pytestmark = pytest.mark.django_db

REASON = "Caller says the booking shows the wrong name (SUP-9)"


@pytest.fixture
def session(client, support, practice) -> ImpersonationSession:
    """A read-only support session (the practice never allowed writes)."""
    sign_baa(practice)
    response = client.post(
        "/support/impersonate/",
        {"practice": "alpha", "reason": "booking issue", "ticket": "SUP-9", "minutes": 30},
    )
    assert response.status_code == 302
    with tenant_context(practice):
        found = ImpersonationSession.objects.get()
    assert not found.write_allowed
    return found


def reads(practice) -> list[AccessEvent]:
    with tenant_context(practice):
        return list(AccessEvent.objects.filter(action=AuditAction.PHI_READ).order_by("id"))


def test_patient_details_need_a_reason_and_the_read_names_support_and_the_session(
    client, support, practice, session
):
    booking = desk_for(practice).booking()
    url = f"/p/alpha/bookings/{booking.pk}/patient/"

    asked = client.get(url)
    assert asked.status_code == 403 and "Ana Lopez" not in asked.content.decode()
    assert 'name="reason"' in asked.content.decode()
    assert client.post(url, {"reason": "  "}).status_code == 403
    assert reads(practice) == []

    shown = client.post(url, {"reason": REASON})  # a read: allowed in a read-only session
    assert shown.status_code == 200 and "Ana Lopez" in shown.content.decode()
    [event] = reads(practice)
    assert event.reason == REASON and "front desk" not in event.reason
    assert event.actor_user_id == support.pk and event.impersonation_session_id == session.pk
    assert event.object_ids == [str(booking.pk)]


def test_lists_show_support_no_patient_and_record_no_read(client, practice, session):
    desk = desk_for(practice)
    booking = desk.booking()
    desk.call(turns=TURNS, booking=booking, outcome="booked")
    page = client.get("/p/alpha/bookings/?since=2000-01-01").content.decode()
    assert f'id="booking-{booking.pk}"' in page and "A. L." not in page and "A.L." not in page
    assert f'id="patient-reason-{booking.pk}"' in page  # the way to read one, with a reason
    calls = client.get("/p/alpha/calls/").content.decode()
    assert "0101" not in calls and "hidden in support sessions" in calls
    assert reads(practice) == []


def test_a_transcript_in_a_read_only_session_is_read_with_a_reason_attributed_to_support(
    client, support, practice, session
):
    call = desk_for(practice).call(turns=TURNS)
    detail = client.get(f"/p/alpha/calls/{call.pk}/").content.decode()
    assert "0101" not in detail and "gums bleed" not in detail
    refused = client.post(f"/p/alpha/calls/{call.pk}/reveal/", {"reason": ""})
    assert "gums bleed" not in refused.content.decode()
    assert reads(practice) == []

    shown = client.post(f"/p/alpha/calls/{call.pk}/reveal/", {"reason": REASON})
    assert shown.status_code == 200 and "my gums bleed when I brush" in shown.content.decode()
    [event] = reads(practice)
    assert (event.reason, event.actor_user_id, event.impersonation_session_id) == (
        REASON,
        support.pk,
        session.pk,
    )


def test_a_read_only_session_exports_nothing(client, practice, session):
    assert client.get("/p/alpha/compliance/audit/export.csv").status_code == 403
    assert client.get("/p/alpha/compliance/audit/export.jsonl").status_code == 403
    assert client.get("/p/alpha/configuration/download/").status_code == 403
    with tenant_context(practice):
        assert not AccessEvent.objects.filter(
            action__in=[AuditAction.AUDIT_EXPORT, AuditAction.CONFIG_EXPORT]
        ).exists()


def test_any_phi_read_recorded_in_a_session_without_its_own_reason_is_refused(practice, session):
    """The rule lives in the audit trail's writer, so a page that forgets it fails closed."""
    with audit_context(impersonation_session_id=session.pk), pytest.raises(SupportReasonRequired):
        audit.record(AuditAction.PHI_READ, practice=practice, object_type="x", object_ids=[1])
    assert reads(practice) == []
    with audit_context(impersonation_session_id=session.pk):
        audit.record(AuditAction.PHI_READ, practice=practice, reason=REASON)
    assert [e.reason for e in reads(practice)] == [REASON]


def test_staff_still_reveal_a_patient_without_typing_a_reason(client, practice):
    sign_baa(practice)
    booking = desk_for(practice).booking()
    staff = staff_member(practice, Role.FRONT_DESK)
    verify_second_factor(client, staff)
    page = client.get(f"/p/alpha/bookings/{booking.pk}/patient/").content.decode()
    assert "Ana Lopez" in page
    [event] = reads(practice)
    assert event.impersonation_session_id is None and event.actor_user_id == staff.pk


def test_support_cannot_look_a_caller_up_by_number(client, practice, session):
    desk = desk_for(practice)
    desk.call(phone="+1 (555) 555-0101")
    other = desk.call(phone="+1 (555) 555-0199")
    assert client.post("/p/alpha/calls/", {"phone": "+15555550101"}).status_code == 403
    owner = staff_member(practice, Role.PRACTICE_MANAGER)
    impersonation.set_write_access(practice, True, owner)
    client.post(  # a new session, with writes allowed
        "/support/impersonate/",
        {"practice": "alpha", "reason": "booking issue", "ticket": "SUP-9", "minutes": 30},
    )
    page = client.post("/p/alpha/calls/", {"phone": "+15555550101"}).content.decode()
    assert f"/calls/{other.pk}/" in page  # the number was not applied: nothing is learned
    assert reads(practice) == []
