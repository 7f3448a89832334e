"""The connection page's Nextech form against the Nextech sandbox (a real process): the
practice enters its Select API URL, practice id, location id and service user; the portal
stores them encrypted, obtains a token and reads the location, and says what it found in the
words `manage.py test_connection` uses. Faults come from the sandbox, never from patching."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.db import connection as db

from accounts.models import Role, VendorRole
from compliance import impersonation
from compliance.models import ChangeEntry
from core.tenancy import cross_tenant, tenant_context
from ehr.models import ConnectionKind, ConnectionState, EHRConnection
from ehr.nextech.port import reset_ports
from tests.conftest import verify_second_factor
from tests.factories import LocationFactory, UserFactory, sign_baa, staff_member

from .conftest import PASSWORD, NextechWorld

pytestmark = pytest.mark.django_db


@dataclass
class Page:
    client: object
    practice: object
    location: object
    nextech: NextechWorld

    @property
    def url(self) -> str:
        return f"/p/{self.practice.slug}/ehr/"

    def fields(self, **changes: object) -> dict[str, object]:
        values = {
            "api_base_url": self.nextech.server.api_url,
            "practice_id": self.nextech.practice_id,
            "ehr_location_id": 1,
            "username": self.nextech.username,
            "password": self.nextech.password,
            **changes,
        }
        return {f"nextech-{self.location.pk}-{k}": v for k, v in values.items()}

    def submit(self, **changes: object):
        return self.client.post(
            f"{self.url}locations/{self.location.pk}/nextech/", self.fields(**changes), follow=True
        )

    def connection(self) -> EHRConnection:
        with tenant_context(self.practice):
            return EHRConnection.objects.get(location=self.location)


@pytest.fixture
def page(client, practice, nextech: NextechWorld, settings) -> Iterator[Page]:
    """A manager of a practice (BAA signed, one location) on the connection page; the
    deployment's sandbox is this test's Nextech sandbox (so its app registration applies)."""
    settings.NEXTECH_SANDBOX_URL = nextech.server.base_url
    settings.NEXTECH_SANDBOX_CLIENT_ID = nextech.server.client_id
    settings.NEXTECH_SANDBOX_CLIENT_SECRET = nextech.server.client_secret
    sign_baa(practice)
    location = LocationFactory(practice=practice, key="eye", name="Eye Center")
    verify_second_factor(client, staff_member(practice, Role.PRACTICE_MANAGER))
    yield Page(client, practice, location, nextech)
    reset_ports()


def text(response) -> str:
    return response.content.decode()


def test_the_manager_connects_a_location_and_sees_connected(page: Page) -> None:
    shown = text(page.client.get(page.url))
    assert "Eye Center" in shown and "Connect to Nextech" in shown
    assert "Not connected to an EHR." in shown

    response = page.submit()
    assert response.redirect_chain[-1][1] == 302
    shown = text(response)
    assert "Eye Center: connected (" in shown
    conn = page.connection()
    assert conn.kind == ConnectionKind.NEXTECH and conn.state == ConnectionState.CONNECTED
    assert f'id="status-{conn.pk}">connected<' in shown
    assert (conn.subdomain, conn.ehr_location_id) == (page.nextech.practice_id, 1)
    # The sandbox's app registration went with the practice's own part of the credentials.
    stored = json.loads(conn.api_key)
    assert stored["username"] == page.nextech.username
    assert stored["client_id"] == page.nextech.server.client_id


def test_the_password_is_stored_encrypted_and_never_rendered_back(page: Page) -> None:
    page.submit()
    conn = page.connection()
    with tenant_context(page.practice), db.cursor() as cur:  # the column as stored
        cur.execute("SELECT api_key::text FROM integrations_ehrconnection WHERE id = %s", [conn.pk])
        (raw,) = cur.fetchone()
    assert PASSWORD not in raw and page.nextech.username not in raw
    assert json.loads(conn.api_key)["password"] == PASSWORD  # decrypts to what was entered

    shown = text(page.client.get(page.url))
    assert PASSWORD not in shown and page.nextech.username not in shown
    # The form is offered again, prefilled with what is not secret, the password empty.
    assert f'value="{page.nextech.practice_id}"' in shown
    # An invalid submission re-renders the form without the password either.
    response = page.client.post(
        f"{page.url}locations/{page.location.pk}/nextech/",
        page.fields(ehr_location_id="not a number"),
    )
    assert response.status_code == 400
    assert PASSWORD not in text(response) and "Enter a whole number." in text(response)


def test_the_change_is_audited_without_the_credentials(page: Page) -> None:
    page.submit()
    conn = page.connection()
    with cross_tenant("test assertions"):
        entries = list(
            ChangeEntry.objects.filter(
                content_type__model="ehrconnection", object_pk=str(conn.pk)
            ).order_by("id")
        )
    assert entries, "storing credentials leaves a change entry"
    assert entries[0].practice_id == page.practice.pk
    changes = json.dumps([e.changes for e in entries])
    assert "[encrypted]" in changes
    assert PASSWORD not in changes and page.nextech.server.client_secret not in changes


def test_a_wrong_password_reads_credentials_rejected(page: Page) -> None:
    shown = text(page.submit(password="not-the-password"))
    assert "Eye Center: credentials rejected (" in shown
    assert "sign-in refused" in shown
    assert page.connection().state == ConnectionState.REJECTED


def test_an_unknown_practice_id_reads_credentials_rejected_and_names_the_practice(
    page: Page,
) -> None:
    shown = text(page.submit(practice_id="no-such-practice"))
    assert "Eye Center: credentials rejected (" in shown
    assert "may not act for practice no-such-practice" in shown


def test_an_unreachable_nextech_reads_unreachable(page: Page, settings) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    settings.NEXTECH_CLIENT_ID, settings.NEXTECH_CLIENT_SECRET = "hello-app", "hello-secret"
    settings.NEXTECH_TOKEN_URL = f"{closed}/tenant/oauth2/token"
    shown = text(page.submit(api_base_url=f"{closed}/api"))
    assert "Eye Center: unreachable (" in shown
    assert page.connection().state == ConnectionState.UNREACHABLE


def test_without_an_app_registration_the_form_says_so(page: Page) -> None:
    response = page.client.post(
        f"{page.url}locations/{page.location.pk}/nextech/",
        page.fields(api_base_url="https://select.nextech-api.com/api"),
    )
    assert response.status_code == 400
    assert "app registration is not configured" in text(response)
    with tenant_context(page.practice):
        assert not EHRConnection.objects.filter(location=page.location).exists()


def test_a_service_user_that_must_reset_reads_credentials_need_a_reset(page: Page) -> None:
    shown = text(page.submit())
    assert "Eye Center: connected (" in shown
    page.nextech.admin("POST", f"/_admin/users/{page.nextech.username}/require_reset")
    conn = page.connection()
    shown = text(page.client.post(f"{page.url}{conn.pk}/test/", follow=True))
    assert "Eye Center: credentials need a reset (" in shown
    assert f'id="status-{conn.pk}">credentials need a reset<' in shown
    # A new password set in Nextech and entered here: connected again.
    page.nextech.admin(
        "POST", f"/_admin/users/{page.nextech.username}/complete_reset", {"password": "second-pw"}
    )
    assert "Eye Center: connected (" in text(page.submit(password="second-pw"))


def test_a_rate_limited_test_reads_rate_limited(page: Page) -> None:
    page.submit()
    conn = page.connection()
    page.nextech.server.admin(
        "POST", "/_admin/rate_limits", {"limit": 1, "window_seconds": 60, "enabled": True}
    )
    try:
        shown = text(page.client.post(f"{page.url}{conn.pk}/test/", follow=True))
    finally:
        page.nextech.server.admin("POST", "/_admin/rate_limits", {"enabled": False})
    assert "Eye Center: rate limited (" in shown
    assert page.connection().state == ConnectionState.RATE_LIMITED


def test_front_desk_may_not_set_credentials(client, practice, nextech: NextechWorld) -> None:
    location = LocationFactory(practice=practice)
    verify_second_factor(client, staff_member(practice, Role.FRONT_DESK))
    response = client.post(f"/p/{practice.slug}/ehr/locations/{location.pk}/nextech/", {})
    assert response.status_code == 403


def test_another_practices_location_or_connection_is_not_found(page: Page, other_practice) -> None:
    page.submit()
    theirs = LocationFactory(practice=other_practice, name="Their Office")
    with tenant_context(other_practice):
        their_conn = EHRConnection.objects.create(
            practice=other_practice,
            location=theirs,
            kind=ConnectionKind.NEXTECH,
            base_url=page.nextech.server.api_url,
            subdomain="theirs",
            api_key="{}",
        )
    response = page.client.post(
        f"{page.url}locations/{theirs.pk}/nextech/", page.fields(practice_id="mine")
    )
    assert response.status_code == 404
    assert page.client.post(f"{page.url}{their_conn.pk}/test/").status_code == 404
    assert page.client.post(f"{page.url}{their_conn.pk}/sync/").status_code == 404
    with tenant_context(other_practice):
        assert EHRConnection.objects.get(pk=their_conn.pk).subdomain == "theirs"


def test_a_support_session_is_refused_and_nothing_changes(
    client, practice, nextech: NextechWorld, settings
) -> None:
    settings.NEXTECH_SANDBOX_URL = nextech.server.base_url
    sign_baa(practice)
    location = LocationFactory(practice=practice, key="eye", name="Eye Center")
    owner = staff_member(practice, Role.PRACTICE_MANAGER)
    impersonation.set_write_access(practice, True, owner)  # even when support may write
    support = UserFactory(totp=True, vendor_role=VendorRole.SUPPORT, is_staff=True)
    verify_second_factor(client, support)
    started = client.post(
        "/support/impersonate/",
        {"practice": practice.slug, "reason": "cannot connect", "ticket": "SUP-9", "minutes": 30},
    )
    assert started.status_code == 302
    page = Page(client, practice, location, nextech)
    response = client.post(f"{page.url}locations/{location.pk}/nextech/", page.fields())
    assert response.status_code == 403
    with tenant_context(practice):
        assert not EHRConnection.objects.filter(location=location).exists()
