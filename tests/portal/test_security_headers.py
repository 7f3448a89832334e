"""Security headers: a Content-Security-Policy on every route of the URL conf (walked, so a new
route is covered without editing this file), HTTPS-only settings in production."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.urlconf import routes

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.django_db


def assert_policy(response, path: str) -> None:
    policy = response.get("Content-Security-Policy", "")
    directives = {}
    for part in filter(None, (p.strip() for p in policy.split(";"))):
        name, _, value = part.partition(" ")
        directives[name] = value
    assert directives.get("script-src") == "'self'", (path, response.status_code, policy)
    assert directives.get("style-src") == "'self'", (path, policy)
    assert directives.get("default-src") == "'self'", (path, policy)
    assert directives.get("frame-ancestors") == "'none'", (path, policy)


@pytest.mark.urls("tests.probe_urls")
def test_every_page_of_the_url_probe_carries_the_policy(client, manager):
    paths = [route.fill(practice_slug="alpha") for route in routes()]
    assert len(paths) > 30 and "/p/alpha/_probe/" in paths
    for path in paths:  # anonymous: sign-in redirects, the sign-in page, the API's 401s
        assert_policy(client.get(path), path)
    from tests.conftest import verify_second_factor

    verify_second_factor(client, manager)
    for path in paths:  # signed in: the pages themselves, their 404s and 405s
        assert_policy(client.get(path), path)


def production_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PORTAL_TESTING", "DEBUG")}
    for name in (
        "SECURE_SSL_REDIRECT",
        "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        "SECURE_HSTS_PRELOAD",
        "TRUSTED_PROXY_COUNT",
    ):
        env.pop(name, None)
    env["SECRET_KEY"] = secrets.token_urlsafe(50)
    env["PHI_MASTER_KEY"] = secrets.token_urlsafe(32)
    env["ALLOWED_HOSTS"] = "portal.example.test"
    return {**env, **extra}


def settings_in(env: dict[str, str], *names: str) -> list[str]:
    code = (
        "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'portal.settings');"
        "django.setup(); from django.conf import settings;"
        f"print([repr(getattr(settings, n, None)) for n in {list(names)!r}])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return eval(out.stdout.strip())


def test_check_deploy_in_production_has_no_hsts_or_ssl_redirect_warning():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env=production_env(),
        capture_output=True,
        text=True,
    )
    output = result.stdout + result.stderr
    assert "System check identified" in output or "no issues" in output, output
    assert "security.W004" not in output and "security.W008" not in output, output
    # The same check with HTTPS switched off by the environment does warn: the test can see it.
    off = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env=production_env(SECURE_SSL_REDIRECT="false", SECURE_HSTS_SECONDS="0"),
        capture_output=True,
        text=True,
    )
    assert "security.W004" in off.stdout + off.stderr and "security.W008" in off.stdout + off.stderr


def test_https_only_in_production_and_plain_http_under_debug():
    names = ("SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SECURE_PROXY_SSL_HEADER")
    assert settings_in(production_env(), *names) == ["True", "31536000", "None"]
    assert settings_in(production_env(TRUSTED_PROXY_COUNT="1"), *names)[2] == repr(
        ("HTTP_X_FORWARDED_PROTO", "https")
    )
    assert settings_in(production_env(DEBUG="true"), *names) == ["False", "0", "None"]


def test_production_redirects_to_https_and_sends_hsts_but_not_on_the_health_check(settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31536000
    from django.test import Client

    http = Client()
    page = http.get("/accounts/login/")
    assert page.status_code == 301 and page["Location"] == "https://testserver/accounts/login/"
    assert http.get("/healthz").status_code == 200
    secure = http.get("/accounts/login/", secure=True)
    assert secure.status_code == 200
    assert secure["Strict-Transport-Security"] == "max-age=31536000"
