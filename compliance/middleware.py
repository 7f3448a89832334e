"""Request -> audit context (see compliance.context). Sits after authentication and before
auditlog's middleware, so change entries and access events name the real actor."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from compliance.context import audit_context, bind
from core.client_ip import client_ip as peer_address

USER_AGENT_MAX = 512


def client_ip(request: HttpRequest) -> str | None:
    """The client's address as the sign-in throttle sees it (REMOTE_ADDR, or behind
    TRUSTED_PROXY_COUNT proxies of our own the address the outermost one saw)."""
    return peer_address(request) or None


class AuditContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        signed_in = bool(user is not None and user.is_authenticated)
        with audit_context(
            request_id=getattr(request, "request_id", ""),
            actor_user_id=user.pk if signed_in else None,  # type: ignore[union-attr]
            actor_label=user.get_username() if signed_in else "",  # type: ignore[union-attr]
            ip=client_ip(request),
            user_agent=request.headers.get("User-Agent", "")[:USER_AGENT_MAX],
            via="api" if request.path.startswith(("/api/", "/mcp/")) else "web",
            request=request,
        ):
            return self.get_response(request)


class ImpersonationMiddleware:
    """A vendor support user's live support session: found (or expired) on each request, named
    in the audit context, and writes refused when the practice did not allow them. Sits after
    AuditContextMiddleware and before the tenant middleware, which asks it for the practice."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from compliance import impersonation

        request.impersonation = None  # type: ignore[attr-defined]
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and getattr(user, "is_vendor_staff", False)
            and impersonation.SESSION_KEY in request.session
        ):
            session = impersonation.current(request)
            request.impersonation = session  # type: ignore[attr-defined]
            if session is not None:
                bind(impersonation_session_id=session.pk)
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view_func: Any, view_args: Any, view_kwargs: dict[str, Any]
    ) -> HttpResponse | None:
        from compliance import impersonation

        if impersonation.write_refused(request, view_func, view_kwargs):
            raise PermissionDenied(
                "This support session is read-only: the practice has not allowed Hello support "
                "to make changes. Nothing was changed."
            )
        return None
