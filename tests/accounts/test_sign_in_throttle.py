"""The password step's throttle: same answers for known and unknown names, backoff per name and
address (a stranger cannot lock the owner out), a limit per address, counters in Redis."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
import time_machine
from django.test import RequestFactory

from core.client_ip import client_ip
from core.redis import get_redis
from core.tenancy import cross_tenant
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
OWNER_IP = "198.51.100.7"
STRANGER_IP = "203.0.113.9"


@pytest.fixture(autouse=True)
def fast_hashing(settings):
    """PBKDF2's cost is not what is under test (these tests check dozens of passwords)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def attempt(client, username: str, password: str = "wrong password", ip: str = OWNER_IP):
    return client.post(
        "/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=ip
    )


def answer(response) -> tuple[int, str, str | None]:
    """What a visitor can see of a refused sign-in: status, the form's error, Retry-After."""
    alerts = re.findall(r'role="alert">(.*?)</', response.content.decode(), re.S)
    return response.status_code, " ".join(alerts), response.get("Retry-After")


def test_known_and_unknown_names_get_the_same_answers_attempt_by_attempt(client, manager):
    with time_machine.travel(START, tick=False):
        known = [answer(attempt(client, manager.username)) for _ in range(8)]
        unknown = [answer(attempt(client, "nobody@example.test")) for _ in range(8)]
    assert known == unknown
    assert [status for status, _, _ in known] == [200] * 5 + [429] * 3
    assert "Too many sign-in attempts. Wait 30 seconds" in known[5][1]
    assert known[5][2] == "30"
    assert "not right" in known[4][1]


def test_a_strangers_failures_elsewhere_never_keep_the_owner_out(client, manager):
    with time_machine.travel(START, tick=False):
        for _ in range(20):
            attempt(client, manager.username, ip=STRANGER_IP)
        assert attempt(client, manager.username, ip=STRANGER_IP).status_code == 429
        # The owner, from their usual address, at the same moment:
        ok = attempt(client, manager.username, PASSWORD, ip=OWNER_IP)
    assert ok.status_code == 302 and ok["Location"].startswith("/accounts/2fa/verify/")


def test_the_wait_doubles_with_each_failure_and_a_throttled_password_is_not_checked(
    client, manager, settings
):
    assert settings.SIGN_IN_FREE_FAILURES == 5 and settings.SIGN_IN_BACKOFF_BASE_SECONDS == 30
    with time_machine.travel(START, tick=False) as clock:
        for _ in range(5):
            assert attempt(client, manager.username).status_code == 200
        # Throttled: even the right password is refused, unchecked, until the wait is over.
        refused = attempt(client, manager.username, PASSWORD)
        assert refused.status_code == 429 and "_auth_user_id" not in client.session
        clock.shift(29)
        assert attempt(client, manager.username, PASSWORD).status_code == 429
        clock.shift(1)
        assert attempt(client, manager.username).status_code == 200  # a sixth failure ...
        assert attempt(client, manager.username)["Retry-After"] == "60"  # ... waits twice as long
        clock.shift(60)
        assert attempt(client, manager.username).status_code == 200
        assert attempt(client, manager.username)["Retry-After"] == "120"
        clock.shift(120)
        ok = attempt(client, manager.username, PASSWORD)
        assert ok.status_code == 302
        # A right password starts the name and address afresh: five free failures again.
        client.logout()
        assert [attempt(client, manager.username).status_code for _ in range(6)] == [200] * 5 + [
            429
        ]


def test_the_wait_is_capped_and_failures_are_forgotten_after_a_quiet_day(client, manager, settings):
    with time_machine.travel(START, tick=False) as clock:
        for _ in range(12):
            attempt(client, manager.username)
            clock.shift(settings.SIGN_IN_BACKOFF_MAX_SECONDS)
        assert attempt(client, manager.username).status_code == 200  # never longer than the cap
        assert attempt(client, manager.username)["Retry-After"] == str(
            int(settings.SIGN_IN_BACKOFF_MAX_SECONDS)
        )
        clock.shift(settings.SIGN_IN_FAILURE_MEMORY_SECONDS)
        assert [attempt(client, manager.username).status_code for _ in range(6)] == [200] * 5 + [
            429
        ]


