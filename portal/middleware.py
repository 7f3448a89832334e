"""Request pipeline: request ids, idle sign-out, the 2FA wall, and the tenant of each request
(its database scope and its time zone)."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from django.conf import settings
from django.contrib.auth import logout
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import resolve_url
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from accounts import selectors
from accounts.http import set_practice
from core.tenancy import tenant_context

GetResponse = Callable[[HttpRequest], HttpResponse]

REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9\-]{8,64}$")

# Paths anyone may reach without a verified second factor. Everything else needs 2FA.
PUBLIC_PREFIXES = (
    "/accounts/login/",
    "/healthz",
    "/static/",
    "/favicon.ico",
    "/api/",  # machine clients authenticate with OAuth2 bearer tokens, not sessions
    "/mcp/",  # the same clients over MCP (receptionist_api.voice)
    "/integrations/webhooks/",  # the EHR authenticates with signed requests
)
# Reached signed in but before the second factor is verified.
TWO_FACTOR_PREFIXES = ("/accounts/2fa/", "/accounts/logout/")


def is_public(path: str) -> bool:
    return path.startswith(PUBLIC_PREFIXES)


def _redirect(request: HttpRequest, url: str) -> HttpResponse:
    if getattr(request, "htmx", False):
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return HttpResponseRedirect(url)


class RequestIdMiddleware:
    """Tag every request with an id carried into logs, audit entries and tasks."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request.request_id = incoming if REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex  # type: ignore[attr-defined]
        response = self.get_response(request)
        response["X-Request-ID"] = request.request_id  # type: ignore[attr-defined]
        return response


class IdleTimeoutMiddleware:
    """Sign out after IDLE_TIMEOUT_SECONDS without a request: unattended screens show PHI."""

    SESSION_KEY = "last_activity"

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # The path first: API and webhook requests never load a session user here.
        if not is_public(request.path) and request.user.is_authenticated:
            now = time.time()
            last = request.session.get(self.SESSION_KEY)
            if last is not None and now - float(last) > settings.IDLE_TIMEOUT_SECONDS:
                logout(request)
                return _redirect(
                    request,
                    f"{resolve_url(settings.LOGIN_URL)}?"
                    f"{urlencode({'reason': 'idle', 'next': request.get_full_path()})}",
                )
            request.session[self.SESSION_KEY] = now
        return self.get_response(request)


class RequireTwoFactorMiddleware:
    """No page but sign-in is served to anyone who has not passed both factors."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path
        if is_public(path):
            return self.get_response(request)
        user = request.user
        if not user.is_authenticated:
            login = resolve_url(settings.LOGIN_URL)
            return _redirect(request, f"{login}?{urlencode({'next': request.get_full_path()})}")
        if path.startswith(TWO_FACTOR_PREFIXES) or user.is_verified():  # type: ignore[union-attr]
            return self.get_response(request)
        from accounts.services import has_confirmed_device

        target = "two_factor_verify" if has_confirmed_device(user) else "two_factor_setup"  # type: ignore[arg-type]
        return _redirect(
            request, f"{reverse(target)}?{urlencode({'next': request.get_full_path()})}"
        )


class TenantMiddleware:
    """Resolve the practice in the URL (`/p/<practice_slug>/...`) for a member, or answer 404,
    and scope the database connection to it for the rest of the request (row-level security)."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with ExitStack() as stack:
            request._tenant_stack = stack  # type: ignore[attr-defined]
            return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view_func: Any, view_args: Any, view_kwargs: dict[str, Any]
    ) -> None:
        slug = view_kwargs.get("practice_slug")
        if slug is None:
            return None
        if not request.user.is_authenticated:
            raise Http404
        found = selectors.practice_for_member(request.user, slug)  # type: ignore[arg-type]
        if found is None:
            # Vendor support inside a live support session (compliance.impersonation).
            from compliance.impersonation import practice_for

            found = practice_for(request, slug)
        if found is None:
            raise Http404("No such practice")
        practice, roles = found
        set_practice(request, practice, roles)
        request._tenant_stack.enter_context(tenant_context(practice))  # type: ignore[attr-defined]
        # Times on a practice's pages are the practice's (and typed times are read in its zone).
        request._tenant_stack.enter_context(timezone.override(practice.tz))  # type: ignore[attr-defined]
        return None
