"""Front desk pages (front desk and practice managers): the agent's bookings and the "needs
attention" queue. Thin: reads in `selectors`, writes in `booking.services`.

PHI: patients are masked to initials; each page records ONE access event with the ids of the
bookings whose patient it showed, and revealing one patient's details records its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.access import roles_required
from accounts.http import request_practice
from accounts.models import Role
from booking import services as bookings
from booking.frontdesk import selectors
from booking.frontdesk.forms import BookingFilterForm, DeclineForm, ResolveForm
from compliance import audit
from compliance.gate import phi_allowed, require_phi_allowed
from compliance.models import AuditAction
from compliance.support_policy import in_support_session, read_with_reason
from core import sorting
from scheduling.models import Booking, BookingStatus

STAFF = (Role.FRONT_DESK, Role.PRACTICE_MANAGER)
OBJECT_TYPE = "scheduling.booking"
POLL_SECONDS = 2
REASON_MIN, REASON_MAX = 5, 500  # as a transcript's reveal asks


def _booking(request: HttpRequest, pk: int) -> Booking:
    try:
        return selectors.booking(request_practice(request), pk)
    except Booking.DoesNotExist as exc:
        raise Http404("No such booking") from exc


def masked_rows(request: HttpRequest, rows: Iterable[Booking], page: str) -> list[dict[str, Any]]:
    """Rows with the patient as initials, and one access event naming the bookings shown
    (none without a BAA in force: then nothing of the patient is shown). A support session sees
    no initials: each patient it reads is revealed on a reason of its own."""
    practice = request_practice(request)
    allowed = phi_allowed(practice)
    support = in_support_session(request)
    shown = allowed and not support
    out: list[dict[str, Any]] = [
        {
            "booking": b,
            "initials": selectors.initials(b) if shown else "",
            "reveal_with_reason": allowed and support,
        }
        for b in rows
    ]
    ids = [r["booking"].pk for r in out if r["initials"]]
    if ids:
        audit.record(
            AuditAction.PHI_READ,
            practice=practice,
            object_type=OBJECT_TYPE,
            object_ids=ids,
            reason=f"front desk: {page} (patient initials)",
        )
    return out


@require_GET
@roles_required(*STAFF)
def booking_list(request: HttpRequest, practice_slug: str) -> HttpResponse:
    practice = request_practice(request)
    today = timezone.localdate(timezone=practice.tz)
    data = request.GET.copy() if request.GET else {"since": today.isoformat()}
    form = BookingFilterForm(data, initial={"since": today})
    order = sorting.parse(request.GET.get("sort"), selectors.BOOKING_SORTS, "when")
    page = selectors.paginate(
        selectors.agent_bookings(practice, form.filters(), order), request.GET.get("page")
    )
    params = {k: str(v) for k, v in data.items() if k in ("status", "since", "until")}
    return render(
        request,
        "booking/frontdesk/booking_list.html",
        {
            "form": form,
            "page": page,
            "rows": masked_rows(request, page.object_list, "AI bookings"),
            "query": urlencode({**params, "sort": order.param}),
            "columns": sorting.columns(BOOKING_COLUMNS, order, params),
            "queue_count": selectors.queue_count(practice),
            "request_count": selectors.request_count(practice),
            "today": today,
        },
    )


BOOKING_COLUMNS = (
    ("When", "when"),
    ("Type", "type"),
    ("Provider", "provider"),
    ("Location", "location"),
    ("Patient", ""),  # masked, and encrypted: not sortable
    ("Status", "status"),
)
QUEUE_COLUMNS = (
    ("Appointment", "when"),
    ("Type", "type"),
    ("Provider", "provider"),
    ("Patient", ""),
    ("Accepted", "accepted"),
    ("What happened · what to do", ""),
)


@require_GET
@roles_required(*STAFF)
def needs_attention(request: HttpRequest, practice_slug: str) -> HttpResponse:
    practice = request_practice(request)
    order = sorting.parse(request.GET.get("sort"), selectors.QUEUE_SORTS, "accepted")
    page = selectors.paginate(selectors.queue(practice, order), request.GET.get("page"))
    return render(
        request,
        "booking/frontdesk/needs_attention.html",
        {
            "page": page,
            "query": urlencode({"sort": order.param}),
            "columns": sorting.columns(QUEUE_COLUMNS, order, {}),
            "rows": masked_rows(request, page.object_list, "needs attention queue"),
            "queue_count": selectors.queue_count(practice),
            "request_count": selectors.request_count(practice),
            "resolve_form": ResolveForm(),
            "poll_seconds": POLL_SECONDS,
        },
    )


@require_GET
@roles_required(*STAFF)
def booking_requests(request: HttpRequest, practice_slug: str) -> HttpResponse:
    """Requests waiting for the front desk (request-mode types on an EHR without a follow-up
    list of its own), soonest deadline first, to approve or decline."""
    practice = request_practice(request)
    page = selectors.paginate(selectors.requests(practice), request.GET.get("page"))
    return render(
        request,
        "booking/frontdesk/requests.html",
        {
            "page": page,
            "query": "",
            "rows": masked_rows(request, page.object_list, "booking requests"),
            "queue_count": selectors.queue_count(practice),
            "request_count": selectors.request_count(practice),
            "decline_form": DeclineForm(),
            "now": timezone.now(),
        },
    )


def _after_request(request: HttpRequest, practice_slug: str, pk: int) -> HttpResponse:
    """Back to the booking's page when the action was taken there, else to the requests."""
    if request.POST.get("from") == "detail":
        return redirect("frontdesk_booking_detail", practice_slug=practice_slug, pk=pk)
    return redirect("frontdesk_requests", practice_slug=practice_slug)


