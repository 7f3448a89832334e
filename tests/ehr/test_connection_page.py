"""The practice manager's EHR page: status and health, "Test connection" against the sandbox."""

from __future__ import annotations

from accounts.models import Role
from core.tenancy import tenant_context
from tests.conftest import verify_second_factor
from tests.factories import MembershipFactory, UserFactory


def member(world, role: str):
    user = UserFactory(totp=True)
    MembershipFactory(user=user, practice=world.practice, role=role)
    return user


def test_a_manager_tests_the_connection_and_sees_its_status(client, world):
    verify_second_factor(client, member(world, Role.PRACTICE_MANAGER))
    base = f"/p/{world.practice.slug}/ehr/"
    page = client.get(base).content.decode()
    assert "Main Office" in page and "Test connection" in page

    response = client.post(f"{base}{world.conn.pk}/test/", follow=True)
    text = response.content.decode()
    assert "Main Office: connected" in text
    assert f'id="status-{world.conn.pk}">Connected<' in text


def test_a_failing_ehr_is_reported_not_hidden(client, world):
    verify_second_factor(client, member(world, Role.PRACTICE_MANAGER))
    with tenant_context(world.practice):
        world.conn.api_key = "not-the-key"
        world.conn.save()
    response = client.post(f"/p/{world.practice.slug}/ehr/{world.conn.pk}/test/", follow=True)
    assert "Main Office: failed" in response.content.decode()
    assert world.reload().status == "error"


def test_front_desk_cannot_change_the_ehr_connection(client, world):
    verify_second_factor(client, member(world, Role.FRONT_DESK))
    assert client.get(f"/p/{world.practice.slug}/ehr/").status_code == 403
    assert client.post(f"/p/{world.practice.slug}/ehr/{world.conn.pk}/test/").status_code == 403


def test_sync_now_queues_a_full_sync(client, world):
    verify_second_factor(client, member(world, Role.PRACTICE_MANAGER))
    response = client.post(f"/p/{world.practice.slug}/ehr/{world.conn.pk}/sync/", follow=True)
    assert "Main Office: a full sync has been queued" in response.content.decode()
