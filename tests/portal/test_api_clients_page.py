"""The practice manager's API clients page: create (secret shown once), rotate, revoke."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from accounts.models import Role
from compliance.models import AccessEvent
from core.tenancy import tenant_context
from scheduling.models import ApiClient
from scheduling.services import create_api_client
from tests.conftest import verify_second_factor
from tests.factories import MembershipFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_secret_hashing")]

BASE = "/p/alpha/api-clients/"
TOKEN_URL = "/api/v1/oauth/token"


def token_status(client_id: str, secret: str) -> int:
    """Ask the real token endpoint, as the voice agent would."""
    return (
        Client()
        .post(
            TOKEN_URL,
            {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
        )
        .status_code
    )


def shown_secret(html: str) -> str:
    match = re.search(r'id="client-secret">([^<]+)<', html)
    assert match, "the secret is shown"
    return match.group(1).strip()


def test_a_manager_creates_a_client_and_sees_the_secret_once(manager_client, practice):
    page = manager_client.get(BASE).content.decode()
    assert "No API clients yet" in page
    response = manager_client.post(
        f"{BASE}new/", {"name": "Voice agent", "scopes": ["availability:read", "bookings:write"]}
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    secret = shown_secret(html)
    assert "shown only this once" in html
    with tenant_context(practice):
        api = ApiClient.objects.select_related("application").get()
    assert api.scopes == ["availability:read", "bookings:write"]
    assert f'id="client-id">{api.application.client_id}<' in html
    assert token_status(api.application.client_id, secret) == 200

    listing = manager_client.get(BASE).content.decode()
    assert secret not in listing
    assert "Voice agent" in listing and api.application.client_id in listing
    with tenant_context(practice):
        event = AccessEvent.objects.get(action="api_client.created")
    assert event.object_ids == [str(api.pk)]
    assert secret not in str(event.details)


def test_create_form_errors_show_next_to_the_fields(manager_client, practice):
    response = manager_client.post(f"{BASE}new/", {"name": "  "})
    assert response.status_code == 400
    html = response.content.decode()
    assert "Choose at least one scope." in html
    assert "Give the client a name." in html or "This field is required." in html
    with tenant_context(practice):
        assert not ApiClient.objects.exists()


def test_rotate_asks_first_then_shows_a_new_secret_and_kills_the_old_one(
    manager_client, practice, manager
):
    api, old = create_api_client(practice, "Voice agent", ["availability:read"], manager)
    url = f"{BASE}{api.pk}/rotate/"
    confirm = manager_client.get(url).content.decode()
    assert "stops working at once" in confirm and '<form method="post"' in confirm
    assert token_status(api.application.client_id, old) == 200  # GET changed nothing

    response = manager_client.post(url)
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    new = shown_secret(response.content.decode())
    assert new != old
    assert token_status(api.application.client_id, old) == 401
    assert token_status(api.application.client_id, new) == 200
    with tenant_context(practice):
        assert AccessEvent.objects.filter(action="api_client.secret_rotated").count() == 1


def test_revoke_asks_first_and_then_the_client_is_dead(manager_client, practice, manager):
    api, secret = create_api_client(practice, "Old agent", ["availability:read"], manager)
    url = f"{BASE}{api.pk}/revoke/"
    assert "This cannot be undone" in manager_client.get(url).content.decode()
    response = manager_client.post(url, follow=True)
    html = response.content.decode()
    assert "is revoked; its tokens no longer work" in html
    assert re.search(rf'id="client-{api.pk}">.*?Revoked', html, re.S)
    assert token_status(api.application.client_id, secret) == 401
    # a revoked client offers no rotation, and a forced one is refused
    assert f"{api.pk}/rotate/" not in html
    response = manager_client.post(f"{BASE}{api.pk}/rotate/", follow=True)
    assert "is revoked; create a new client instead" in response.content.decode()
    with tenant_context(practice):
        assert AccessEvent.objects.filter(action="api_client.revoked").count() == 1


def test_only_managers_may_manage_clients(client, practice):
    api, _ = create_api_client(practice, "Voice agent", ["availability:read"])
    for role in (Role.FRONT_DESK, Role.COMPLIANCE_OFFICER, Role.CLINICIAN):
        user = UserFactory(totp=True)
        MembershipFactory(user=user, practice=practice, role=role)
        client.logout()
        verify_second_factor(client, user)
        assert client.get(BASE).status_code == 403
        assert (
            client.post(f"{BASE}new/", {"name": "x", "scopes": ["availability:read"]}).status_code
            == 403
        )
        assert client.post(f"{BASE}{api.pk}/revoke/").status_code == 403
    with tenant_context(practice):
        assert ApiClient.objects.get().revoked_at is None


def test_another_practices_client_is_not_found(manager_client, other_practice):
    api, secret = create_api_client(other_practice, "Theirs", ["availability:read"])
    assert manager_client.post(f"{BASE}{api.pk}/rotate/").status_code == 404
    assert manager_client.post(f"{BASE}{api.pk}/revoke/").status_code == 404
    assert token_status(api.application.client_id, secret) == 200


def test_the_list_takes_a_constant_number_of_queries(manager_client, practice, manager):
    create_api_client(practice, "One", ["availability:read"], manager)
    manager_client.get(BASE)

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        manager_client.get(BASE)
    for i in range(5):
        create_api_client(practice, f"Agent {i}", ["availability:read"], manager)
    with CaptureQueriesContext(connection) as many:
        assert manager_client.get(BASE).status_code == 200
    assert len(few) > 3 and len(many) == len(few)
