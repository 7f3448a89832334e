"""The practice manager's EHR connection page: status, health, "Test connection", "Sync now"."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts.access import roles_required
from accounts.models import Role
from compliance.gate import BAARequired
from ehr import selectors, services, tasks
from ehr.models import EHRConnection


def _connection(request: HttpRequest, pk: int) -> EHRConnection:
    return get_object_or_404(
        EHRConnection.objects.for_practice(request.practice).select_related("location"),  # type: ignore[attr-defined]
        pk=pk,
    )


@require_GET
@roles_required(Role.PRACTICE_MANAGER)
def connection_list(request: HttpRequest, practice_slug: str) -> HttpResponse:
    rows = [
        (conn, selectors.connection_health(conn))
        for conn in selectors.connections_for_practice(request.practice)  # type: ignore[attr-defined]
    ]
    return render(request, "integrations/connections.html", {"rows": rows})


@require_POST
@roles_required(Role.PRACTICE_MANAGER)
def test_connection(request: HttpRequest, practice_slug: str, pk: int) -> HttpResponse:
    conn = _connection(request, pk)
    try:
        result = services.check_connection(conn)
    except BAARequired:
        messages.error(request, "No executed BAA is in force: the EHR connection stays closed.")
    else:
        report = messages.success if result.ok else messages.error
        report(
            request,
            f"{conn.location.name}: {'connected' if result.ok else 'failed'} "
            f"({result.latency_ms:.0f} ms) — {result.detail}",
        )
    return redirect("ehr_connections", practice_slug=practice_slug)


@require_POST
@roles_required(Role.PRACTICE_MANAGER)
def sync_now(request: HttpRequest, practice_slug: str, pk: int) -> HttpResponse:
    conn = _connection(request, pk)
    tasks.sync_connection.delay(conn.pk, conn.practice_id)
    messages.info(
        request,
        f"{conn.location.name}: a full sync has been queued; the last-sync "
        "time below updates when it finishes.",
    )
    return redirect("ehr_connections", practice_slug=practice_slug)
