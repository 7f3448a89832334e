"""A booking's own page for the front desk, and cancelling it through the EHR.

It lives with calls because it shows the call the booking was made during, the transcript's
link and the encounter note's state: bookings never import calls, calls may read bookings.

PHI: the patient shows as initials (one access event, as on the lists) until revealed with a
reason (its own access event, through the front desk's reveal); nothing else of the patient
is read. Another practice's booking is a 404 before anything is read.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from calls import selectors as call_selectors
from compliance.gate import phi_allowed
from compliance.support_policy import in_support_session
from portal.access import roles_required
from scheduling import bookings
from scheduling.frontdesk import selectors
from scheduling.frontdesk.views import STAFF, masked_rows
from scheduling.models import Booking, BookingStatus


def _booking(request: HttpRequest, pk: int) -> Booking:
    try:
        return selectors.booking_page(request.practice, pk)  # type: ignore[attr-defined]
    except Booking.DoesNotExist as exc:
        raise Http404("No such booking") from exc


@require_GET
@roles_required(*STAFF)
def booking_detail(request: HttpRequest, practice_slug: str, pk: int) -> HttpResponse:
    booking = _booking(request, pk)
    practice = request.practice  # type: ignore[attr-defined]
    [row] = masked_rows(request, [booking], "booking detail")
    call = call_selectors.call_for_booking(practice, booking.pk, booking.call_id)
    return render(
        request,
        "scheduling/frontdesk/booking_detail.html",
        {
            "b": booking,
            "row": row,
            "history": selectors.status_history(booking),
            "call": call,
            "note": getattr(call, "encounter_note", None) if call is not None else None,
            "can_cancel": booking.status in selectors.CANCELLABLE,
            "ehr_cancellation": selectors.ehr_cancellation(booking),
            "phi_allowed": phi_allowed(practice),
            "support": in_support_session(request),
        },
    )


@require_http_methods(["GET", "POST"])
@roles_required(*STAFF)
def booking_cancel(request: HttpRequest, practice_slug: str, pk: int) -> HttpResponse:
    """GET asks to confirm; POST cancels here at once and in the EHR by a task (the same
    service the voice agent's cancel uses). A read-only support session is refused the POST
    by the support middleware."""
    booking = _booking(request, pk)
    if booking.status not in selectors.CANCELLABLE:
        status = booking.get_status_display().lower()
        messages.info(request, f"This booking is {status}: there is nothing to cancel.")
        return redirect("frontdesk_booking_detail", practice_slug=practice_slug, pk=pk)
    if request.method == "POST":
        bookings.cancel_booking(booking)
        messages.success(
            request,
            "Cancelled. The slot is free again here"
            + (
                "; the appointment is being cancelled in the EHR (its state shows below)."
                if booking.ehr_appointment_id is not None
                else "; it had not reached the EHR, so nothing is left there."
            ),
        )
        return redirect("frontdesk_booking_detail", practice_slug=practice_slug, pk=pk)
    return render(
        request,
        "scheduling/frontdesk/booking_cancel.html",
        {"b": booking, "confirmed": booking.status == BookingStatus.CONFIRMED},
    )