def test_one_address_gets_a_limited_number_of_password_checks_over_all_names(client, settings):
    settings.SIGN_IN_IP_LIMIT = 10
    settings.SIGN_IN_IP_WINDOW_SECONDS = 300
    with time_machine.travel(START, tick=False) as clock:
        for i in range(10):
            clock.shift(1)
            assert attempt(client, f"user{i}@example.test", ip=STRANGER_IP).status_code == 200
        refused = attempt(client, "fresh@example.test", ip=STRANGER_IP)
        assert refused.status_code == 429 and refused["Retry-After"] == "291"
        assert attempt(client, "fresh@example.test", ip=OWNER_IP).status_code == 200
        clock.shift(291)  # the first check (at +1 s) leaves the window
        assert attempt(client, "fresh@example.test", ip=STRANGER_IP).status_code == 200
        assert attempt(client, "other@example.test", ip=STRANGER_IP).status_code == 429


def test_counters_live_in_redis_without_account_names_and_expire(client, manager, settings):
    with time_machine.travel(START, tick=False):
        attempt(client, manager.username)
    keys = [k.decode() for k in get_redis().keys(f"{settings.SIGN_IN_REDIS_PREFIX}:*")]
    assert len(keys) == 2
    assert not any(manager.username.lower() in k.lower() for k in keys)
    assert all(get_redis().pttl(k) > 0 for k in keys)


def test_the_refusal_is_audited_for_known_and_unknown_names(client, manager):
    from compliance.models import AccessEvent

    with time_machine.travel(START, tick=False):
        for name in (manager.username, "nobody@example.test"):
            for _ in range(6):
                attempt(client, name)
    with cross_tenant("test: read the audit trail"):
        refused = list(AccessEvent.objects.filter(reason="sign-in throttled").order_by("id"))
    assert [(e.actor_user_id, e.details["username"]) for e in refused] == [
        (manager.pk, manager.username),
        (None, "nobody@example.test"),
    ]
    assert {e.ip for e in refused} == {OWNER_IP}


@pytest.mark.parametrize(
    ("proxies", "remote", "forwarded", "expected"),
    [
        (0, "192.0.2.1", "203.0.113.5", "192.0.2.1"),  # no proxy: the header is anyone's
        (1, "10.0.0.2", "203.0.113.5", "203.0.113.5"),
        (1, "10.0.0.2", "6.6.6.6, 203.0.113.5", "203.0.113.5"),  # a forged entry on the left
        (2, "10.0.0.3", "6.6.6.6, 203.0.113.5, 10.0.0.2", "203.0.113.5"),
        (2, "10.0.0.3", "203.0.113.5", "10.0.0.3"),  # fewer entries than proxies
        (1, "10.0.0.2", "not-an-address", "10.0.0.2"),
        (1, "10.0.0.2", "", "10.0.0.2"),
        (1, "10.0.0.2", "2001:db8::1", "2001:db8::1"),
    ],
)
def test_the_client_address_honours_the_trusted_proxy_count(
    settings, proxies, remote, forwarded, expected
):
    settings.TRUSTED_PROXY_COUNT = proxies
    request = RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == expected


def test_behind_a_proxy_each_client_is_throttled_on_its_own_address(client, manager, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    with time_machine.travel(START, tick=False):
        for _ in range(6):
            last = client.post(
                "/accounts/login/",
                {"username": manager.username, "password": "wrong"},
                REMOTE_ADDR="10.0.0.2",
                HTTP_X_FORWARDED_FOR=STRANGER_IP,
            )
        assert last.status_code == 429
        ok = client.post(
            "/accounts/login/",
            {"username": manager.username, "password": PASSWORD},
            REMOTE_ADDR="10.0.0.2",
            HTTP_X_FORWARDED_FOR=OWNER_IP,
        )
    assert ok.status_code == 302
