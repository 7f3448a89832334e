"""Front desk pages (front desk and practice managers): the agent's bookings and the "needs
attention" queue. Thin: reads in `selectors`, writes in `booking.services`.

PHI: patients are masked to initials; each page records ONE access event with the ids of the
bookings whose patient it showed, and revealing one patient's details records its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.access import roles_required
from accounts.models import Role
from booking import services as bookings
from booking.frontdesk import selectors
from booking.frontdesk.forms import BookingFilterForm, ResolveForm
from compliance import audit
from compliance.gate import phi_allowed, require_phi_allowed
from compliance.models import AuditAction
from compliance.support_policy import in_support_session, read_with_reason
from scheduling.models import Booking, BookingStatus

STAFF = (Role.FRONT_DESK, Role.PRACTICE_MANAGER)
OBJECT_TYPE = "scheduling.booking"
POLL_SECONDS = 2
REASON_MIN, REASON_MAX = 5, 500  # as a transcript's reveal asks


def _booking(request: HttpRequest, pk: int) -> Booking:
    try:
        return selectors.booking(request.practice, pk)  # type: ignore[attr-defined]
    except Booking.DoesNotExist as exc:
        raise Http404("No such booking") from exc


def _masked_rows(request: HttpRequest, rows: Iterable[Booking], page: str) -> list[dict[str, Any]]:
    """Rows with the patient as initials, and one access event naming the bookings shown
    (none without a BAA in force: then nothing of the patient is shown). A support session sees
    no initials: each patient it reads is revealed on a reason of its own."""
    practice = request.practice  # type: ignore[attr-defined]
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
    practice = request.practice  # type: ignore[attr-defined]
    today = timezone.localdate(timezone=practice.tz)
    data = request.GET.copy() if request.GET else {"since": today.isoformat()}
    form = BookingFilterForm(data, initial={"since": today})
    page = selectors.paginate(
        selectors.agent_bookings(practice, form.filters()), request.GET.get("page")
    )
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "booking/frontdesk/booking_list.html",
        {
            "form": form,
            "page": page,
            "rows": _masked_rows(request, page.object_list, "AI bookings"),
            "query": query.urlencode() if request.GET else f"since={today.isoformat()}",
            "queue_count": selectors.queue_count(practice),
            "today": today,
        },
    )


@require_GET
@roles_required(*STAFF)
def needs_attention(request: HttpRequest, practice_slug: str) -> HttpResponse:
    practice = request.practice  # type: ignore[attr-defined]
    page = selectors.paginate(selectors.queue(practice), request.GET.get("page"))
    return render(
        request,
        "booking/frontdesk/needs_attention.html",
        {
            "page": page,
            "rows": _masked_rows(request, page.object_list, "needs attention queue"),
            "queue_count": selectors.queue_count(practice),
            "resolve_form": ResolveForm(),
            "poll_seconds": POLL_SECONDS,
        },
    )


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
    practice = request.practice  # type: ignore[attr-defined]
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
    Staff may give a reason; a support session must (POST `reason`), or it reads nothing."""
    booking = _booking(request, pk)
    require_phi_allowed(request.practice)  # type: ignore[attr-defined]
    reason = request.POST.get("reason", "").strip()[:REASON_MAX]
    if in_support_session(request) and len(reason) < REASON_MIN:
        return render(
            request,
            "booking/frontdesk/_patient_reason.html",
            {"b": booking, "problem": request.method == "POST"},
            status=403,
        )
    details = selectors.patient_details(booking)
    audit.record(
        AuditAction.PHI_READ,
        practice=request.practice,  # type: ignore[attr-defined]
        object_type=OBJECT_TYPE,
        object_ids=[booking.pk],
        reason=reason or "front desk: patient details revealed",
    )
    return render(request, "booking/frontdesk/_patient.html", {"b": booking, "patient": details})
