"""Staff pages for calls (front desk, practice managers): the list, a call with its transcript
masked until revealed with a reason, the note's state, and the retention setting.

Object pages look the call up first (another practice's id is a 404, whatever the BAA), then
pass the PHI gate (403 without a BAA in force) before decrypting anything.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.access import has_any_role, roles_required
from accounts.http import request_practice
from accounts.models import Role
from calls import selectors, services
from calls.forms import CallFilterForm, RetentionForm, RevealForm
from calls.models import Call, CallRetention, NoteStatus
from compliance.gate import phi_gated, require_phi_allowed
from compliance.support_policy import (
    SupportForbidden,
    forbidden_in_support_session,
    in_support_session,
    read_with_reason,
)
from core import sorting

# Who may see calls and reveal transcripts: the people who talk to the callers afterwards.
# Clinicians and compliance officers work from the EHR and the audit log, not from here.
CALL_ROLES = (Role.FRONT_DESK, Role.PRACTICE_MANAGER)
PAGE_SIZE = 25
SUPPORT_HIDDEN = "hidden in support sessions"


def _call(request: HttpRequest, pk: int) -> Call:
    try:
        call = selectors.call_for_practice(request_practice(request), pk)
    except Call.DoesNotExist as exc:
        raise Http404 from exc
    require_phi_allowed(call.practice_id)
    return call


# Filters that may travel in a URL; the caller's phone number (PHI) is searched for in a POST
# body only, so it never lands in an access log, a proxy's log or the browser's history.
URL_FILTERS = ("since", "until", "outcome", "appointment_type")


@require_http_methods(["GET", "POST"])
@roles_required(*CALL_ROLES)
@phi_gated
def call_list(request: HttpRequest, practice_slug: str) -> HttpResponse:
    """GET: the list, filtered by the URL's non-PHI filters; POST (the search form, and the
    pager of a search): any filter, the phone number included."""
    practice = request_practice(request)
    data: dict[str, str]
    if request.method == "POST":
        data = {k: str(v) for k, v in request.POST.items() if k != "csrfmiddlewaretoken"}
    else:
        data = {k: str(v) for k, v in request.GET.items() if k in (*URL_FILTERS, "page", "sort")}
    page_number = data.pop("page", None)
    order = sorting.parse(data.pop("sort", None), selectors.CALL_SORTS, "-started")
    support = in_support_session(request)
    if support:  # looking a caller up by number reads PHI; support reads it only on a reason
        data.pop("phone", None)
    form = CallFilterForm(data or None, practice=practice)
    filters = form.filters()
    page = Paginator(selectors.calls_for_practice(practice, filters, order), PAGE_SIZE).get_page(
        page_number
    )
    rows = [(call, _phone(call, support)) for call in page.object_list]
    if not support:  # a support session is shown no caller numbers, so reads none
        services.record_call_access(
            practice, [call.pk for call, _ in rows], "calls.list", filters.describe()
        )
    return render(
        request,
        "calls/call_list.html",
        {
            "form": form,
            "page": page,
            "rows": rows,
            "searched": any(data.values()),
            # For the pager's POST, with the order; the headers' links carry the URL filters.
            "search": sorted([*((k, v) for k, v in data.items() if v), ("sort", order.param)]),
            "columns": sorting.columns(
                CALL_COLUMNS,
                order,
                {k: v for k, v in data.items() if k in URL_FILTERS and v},
            ),
            "can_set_retention": has_any_role(request, Role.PRACTICE_MANAGER) and not support,
        },
    )


CALL_COLUMNS = (
    ("Started", "started"),
    ("Caller", ""),  # masked and encrypted: not sortable
    ("Outcome", "outcome"),
    ("Appointment type", "type"),
    ("Encounter note", ""),
    ("Transcript", ""),
)


def _phone(call: Call, support: bool) -> str:
    """The masked caller number (a PHI read), or nothing for a support session: support reads
    patient information only on a reason stated for that read (the transcript's reveal)."""
    return SUPPORT_HIDDEN if support else selectors.masked_phone(call)


def _detail(
    request: HttpRequest,
    call: Call,
    form: RevealForm | None = None,
    turns: list[dict[str, Any]] | None = None,
) -> HttpResponse:
    context = {
        "call": call,
        "phone": _phone(call, in_support_session(request)),
        "note": getattr(call, "encounter_note", None),
        "form": form or RevealForm(),
        "turns": turns,
        "failed": NoteStatus.FAILED,
    }
    if getattr(request, "htmx", False) and request.method == "POST":
        return render(request, "calls/_transcript.html", context)
    return render(request, "calls/call_detail.html", context)


@require_GET
@roles_required(*CALL_ROLES)
def call_detail(request: HttpRequest, practice_slug: str, pk: int) -> HttpResponse:
    call = _call(request, pk)
    if not in_support_session(request):
        services.record_call_access(request_practice(request), [call.pk], "calls.detail")
    return _detail(request, call)


@require_POST
@roles_required(*CALL_ROLES)
@read_with_reason
def call_reveal(request: HttpRequest, practice_slug: str, pk: int) -> HttpResponse:
    """Show the transcript to someone who says why; the reason goes into the audit log."""
    call = _call(request, pk)
    form = RevealForm(request.POST)
    if not form.is_valid():
        return _detail(request, call, form=form)
    turns = services.reveal_transcript(call, request.user, form.cleaned_data["reason"])  # type: ignore[arg-type]
    return _detail(request, call, form=form, turns=_timed(turns))


def _timed(turns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Turns with their time as an instant, so the page shows it in the practice's zone with the
    zone named (stored as ISO text; anything unreadable is shown as it was stored)."""
    out = []
    for turn in turns:
        at = turn.get("at")
        try:
            when: Any = datetime.fromisoformat(str(at)) if at else None
        except ValueError:
            when = at
        out.append({**turn, "at": when})
    return out


@require_POST
@roles_required(*CALL_ROLES)
def note_retry(request: HttpRequest, practice_slug: str, pk: int) -> HttpResponse:
    call = _call(request, pk)
    note = getattr(call, "encounter_note", None)
    if note is None:
        raise Http404
    if note.status == NoteStatus.FAILED:
        services.retry_note(note)
        messages.info(request, "The note is queued again; its state updates below.")
    return redirect("calls_detail", practice_slug=practice_slug, pk=call.pk)


@require_http_methods(["GET", "POST"])
@roles_required(Role.PRACTICE_MANAGER)
@forbidden_in_support_session(SupportForbidden.RETENTION)
def retention(request: HttpRequest, practice_slug: str) -> HttpResponse:
    practice = request_practice(request)
    current: CallRetention = services.retention_for(practice)
    form = RetentionForm(request.POST or None, instance=current)
    if request.method == "POST" and form.is_valid():
        services.set_retention(
            practice,
            transcript_days=form.cleaned_data["transcript_days"],
            note_days=form.cleaned_data["note_days"],
        )
        messages.success(request, "Retention saved. The nightly purge applies it.")
        return redirect("calls_retention", practice_slug=practice_slug)
    return render(request, "calls/retention.html", {"form": form})
