"""Support impersonation: vendor support only, with 2FA, reason and ticket, at most an hour,
read-only unless allowed, a banner on every page, and every audit row naming the real user."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.models import Role, VendorRole
from compliance import audit, impersonation
from compliance.models import AccessEvent, ImpersonationSession
from core.tenancy import cross_tenant, tenant_context
from tests.conftest import verify_second_factor
from tests.factories import UserFactory, staff_member

pytestmark = pytest.mark.django_db


def start(client, practice_slug="alpha", **extra):
    data = {
        "practice": practice_slug,
        "reason": "caller cannot book cleanings",
        "ticket": "SUP-42",
        "minutes": 30,
    }
    data.update(extra)
    return client.post("/support/impersonate/", data)


def events(action):
    with cross_tenant("test"):
        return list(AccessEvent.objects.filter(action=action).order_by("id"))


def test_support_sees_the_practice_read_only_with_a_banner_and_everything_is_attributed(
    client, support, practice, other_practice
):
    assert client.get("/p/alpha/").status_code == 404  # no session, no access
    response = start(client)
    assert response.status_code == 302 and response["Location"] == "/p/alpha/"
    with tenant_context(practice):
        session = ImpersonationSession.objects.get()
    assert session.support_user == support and not session.write_allowed
    assert session.expires_at - session.started_at == timedelta(minutes=30)

    page = client.get("/p/alpha/").content.decode()
    assert 'id="impersonation-banner"' in page and "SUP-42" in page and "read-only" in page
    assert client.get("/p/beta/").status_code == 404  # only the practice of the session
    assert (
        client.post("/p/alpha/compliance/support-access/", {"allow_write": "on"}).status_code == 403
    )

    client.get("/p/alpha/compliance/audit/verify/", HTTP_X_REQUEST_ID="support-req-00001")
    (verified,) = events("audit.verify")
    assert verified.actor_user_id == support.pk and verified.impersonation_session_id == session.pk
    assert verified.request_id == "support-req-00001"
    assert client.get("/p/alpha/compliance/audit/export.csv").status_code == 403  # no exports
    (started,) = events("impersonation.start")
    assert started.practice_id == practice.pk and started.actor_user_id == support.pk
    assert (
        started.reason == "caller cannot book cleanings" and started.details["ticket"] == "SUP-42"
    )

    client.post("/support/impersonate/end/")
    assert client.get("/p/alpha/").status_code == 404
    (ended,) = events("impersonation.end")
    assert ended.reason == "ended by support" and ended.object_ids == [str(session.pk)]
    audit.seal_now()
    with cross_tenant("test"):
        assert audit.verify_chain(audit.chain_name(practice.pk)).ok


def test_a_session_expires_by_itself(client, support, practice):
    start(client)
    with tenant_context(practice), connection.cursor() as cur:
        cur.execute(
            "UPDATE compliance_impersonationsession SET started_at = now() - interval '2 hours', "
            "expires_at = now() - interval '61 minutes'"
        )
    assert client.get("/p/alpha/").status_code == 404
    (ended,) = events("impersonation.end")
    assert ended.reason == "expired"
    with tenant_context(practice):
        assert ImpersonationSession.objects.get().end_reason == "expired"


def test_practice_allowing_writes_applies_to_the_next_session(client, support, practice):
    manager = staff_member(practice, Role.PRACTICE_MANAGER)
    impersonation.set_write_access(practice, True, manager)
    start(client)
    with tenant_context(practice):
        assert ImpersonationSession.objects.get().write_allowed


def test_only_verified_vendor_support_who_belong_to_no_practice_may_start(client, practice):
    member = staff_member(practice, Role.FRONT_DESK, vendor_role=VendorRole.SUPPORT, is_staff=True)
    verify_second_factor(client, member)
    assert client.get("/support/impersonate/").status_code == 403
    assert start(client).status_code == 403

    client.logout()
    staff = staff_member(practice, Role.PRACTICE_MANAGER)
    verify_second_factor(client, staff)
    assert start(client).status_code == 403

    client.logout()
    unverified = UserFactory(totp=True, vendor_role=VendorRole.SUPPORT, is_staff=True)
    client.force_login(unverified)  # password only: the 2FA wall comes first
    assert client.get("/support/impersonate/")["Location"].startswith("/accounts/2fa/verify/")
    with tenant_context(practice):
        assert not ImpersonationSession.objects.exists()


def test_a_reason_and_a_ticket_are_required_and_an_hour_is_the_most(client, support, practice):
    assert start(client, reason="").status_code == 200  # the form again, with errors
    assert start(client, ticket="").status_code == 200
    assert start(client, minutes=61).status_code == 200
    now = timezone.now()
    with tenant_context(practice), pytest.raises(IntegrityError), transaction.atomic():
        ImpersonationSession.objects.create(
            practice=practice,
            support_user=support,
            reason="x",
            ticket="y",
            started_at=now,
            expires_at=now + timedelta(minutes=61),
        )


def test_managers_see_the_support_access_history(client, support, practice):
    start(client)
    client.post("/support/impersonate/end/")
    client.logout()
    manager = staff_member(practice, Role.PRACTICE_MANAGER)
    verify_second_factor(client, manager)
    page = client.get("/p/alpha/compliance/support-access/").content.decode()
    assert "SUP-42" in page and "caller cannot book cleanings" in page
    client.post("/p/alpha/compliance/support-access/", {"allow_write": "on"})
    from compliance.models import SupportAccess

    with tenant_context(practice):
        assert SupportAccess.objects.get().allow_write
