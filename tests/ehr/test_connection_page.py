"""The practice manager's EHR page: per location its connection's state, in the words
`manage.py test_connection` uses, and its integration health in the same figures for every EHR;
"Test connection" against the sandbox; the page's queries do not grow with its connections."""

from __future__ import annotations

import json

from accounts.models import Role
from core.tenancy import tenant_context
from ehr.health import Figure, HealthRecorder
from ehr.models import ConnectionHealth, ConnectionKind, ConnectionState, EHRConnection
from tests.conftest import verify_second_factor
from tests.factories import LocationFactory, MembershipFactory, UserFactory


def member(world, role: str):
    user = UserFactory(totp=True)
    MembershipFactory(user=user, practice=world.practice, role=role)
    return user


def nextech_connection(practice, name: str) -> EHRConnection:
    """A stored Nextech connection (the page reads only what is stored: no EHR is called)."""
    location = LocationFactory(practice=practice, name=name)
    with tenant_context(practice):
        conn = EHRConnection.objects.create(
            practice=practice,
            location=location,
            kind=ConnectionKind.NEXTECH,
            base_url="http://127.0.0.1:1/api",
            subdomain="4001",
            ehr_location_id=1,
            api_key=json.dumps({"username": "svc", "password": "never-shown"}),
            state=ConnectionState.RESET_REQUIRED,
        )
        ConnectionHealth.objects.create(
            practice=practice, connection=conn, requests=4, first_try_ok=3, failures={"auth": 1}
        )
    return conn


def test_a_manager_tests_the_connection_and_sees_its_status(client, world):
    verify_second_factor(client, member(world, Role.PRACTICE_MANAGER))
    base = f"/p/{world.practice.slug}/ehr/"
    page = client.get(base).content.decode()
    assert "Main Office" in page and "Test connection" in page
    assert f'id="status-{world.conn.pk}">connected<' in page  # tested when it was connected

    response = client.post(f"{base}{world.conn.pk}/test/", follow=True)
    text = response.content.decode()
    assert "Main Office: connected (" in text
    assert f'id="status-{world.conn.pk}">connected<' in text
    # A NexHealth location is on another EHR: no Nextech form for it.
    assert "Connect to Nextech" not in text and "Change the Nextech credentials" not in text


def test_a_refused_key_reads_credentials_rejected(client, world):
    verify_second_factor(client, member(world, Role.PRACTICE_MANAGER))
    with tenant_context(world.practice):
        world.conn.api_key = "not-the-key"
        world.conn.save()
    response = client.post(f"/p/{world.practice.slug}/ehr/{world.conn.pk}/test/", follow=True)
    text = response.content.decode()
    assert "Main Office: credentials rejected (" in text
    assert f'id="status-{world.conn.pk}">credentials rejected<' in text
    conn = world.reload()
    assert (conn.status, conn.state) == ("error", ConnectionState.REJECTED)


def test_an_ehr_that_keeps_failing_reads_unreachable(client, world, settings):
    settings.EHR_MAX_ATTEMPTS = 2
    verify_second_factor(client, member(world, Role.PRACTICE_MANAGER))
    world.admin("PATCH", "/_admin/faults", {"error_share": 1.0})
    response = client.post(f"/p/{world.practice.slug}/ehr/{world.conn.pk}/test/", follow=True)
    assert "Main Office: unreachable (" in response.content.decode()


def test_front_desk_cannot_change_the_ehr_connection(client, world):
    verify_second_factor(client, member(world, Role.FRONT_DESK))
    assert client.get(f"/p/{world.practice.slug}/ehr/").status_code == 403
    assert client.post(f"/p/{world.practice.slug}/ehr/{world.conn.pk}/test/").status_code == 403
    url = f"/p/{world.practice.slug}/ehr/locations/{world.location.pk}/nextech/"
    assert client.post(url, {}).status_code == 403


def test_sync_now_queues_a_full_sync(client, world):
    verify_second_factor(client, member(world, Role.PRACTICE_MANAGER))
    response = client.post(f"/p/{world.practice.slug}/ehr/{world.conn.pk}/sync/", follow=True)
    assert "Main Office: a full sync has been queued" in response.content.decode()


def test_both_adapters_show_the_same_health_figures(client, world):
    """First-try success, failures by reason, rate-limit waits, freshness lag: the same ids
    and words for the NexHealth connection (webhook lag) and the Nextech one (poll lag)."""
    verify_second_factor(client, member(world, Role.PRACTICE_MANAGER))
    nx = nextech_connection(world.practice, "Eye Center")
    HealthRecorder(nx.health_key).record(Figure.FRESHNESS, 1.5, "polled_changes")
    HealthRecorder(nx.health_key).record(Figure.RATE_WAIT, 0.25)
    client.post(f"/p/{world.practice.slug}/ehr/{world.conn.pk}/test/")
    page = client.get(f"/p/{world.practice.slug}/ehr/").content.decode()
    for conn in (world.conn, nx):
        for figure in ("first-try", "failed", "rate-waits", "lag"):
            assert f'id="health-{conn.pk}-{figure}"' in page
    assert f'id="health-{world.conn.pk}-first-try">100%<' in page  # the test's calls
    assert f'id="health-{nx.pk}-first-try">75%<' in page  # 3 of 4, as stored
    assert f'id="health-{nx.pk}-failures">auth 1<' in page
    assert f'id="health-{nx.pk}-rate-waits">1<' in page
    assert f'id="health-{nx.pk}-lag">1500 ms<' in page
    assert "Freshness (webhook lag) p95" in page and "Freshness (poll lag) p95" in page
    assert f'id="status-{nx.pk}">credentials need a reset<' in page
    assert "never-shown" not in page and "Change the Nextech credentials" in page


def test_the_page_takes_the_same_queries_for_more_connections_of_both_kinds(
    client, world, django_assert_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    verify_second_factor(client, member(world, Role.PRACTICE_MANAGER))
    nextech_connection(world.practice, "Eye Center")
    url = f"/p/{world.practice.slug}/ehr/"
    client.get(url)  # warm the session

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url).status_code == 200
        return len(ctx.captured_queries)

    before = queries()
    for i in range(3):
        nextech_connection(world.practice, f"Skin Clinic {i}")
        LocationFactory(practice=world.practice, name=f"Unconnected {i}")
    with django_assert_num_queries(before):
        assert client.get(url).status_code == 200
