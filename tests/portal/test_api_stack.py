"""The voice agent's routes run the API middleware stack; the browser's pages run theirs.

Through portal.wsgi's application itself (httpx over WSGI), as gunicorn serves it, and through
the test client every other test uses (the same handler class).
"""

from __future__ import annotations

import time
from contextlib import contextmanager

import httpx
import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections

from tests.receptionist_api.factories import api_client, bearer, token_for

pytestmark = pytest.mark.django_db


@contextmanager
def served(application):
    """httpx over WSGI into `application`, keeping the test's database connection open (as
    Django's test client does, the handler's request signals would close it)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        with httpx.Client(
            transport=httpx.WSGITransport(app=application), base_url="http://testserver"
        ) as http:
            yield http
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def wsgi():
    from portal.wsgi import application

    with served(application) as http:
        yield http


@pytest.fixture
def token(practice):
    client, _ = api_client(practice)
    raw, _ = token_for(client)
    return raw


def test_an_api_answer_carries_no_browser_state(wsgi, token):
    response = wsgi.get(
        "/api/v1/appointment-types",
        headers={"Authorization": f"Bearer {token}", "Cookie": "sessionid=whatever"},
    )
    assert response.status_code == 200, response.text[:300]
    assert "set-cookie" not in response.headers  # no session, no CSRF cookie
    assert "Cookie" not in response.headers.get("vary", "")
    assert response.headers["x-request-id"]
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"


def test_an_api_error_is_still_problem_json_from_the_api_stack(wsgi):
    response = wsgi.get("/api/v1/appointment-types")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "set-cookie" not in response.headers


def test_the_browser_pages_keep_their_stack(wsgi):
    response = wsgi.get("/accounts/login/")
    assert response.status_code == 200
    assert "csrftoken=" in response.headers.get("set-cookie", "")
    assert response.headers["x-frame-options"] == "DENY"


def test_a_browser_session_does_not_authenticate_an_api_call(client, manager, token):
    from tests.conftest import verify_second_factor

    verify_second_factor(client, manager)  # a signed-in, verified portal user...
    assert client.get("/api/v1/appointment-types").status_code == 401  # ...is nobody here
    assert client.get("/api/v1/appointment-types", **bearer(token)).status_code == 200


def test_the_split_can_be_turned_off_and_answers_the_same(settings, practice, token):
    from portal.handlers import PortalWSGIHandler

    settings.API_SEPARATE_STACK = False
    with served(PortalWSGIHandler()) as http:
        response = http.get(
            "/api/v1/appointment-types", headers={"Authorization": f"Bearer {token}"}
        )
    assert response.status_code == 200
    assert "Cookie" in response.headers.get("vary", "")  # the browser's stack ran


def test_the_api_stack_sends_the_policy_the_settings_say_built_once(settings, practice, token):
    """The API stack builds the CSP headers once per settings, not per response: the same
    text the browser's stack (django-csp) sends, and new settings take effect."""
    from portal.handlers import PortalWSGIHandler

    auth = {"Authorization": f"Bearer {token}"}
    with served(PortalWSGIHandler()) as http:
        settled = [http.get("/api/v1/appointment-types", headers=auth) for _ in range(2)]
        settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": {"default-src": ["'none'"]}}
        settings.CONTENT_SECURITY_POLICY_REPORT_ONLY = {
            "DIRECTIVES": {"default-src": ["'self'"]},
            "EXCLUDE_URL_PREFIXES": ["/api/v1/oauth/"],
        }
        changed = http.get("/api/v1/appointment-types", headers=auth)
        excluded = http.post("/api/v1/oauth/token", data={})
    settings.API_SEPARATE_STACK = False
    with served(PortalWSGIHandler()) as http:
        browser = http.get("/api/v1/appointment-types", headers=auth)
    header, report_only = "content-security-policy", "content-security-policy-report-only"
    assert settled[0].headers[header] == settled[1].headers[header]
    assert "default-src 'self'" in settled[0].headers[header]
    assert report_only not in settled[0].headers
    assert changed.headers[header] == "default-src 'none'" == browser.headers[header]
    assert changed.headers[report_only] == "default-src 'self'" == browser.headers[report_only]
    assert excluded.headers[header] == "default-src 'none'"
    assert report_only not in excluded.headers


def test_a_connection_that_just_served_an_api_request_is_not_health_checked_again(
    wsgi, token, monkeypatch
):
    from django.db import connection

    from portal import handlers

    checks = []
    is_usable = connection.is_usable
    monkeypatch.setattr(connection, "is_usable", lambda: checks.append(1) or is_usable())
    auth = {"Authorization": f"Bearer {token}"}
    assert wsgi.get("/api/v1/appointment-types", headers=auth).status_code == 200
    connection.health_check_done = False  # as each request starts (request_started)
    assert wsgi.get("/api/v1/appointment-types", headers=auth).status_code == 200
    assert checks == []  # used cleanly a moment ago: no SELECT 1 first
    # Idle for longer than the window: checked as Django does, before the first statement.
    setattr(connection, handlers._USED_AT, time.monotonic() - handlers.RECENTLY_USED_SECONDS)
    connection.health_check_done = False
    assert wsgi.get("/api/v1/appointment-types", headers=auth).status_code == 200
    assert checks == [1]
