"""Accounts: the 2FA wall on every route, enrolment, backup codes, session keys, idle sign-out
(the password step's throttle: test_sign_in_throttle.py)."""

from __future__ import annotations

import base64
import re
import time

import pytest
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Role
from portal.middleware import is_public
from tests.conftest import current_totp, verify_second_factor
from tests.factories import PASSWORD, MembershipFactory, UserFactory
from tests.urlconf import routes

pytestmark = pytest.mark.django_db

PUBLIC_ROUTE_NAMES = {"login", "healthz", "favicon"}
SECOND_FACTOR_ROUTE_NAMES = {"two_factor_setup", "two_factor_verify", "logout"}
# Machine routes authenticate per request (OAuth2 bearer tokens, signed webhooks), not with a
# session; tests/receptionist_api/test_api.py walks the API routes without a token, and the webhook
# tests reject unsigned deliveries, tests/receptionist_api/test_voice_mcp.py /mcp/ without a token.
MACHINE_PREFIXES = ("/api/", "/integrations/webhooks/", "/mcp/")


def protected_paths() -> list[str]:
    paths = []
    for route in routes():
        path = route.fill(practice_slug="alpha")
        if path.startswith(MACHINE_PREFIXES):
            continue
        if is_public(path):
            assert route.name in PUBLIC_ROUTE_NAMES, f"unexpected public route {path}"
            continue
        if route.name in SECOND_FACTOR_ROUTE_NAMES:
            continue
        paths.append(path)
    return paths


def test_the_route_walk_sees_the_whole_url_conf():
    paths = protected_paths()
    assert "/p/alpha/locations/1/" in paths
    assert "/admin/" in paths and any(p.startswith("/admin/portal/practice/") for p in paths)
    assert len(paths) > 30


def test_anonymous_visitors_are_sent_to_sign_in_from_every_protected_url(client, practice):
    for path in protected_paths():
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith("/accounts/login/"), path


def test_a_password_alone_opens_nothing(client, manager):
    client.force_login(manager)
    for path in protected_paths():
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith("/accounts/2fa/verify/"), path


def test_without_an_authenticator_every_url_leads_to_enrolment(client, practice):
    user = UserFactory()
    MembershipFactory(user=user, practice=practice)
    client.force_login(user)
    response = client.get("/p/alpha/")
    assert response["Location"].startswith("/accounts/2fa/setup/")


def test_sign_in_then_enrol_totp_from_the_qr_page_then_use_a_backup_code(client, practice):
    user = UserFactory()
    MembershipFactory(user=user, practice=practice, role=Role.FRONT_DESK)

    response = client.post(
        "/accounts/login/",
        {"username": user.username.upper(), "password": PASSWORD, "next": "/p/alpha/"},
    )
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/2fa/setup/")

    page = client.get(response["Location"]).content.decode()
    assert "<svg" in page
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page).group(1)
    device = TOTPDevice.objects.get(user=user, confirmed=False)

    bad = client.post("/accounts/2fa/setup/", {"token": "000000", "next": "/p/alpha/"})
    assert "did not match" in bad.content.decode()
    # django-otp backs off after a failure; a person retries after that moment has passed.
    TOTPDevice.objects.filter(pk=device.pk).update(
        throttling_failure_count=0, throttling_failure_timestamp=None
    )

    # The code comes from the key as a phone would read it off the page.
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    totp = TOTP(key, device.step, device.t0, device.digits)
    done = client.post(
        "/accounts/2fa/setup/", {"token": f"{totp.token():06d}", "next": "/p/alpha/"}
    )
    codes = re.findall(r"<li><code>(\w+)</code></li>", done.content.decode())
    assert len(codes) == 10
    assert client.get("/p/alpha/").status_code == 200

    # A backup code signs in once, and only once.
    client.logout()
    client.force_login(user)
    assert client.post("/accounts/2fa/verify/", {"token": codes[0]}).status_code == 302
    assert client.get("/p/alpha/").status_code == 200
    client.logout()
    client.force_login(user)
    again = client.post("/accounts/2fa/verify/", {"token": codes[0]})
    assert again.status_code == 200 and "did not match" in again.content.decode()
    assert client.get("/p/alpha/").status_code == 302


def test_the_session_key_changes_at_the_second_factor(client, manager):
    response = client.post("/accounts/login/", {"username": manager.username, "password": PASSWORD})
    assert response["Location"].startswith("/accounts/2fa/verify/")
    before = client.session.session_key
    device = TOTPDevice.objects.get(user=manager, confirmed=True)
    assert client.post("/accounts/2fa/verify/", {"token": current_totp(device)}).status_code == 302
    after = client.session.session_key
    assert after != before
    assert client.get("/p/alpha/").status_code == 200  # the new key is the signed-in session
    from django.contrib.sessions.backends.db import SessionStore

    assert not SessionStore().exists(before)


def test_the_session_key_changes_when_enrolment_completes(client, practice):
    user = UserFactory()
    MembershipFactory(user=user, practice=practice)
    client.post("/accounts/login/", {"username": user.username, "password": PASSWORD})
    assert client.get("/accounts/2fa/setup/").status_code == 200
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    before = client.session.session_key
    done = client.post("/accounts/2fa/setup/", {"token": current_totp(device)})
    assert done.status_code == 200 and "<code>" in done.content.decode()
    assert client.session.session_key != before
    assert client.get("/p/alpha/").status_code == 200


def test_fifteen_idle_minutes_sign_you_out(manager_client, settings):
    assert manager_client.get("/p/alpha/").status_code == 200
    session = manager_client.session
    session["last_activity"] = time.time() - settings.IDLE_TIMEOUT_SECONDS - 1
    session.save()
    response = manager_client.get("/p/alpha/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert manager_client.get("/p/alpha/")["Location"].startswith("/accounts/login/")


def test_activity_keeps_the_session_alive(manager_client, settings):
    session = manager_client.session
    session["last_activity"] = time.time() - settings.IDLE_TIMEOUT_SECONDS + 60
    session.save()
    assert manager_client.get("/p/alpha/").status_code == 200


def test_practice_staff_never_reach_the_admin(manager_client):
    response = manager_client.get("/admin/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_vendor_staff_reach_the_admin_only_after_their_second_factor(client):
    support = UserFactory(totp=True, vendor_role="support", is_staff=True)
    client.force_login(support)
    assert client.get("/admin/").status_code == 302
    device = TOTPDevice.objects.get(user=support)
    client.post("/accounts/2fa/verify/", {"token": current_totp(device)})
    assert client.get("/admin/").status_code == 200


def test_members_only_see_pages_their_role_allows(client, practice):
    front = UserFactory(totp=True)
    MembershipFactory(user=front, practice=practice, role=Role.FRONT_DESK)
    verify_second_factor(client, front)
    assert client.get("/p/alpha/").status_code == 200
    assert client.get("/p/alpha/team/").status_code == 403


def test_open_redirects_are_refused_after_sign_in(client, manager):
    response = client.post(
        "/accounts/login/",
        {"username": manager.username, "password": PASSWORD, "next": "https://evil.example/"},
    )
    assert "evil.example" not in response["Location"]


def test_healthz_reports_database_and_broker(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


def test_pages_carry_a_request_id(manager_client):
    response = manager_client.get("/p/alpha/", HTTP_X_REQUEST_ID="abcdef0123456789")
    assert response["X-Request-ID"] == "abcdef0123456789"
    assert len(manager_client.get("/p/alpha/")["X-Request-ID"]) == 32


def test_usernames_are_unique_regardless_of_case(manager):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        UserFactory(username=manager.username.upper(), email="other@example.test")
