"""Vendor support's day: signing in lands on the practice directory; their open support
session is listed (and can be ended) from any browser they sign in with, never by another
support user; a read-only session marks its pages read-only and a refused change says why."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import Role, VendorRole
from compliance.models import AccessEvent, ImpersonationSession
from core.tenancy import cross_tenant, tenant_context
from scheduling.models import AppointmentType
from tests.conftest import verify_second_factor
from tests.factories import UserFactory, staff_member

pytestmark = pytest.mark.django_db


def support_user(username="support@hello.test"):
    return UserFactory(totp=True, username=username, vendor_role=VendorRole.SUPPORT, is_staff=True)


def signed_in(user) -> Client:
    client = Client()
    verify_second_factor(client, user)
    return client


def start(client, slug="alpha") -> ImpersonationSession:
    response = client.post(
        "/support/impersonate/",
        {
            "practice": slug,
            "reason": "agent books the wrong type",
            "ticket": "SUP-9",
            "minutes": 30,
        },
    )
    assert response.status_code == 302
    with cross_tenant("test"):
        return ImpersonationSession.objects.filter(ended_at__isnull=True).latest("id")


def test_support_staff_land_on_their_directory(practice):
    client = signed_in(support_user())
    home = client.get("/")
    assert home.status_code == 302 and home["Location"] == "/support/"
    page = client.get("/support/").content.decode()
    assert 'id="support-directory-link"' in page and "vendor administration" not in page


def test_practice_staff_still_land_on_their_practice(practice):
    member = staff_member(practice, Role.FRONT_DESK)
    client = signed_in(member)
    assert client.get("/")["Location"] == "/p/alpha/"
    assert 'id="support-directory-link"' not in client.get("/p/alpha/").content.decode()


def test_an_open_session_is_seen_and_ended_from_another_browser(practice):
    user = support_user()
    first = signed_in(user)
    session = start(first)
    assert first.get("/p/alpha/").status_code == 200

    second = Client()
    second.force_login(user)  # the same person in another browser (second factor below)
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from tests.conftest import current_totp

    device = TOTPDevice.objects.get(user=user, confirmed=True)
    device.last_t = -1  # a new code window is not needed for a second browser in tests
    device.save()
    assert second.post("/accounts/2fa/verify/", {"token": current_totp(device)}).status_code == 302
    listing = second.get("/support/").content.decode()
    assert f'id="session-{session.pk}"' in listing and "started in another browser" in listing
    assert 'id="impersonation-banner"' not in listing  # this browser is not in the session

    ended = second.post(f"/support/impersonate/{session.pk}/end/")
    assert ended["Location"] == "/support/"
    with cross_tenant("test"):
        session.refresh_from_db()
        [event] = AccessEvent.objects.filter(action="impersonation.end")
    assert session.ended_at is not None and session.end_reason == "ended by support"
    assert event.object_ids == [str(session.pk)]
    # The first browser's session is over too: no banner, and the practice is closed to it.
    assert first.get("/p/alpha/").status_code == 404
    assert f'id="session-{session.pk}"' not in first.get("/support/").content.decode()


def test_another_support_user_cannot_end_my_session(practice):
    mine = start(signed_in(support_user()))
    theirs = signed_in(support_user("other@hello.test"))
    assert f'id="session-{mine.pk}"' not in theirs.get("/support/").content.decode()
    response = theirs.post(f"/support/impersonate/{mine.pk}/end/", follow=True)
    assert "is not one of your open sessions" in response.content.decode()
    with cross_tenant("test"):
        mine.refresh_from_db()
    assert mine.ended_at is None


def test_a_read_only_session_marks_pages_and_a_refused_htmx_change_says_why(practice):
    with cross_tenant("test"):
        kind = AppointmentType.objects.create(
            practice=practice, key="clean", name="Cleaning", minutes=30
        )
    client = signed_in(support_user())
    start(client)
    page = client.get(f"/p/alpha/scheduling/types/{kind.pk}/").content.decode()
    assert "<body" in page and "data-read-only-session" in page
    # Support's own pages stay usable: starting another session, ending this one.
    assert "data-read-only-session" not in client.get("/support/impersonate/").content.decode()
    refused = client.post(
        f"/p/alpha/scheduling/types/{kind.pk}/phrases/",
        {"text": "teeth cleaned"},
        HTTP_HX_REQUEST="true",
    )
    assert refused.status_code == 403
    body = refused.content.decode()
    assert 'id="denied-reason"' in body and "read-only" in body and "Nothing was changed" in body
    with tenant_context(practice):
        assert not kind.phrases.exists()


def test_a_write_enabled_session_is_not_marked_read_only(practice):
    from compliance import impersonation

    owner = staff_member(practice, Role.PRACTICE_MANAGER)
    impersonation.set_write_access(practice, True, owner)
    client = signed_in(support_user())
    start(client)
    assert "data-read-only-session" not in client.get("/p/alpha/").content.decode()
