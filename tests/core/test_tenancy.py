"""Tenant isolation: the application filter, and row-level security behind it."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.db import connection
from django.db.utils import ProgrammingError

from accounts.models import Location, Role
from core.tenancy import TenantModel, cross_tenant, tenant_context
from tests.conftest import verify_second_factor
from tests.factories import LocationFactory, MembershipFactory, PracticeFactory, UserFactory
from tests.probe_urls import tenant_models
from tests.urlconf import tenant_routes

pytestmark = pytest.mark.django_db


def test_every_tenant_model_is_behind_forced_row_level_security():
    models = tenant_models()
    assert Location in models
    with connection.cursor() as cur:
        for model in models:
            cur.execute(
                "SELECT c.relrowsecurity, c.relforcerowsecurity, "
                "(SELECT count(*) FROM pg_policies p WHERE p.tablename = c.relname) "
                "FROM pg_class c WHERE c.relname = %s",
                [model._meta.db_table],
            )
            enabled, forced, policies = cur.fetchone()
            assert (enabled, forced, policies) == (True, True, 1), model._meta.label


def test_application_role_cannot_bypass_row_level_security():
    with connection.cursor() as cur:
        cur.execute("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
        assert cur.fetchone() == (False, False)


def test_without_a_tenant_nothing_is_visible_and_cross_tenant_is_explicit():
    a, b = PracticeFactory(), PracticeFactory()
    LocationFactory(practice=a)
    LocationFactory(practice=b)
    assert Location.objects.count() == 0
    with tenant_context(a):
        assert list(Location.objects.values_list("practice_id", flat=True)) == [a.pk]
    with cross_tenant("test: counting every practice"):
        assert Location.objects.count() == 2


def test_writing_a_row_for_another_practice_is_refused_by_the_database():
    a, b = PracticeFactory(), PracticeFactory()
    with tenant_context(a), pytest.raises(ProgrammingError, match="row-level security"):
        Location.objects.create(practice=b, key="sneaky", name="Not yours")


def test_cross_tenant_needs_a_reason():
    with pytest.raises(ValueError), cross_tenant("  "):
        pass


@pytest.mark.urls("tests.probe_urls")
def test_unfiltered_queries_inside_a_tenant_request_return_only_that_tenant(client):
    a, b = PracticeFactory(slug="alpha"), PracticeFactory(slug="beta")
    for practice in (a, b):
        LocationFactory.create_batch(2, practice=practice)
    user = UserFactory(totp=True)
    MembershipFactory(user=user, practice=a, role=Role.FRONT_DESK)
    MembershipFactory(user=user, practice=b, role=Role.FRONT_DESK)
    verify_second_factor(client, user)

    seen = client.get("/p/alpha/_probe/").json()
    assert seen[Location._meta.label] == [a.pk]
    assert set(seen) == {m._meta.label for m in tenant_models()}
    for label, practice_ids in seen.items():
        assert practice_ids in ([], [a.pk]), label
    # the connection is left clean for whatever runs next
    assert Location.objects.count() == 0


def _objects_of(practice) -> dict[str, list[int]]:
    with tenant_context(practice):
        return {
            m._meta.label: list(m.objects.values_list("pk", flat=True))
            for m in apps.get_models()
            if issubclass(m, TenantModel)
        }


def test_another_practices_ids_answer_404_on_every_tenant_url(client):
    """Even for someone who belongs to both practices: the URL's practice decides."""
    a, b = PracticeFactory(slug="alpha"), PracticeFactory(slug="beta")
    LocationFactory(practice=a)
    LocationFactory(practice=b)
    user = UserFactory(totp=True)
    for practice in (a, b):
        for role in Role.values:
            MembershipFactory(user=user, practice=practice, role=role)
    verify_second_factor(client, user)

    foreign_ids = sorted({pk for pks in _objects_of(b).values() for pk in pks})
    own_ids = {pk for pks in _objects_of(a).values() for pk in pks}
    foreign_ids = [pk for pk in foreign_ids if pk not in own_ids]
    assert foreign_ids, "the other practice must own rows for this test to mean anything"
    routes = [r for r in tenant_routes() if r.int_params]
    assert routes, "expected tenant URLs that take object ids"
    for route in routes:
        for pk in foreign_ids:
            path = route.fill(practice_slug="alpha", **dict.fromkeys(route.int_params, pk))
            for method in ("get", "post"):
                response = getattr(client, method)(path)
                if response.status_code == 405:
                    continue
                assert response.status_code == 404, f"{method.upper()} {path}"
                break
            else:
                raise AssertionError(f"{path} answers neither GET nor POST")


def test_a_practice_you_do_not_belong_to_is_404_on_every_tenant_url(client):
    a = PracticeFactory(slug="alpha")
    PracticeFactory(slug="beta")
    location = LocationFactory(practice=a)
    user = UserFactory(totp=True)
    MembershipFactory(user=user, practice=a, role=Role.PRACTICE_MANAGER)
    verify_second_factor(client, user)
    for route in tenant_routes():
        path = route.fill(practice_slug="beta", **dict.fromkeys(route.int_params, location.pk))
        assert client.get(path).status_code == 404, path
        assert client.post(path).status_code in (404, 405), path
        assert client.get(route.fill(practice_slug="no-such-practice")).status_code == 404


def test_the_dashboard_counts_only_this_practice(manager_client, practice, other_practice):
    LocationFactory.create_batch(2, practice=practice)
    LocationFactory.create_batch(4, practice=other_practice)
    page = manager_client.get("/p/alpha/").content.decode()
    assert '<dd id="count-locations">2</dd>' in page
    assert '<dd id="count-members">1</dd>' in page
