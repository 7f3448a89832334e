"""The shell: home, the practice dashboard, locations, team, health. Thin views over selectors."""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts import selectors
from accounts.access import has_any_role, roles_required
from accounts.http import request_practice
from accounts.models import Role, VendorRole


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """Where signing in lands: the one practice's dashboard, a choice of practices, or for
    Hello support (who belong to none) their practice directory."""
    practices = list(selectors.practices_for(request.user))  # type: ignore[arg-type]
    if not practices and getattr(request.user, "vendor_role", "") == VendorRole.SUPPORT:
        return redirect("support_directory")
    if len(practices) == 1:
        return redirect("dashboard", practice_slug=practices[0].slug)
    return render(request, "portal/home.html", {"practices": practices})


@require_GET
def dashboard(request: HttpRequest, practice_slug: str) -> HttpResponse:
    from calls.escalation import selectors as escalation_selectors
    from portal import dashboard as figures
    from portal import golive

    practice = request_practice(request)
    # The go-live checklist is for those who decide on going live.
    sees_checklist = has_any_role(request, Role.PRACTICE_MANAGER, Role.COMPLIANCE_OFFICER)
    checks = golive.checklist(practice) if sees_checklist else None
    # On-call gaps matter to those who staff the rota.
    oncall = (
        escalation_selectors.summary(practice)
        if has_any_role(request, Role.PRACTICE_MANAGER, Role.CLINICIAN)
        else None
    )
    return render(
        request,
        "portal/dashboard.html",
        {
            "counts": figures.counts(practice),
            "checks": checks,
            "ready": golive.ready(checks) if checks is not None else False,
            "figures": figures.figures(practice),
            "oncall": oncall,
        },
    )


@require_GET
def location_list(request: HttpRequest, practice_slug: str) -> HttpResponse:
    return render(
        request,
        "portal/location_list.html",
        {
            "locations": selectors.locations(request_practice(request)),
        },
    )


@require_GET
def location_detail(request: HttpRequest, practice_slug: str, pk: int) -> HttpResponse:
    location = get_object_or_404(selectors.locations(request_practice(request)), pk=pk)
    return render(request, "portal/location_detail.html", {"location": location})


@require_GET
@roles_required(Role.PRACTICE_MANAGER, Role.COMPLIANCE_OFFICER)
def team(request: HttpRequest, practice_slug: str) -> HttpResponse:
    return render(
        request,
        "portal/team.html",
        {
            "members": selectors.members_with_roles(request_practice(request)),
        },
    )


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for load balancers: the database answers and the broker accepts a connection."""
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        from portal.celery import app

        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        checks["broker"] = "ok"
    except Exception as exc:
        checks["broker"] = f"error: {type(exc).__name__}"
    healthy = all(v == "ok" for v in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "error", **checks}, status=200 if healthy else 503
    )
