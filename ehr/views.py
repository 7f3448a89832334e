"""The practice manager's EHR connection page: per location its connection's state and
integration health, "Test connection", "Sync now", and the Nextech connection form."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts.access import roles_required
from accounts.http import request_practice
from accounts.models import Location, Role
from compliance.gate import BAARequired
from ehr import selectors, services, tasks
from ehr.forms import NextechConnectionForm
from ehr.models import ConnectionKind, EHRConnection
from ehr.nextech.connect import NotRegistered, connect_with_app_registration

NO_BAA = "No executed BAA is in force: the EHR connection stays closed."


def _connection(request: HttpRequest, pk: int) -> EHRConnection:
    return get_object_or_404(
        EHRConnection.objects.for_practice(request_practice(request)).select_related("location"),
        pk=pk,
    )


def _form_prefix(location: Location) -> str:
    return f"nextech-{location.pk}"


def _nextech_form(location: Location, conn: EHRConnection | None) -> NextechConnectionForm | None:
    """A location not on another EHR may connect to (or re-enter its credentials for) Nextech."""
    if conn is not None and conn.kind != ConnectionKind.NEXTECH:
        return None
    return NextechConnectionForm(
        connection=conn, location_ehr_id=location.ehr_id, prefix=_form_prefix(location)
    )


def _page(
    request: HttpRequest, bound: NextechConnectionForm | None = None, status: int = 200
) -> HttpResponse:
    rows = []
    for location in selectors.locations_with_connections(request_practice(request)):
        conn = getattr(location, "ehr_connection", None)
        form = _nextech_form(location, conn)
        if bound is not None and form is not None and bound.prefix == form.prefix:
            form = bound
        health = selectors.health_figures(conn) if conn is not None else None
        rows.append((location, conn, health, form))
    return render(request, "integrations/connections.html", {"rows": rows}, status=status)


@require_GET
@roles_required(Role.PRACTICE_MANAGER)
def connection_list(request: HttpRequest, practice_slug: str) -> HttpResponse:
    return _page(request)


@require_POST
@roles_required(Role.PRACTICE_MANAGER)
def nextech_connect(request: HttpRequest, practice_slug: str, location_pk: int) -> HttpResponse:
    """Store the location's Nextech credentials and test them at once (a token obtained and
    the location read); the result is the connection's state. A support session is refused
    by the service (credentials are the practice's own)."""
    location = get_object_or_404(
        Location.objects.for_practice(request_practice(request)), pk=location_pk
    )
    conn = EHRConnection.objects.filter(location=location).first()
    form = NextechConnectionForm(request.POST, connection=conn, prefix=_form_prefix(location))
    if _nextech_form(location, conn) is None:
        messages.error(request, f"{location.name} is connected to another EHR.")
        return redirect("ehr_connections", practice_slug=practice_slug)
    if not form.is_valid():
        return _page(request, form, status=400)
    try:
        _, result = connect_with_app_registration(location, **form.cleaned_data)
    except BAARequired:
        messages.error(request, NO_BAA)
    except NotRegistered as exc:
        form.add_error(None, str(exc))
        return _page(request, form, status=400)
    else:
        report = messages.success if result.ok else messages.error
        report(request, result.line(location.name))
    return redirect("ehr_connections", practice_slug=practice_slug)


@require_POST
@roles_required(Role.PRACTICE_MANAGER)
def test_connection(request: HttpRequest, practice_slug: str, pk: int) -> HttpResponse:
    conn = _connection(request, pk)
    try:
        result = services.check_connection(conn)
    except BAARequired:
        messages.error(request, NO_BAA)
    else:
        report = messages.success if result.ok else messages.error
        report(request, result.line(conn.location.name))
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
