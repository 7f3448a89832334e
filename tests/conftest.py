from __future__ import annotations

import os
import uuid

import pytest
from django.conf import settings
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Role
from compliance.protection import protect_connected_database
from tests.factories import MembershipFactory, PracticeFactory, UserFactory

# Playwright's sync API runs an event loop in the test thread; Django's ORM calls made alongside
# it in the same thread are still synchronous.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The test database as production runs it: its audit tables protected (as `make run` and
    the deployment do), so every test runs with the application role's real privileges. TRUNCATE
    is granted for the flush between transactional tests (the append-only trigger still refuses
    it to sessions without the test flag)."""
    if not settings.DATABASE_SUPERUSER_URL:
        pytest.exit("DATABASE_SUPERUSER_URL is needed to protect the test database's audit tables")
    with django_db_blocker.unblock():
        protect_connected_database(settings.DATABASE_SUPERUSER_URL, test_truncate=True)


@pytest.fixture
def client():
    """Django's test client on the handler production serves (portal.wsgi): the voice agent's
    routes through the API middleware stack, everything else through the browser's."""
    from django.test.client import ClientHandler

    from portal.handlers import SplitStackMixin

    class PortalClientHandler(SplitStackMixin, ClientHandler):
        pass

    test_client = Client()
    test_client.handler = PortalClientHandler(enforce_csrf_checks=False)
    return test_client


@pytest.fixture(autouse=True)
def sign_in_counters_of_this_test(settings):
    """Each test counts sign-in attempts (accounts.throttle) under Redis keys of its own."""
    settings.SIGN_IN_REDIS_PREFIX = f"hpp:test:{uuid.uuid4().hex}:signin"


def current_totp(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


def verify_second_factor(client: Client, user) -> None:
    """Sign a test client in with both factors, through the real verification view."""
    client.force_login(user)
    device = TOTPDevice.objects.get(user=user, confirmed=True)
    response = client.post("/accounts/2fa/verify/", {"token": current_totp(device)})
    assert response.status_code == 302, response.content[:500]


@pytest.fixture
def practice(db):
    return PracticeFactory(slug="alpha", name="Alpha Dental")


@pytest.fixture
def other_practice(db):
    return PracticeFactory(slug="beta", name="Beta Surgery")


@pytest.fixture
def manager(practice):
    user = UserFactory(totp=True)
    MembershipFactory(user=user, practice=practice, role=Role.PRACTICE_MANAGER)
    return user


@pytest.fixture
def manager_client(client, manager):
    verify_second_factor(client, manager)
    return client