def _not_open(booking: Booking) -> str:
    """Why a request can no longer be approved or declined, from what the booking is now."""
    booking.refresh_from_db(fields=["status", "resolution_note", "ehr_appointment_id"])
    if booking.status == BookingStatus.DECLINED and booking.resolution_note == bookings.NOT_IN_TIME:
        return "This request was not approved in time: it has been declined and its time freed."
    if booking.status == BookingStatus.REQUESTED:
        return "This request is on the EHR's follow-up list: confirm or decline it in the EHR."
    status = booking.get_status_display().lower()
    return f"This request is no longer waiting (it is {status} now): nothing was changed."


@require_POST
@roles_required(*STAFF)
def approve(request: HttpRequest, practice_slug: str, pk: int) -> HttpResponse:
    booking = _booking(request, pk)
    if not phi_allowed(request_practice(request)):
        messages.error(
            request, "No executed BAA is in force, so the booking cannot be sent to the EHR."
        )
        return _after_request(request, practice_slug, pk)
    try:
        bookings.approve_request(booking)
    except bookings.RequestNotOpen:
        messages.error(request, _not_open(booking))
    else:
        messages.success(
            request,
            "Approved: it is being booked into the EHR (its status updates on the booking's "
            "page). If the time was taken in the EHR meanwhile, it shows in Needs attention "
            "with the reason.",
        )
    return _after_request(request, practice_slug, pk)


@require_POST
@roles_required(*STAFF)
def decline(request: HttpRequest, practice_slug: str, pk: int) -> HttpResponse:
    booking = _booking(request, pk)
    form = DeclineForm(request.POST)
    note = form.cleaned_data["note"].strip() if form.is_valid() else ""
    try:
        bookings.decline_request(booking, note or "Declined by the front desk.", request.user)  # type: ignore[arg-type]
    except bookings.RequestNotOpen:
        messages.error(request, _not_open(booking))
    else:
        messages.success(
            request, "Declined: nothing was sent to the EHR and the time is free again."
        )
    return _after_request(request, practice_slug, pk)


def _status(request: HttpRequest, booking: Booking, problem: str = "") -> HttpResponse:
    return render(
        request,
        "booking/frontdesk/_status.html",
        {
            "b": booking,
            "actions": True,
            "problem": problem,
            "resolve_form": ResolveForm(),
            "poll_seconds": POLL_SECONDS,
        },
    )


@require_GET
@roles_required(*STAFF)
def booking_status(request: HttpRequest, practice_slug: str, pk: int) -> HttpResponse:
    """The status cell of a queue row (htmx polls it while the booking is pending)."""
    return _status(request, _booking(request, pk))


@require_POST
@roles_required(*STAFF)
def retry(request: HttpRequest, practice_slug: str, pk: int) -> HttpResponse:
    booking = _booking(request, pk)
    practice = request_practice(request)
    problem = ""
    if booking.status != BookingStatus.FAILED or booking.resolved_at is not None:
        problem = "Only a failed booking that is not resolved yet can be retried."
    elif not phi_allowed(practice):
        problem = "No executed BAA is in force, so the booking cannot be sent to the EHR."
    else:
        try:
            booking = bookings.retry_booking(booking)
        except bookings.SlotTakenError:
            problem = (
                "The slot has been taken by another booking since; offer the caller another "
                "time, then resolve this one."
            )
    if getattr(request, "htmx", False):
        return _status(request, _booking(request, pk), problem)
    if problem:
        messages.error(request, problem)
    else:
        messages.info(request, "Sent to the EHR again; its status updates on this page.")
    return redirect("frontdesk_needs_attention", practice_slug=practice_slug)


@require_http_methods(["GET", "POST"])
@roles_required(*STAFF)
def resolve(request: HttpRequest, practice_slug: str, pk: int) -> HttpResponse:
    booking = _booking(request, pk)
    if booking.status != BookingStatus.FAILED or booking.resolved_at is not None:
        messages.info(request, "That booking no longer needs attention.")
        return redirect("frontdesk_needs_attention", practice_slug=practice_slug)
    form = ResolveForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        bookings.resolve_booking(booking, form.cleaned_data["note"], request.user)  # type: ignore[arg-type]
        messages.success(request, "Resolved: taken off the queue with your note.")
        return redirect("frontdesk_needs_attention", practice_slug=practice_slug)
    return render(
        request,
        "booking/frontdesk/resolve.html",
        {"b": booking, "form": form},
        status=400 if request.method == "POST" else 200,
    )


@require_http_methods(["GET", "POST"])
@roles_required(*STAFF)
@read_with_reason
def reveal_patient(request: HttpRequest, practice_slug: str, pk: int) -> HttpResponse:
    """One booking's patient in full, recorded as a PHI read (403 without a BAA in force).
    The lists' quick "Show details" (GET) records the page it was read on; the reason form
    (POST, as a transcript's reveal) must say why, and a support session can read only so."""
    booking = _booking(request, pk)
    require_phi_allowed(request_practice(request))
    reason = request.POST.get("reason", "").strip()[:REASON_MAX]
    support = in_support_session(request)
    if (support or request.method == "POST") and len(reason) < REASON_MIN:
        return render(
            request,
            "booking/frontdesk/_patient_reason.html",
            {"b": booking, "problem": request.method == "POST"},
            status=403 if support else 400,
        )
    details = selectors.patient_details(booking)
    audit.record(
        AuditAction.PHI_READ,
        practice=request_practice(request),
        object_type=OBJECT_TYPE,
        object_ids=[booking.pk],
        reason=reason or "front desk: patient details revealed",
    )
    return render(request, "booking/frontdesk/_patient.html", {"b": booking, "patient": details})
