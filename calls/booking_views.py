"""A booking's own page for the front desk, and cancelling it through the EHR.

It lives with calls because it shows the call the booking was made during, the transcript's
link and the encounter note's state: bookings never import calls, calls may read bookings.

PHI: the patient shows as initials (one access event, as on the lists) until revealed with a
reason (its own access event, through the front desk's reveal); nothing else of the patient
is read. Another practice's booking is a 404 before anything is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.contrib import messages
from django.core.exceptions import ObjectDoesNotExist
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from accounts.access import roles_required
from accounts.http import request_practice
from accounts.models import Practice
from booking import services as bookings
from booking.frontdesk import selectors
from booking.frontdesk.forms import DeclineForm
from booking.frontdesk.views import STAFF, masked_rows
from calls import selectors as call_selectors
from compliance.gate import phi_allowed
from compliance.support_policy import in_support_session
from scheduling import services as scheduling_services
from scheduling.models import Booking, BookingStatus, Operatory, Provider
from scheduling.selectors import available_slots


def _booking(request: HttpRequest, pk: int) -> Booking:
    try:
        return selectors.booking_page(request_practice(request), pk)
    except Booking.DoesNotExist as exc:
        raise Http404("No such booking") from exc


@require_GET
@roles_required(*STAFF)
def booking_detail(request: HttpRequest, practice_slug: str, pk: int) -> HttpResponse:
    booking = _booking(request, pk)
    practice = request_practice(request)
    [row] = masked_rows(request, [booking], "booking detail")
    call = call_selectors.call_for_booking(practice, booking.pk, booking.call_id)
    return render(
        request,
        "booking/frontdesk/booking_detail.html",
        {
            "b": booking,
            "row": row,
            "history": selectors.status_history(booking),
            "call": call,
            "note": getattr(call, "encounter_note", None) if call is not None else None,
            "can_cancel": booking.status in selectors.CANCELLABLE,
            "open_request": bookings.is_open_request(booking),
            "decline_form": DeclineForm(),
            "moves": selectors.moves(booking),
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
        "booking/frontdesk/booking_cancel.html",
        {"b": booking, "confirmed": booking.status == BookingStatus.CONFIRMED},
    )


MOVE_DAYS = 7
MOVE_SLOTS = 40


def _day(value: str | None, today: date) -> date:
    try:
        day = date.fromisoformat(value or "")
    except ValueError:
        return today
    return min(max(day, today), today + timedelta(days=365))


@require_http_methods(["GET", "POST"])
@roles_required(*STAFF)
def booking_reschedule(request: HttpRequest, practice_slug: str, pk: int) -> HttpResponse:
    """Move a booking: GET offers the free times of its type (a week from the chosen day), POST
    holds the chosen one and books it; the original is cancelled once the EHR confirms the new
    time (`bookings.reschedule_booking`)."""
    booking = _booking(request, pk)
    practice = request_practice(request)
    if booking.status == BookingStatus.REQUESTED:
        messages.info(request, bookings.REQUEST_NOT_MOVABLE)
        return redirect("frontdesk_booking_detail", practice_slug=practice_slug, pk=pk)
    if booking.status not in selectors.CANCELLABLE:
        messages.info(request, "Only a pending or confirmed booking can be moved.")
        return redirect("frontdesk_booking_detail", practice_slug=practice_slug, pk=pk)
    if request.method == "POST":
        problem = _move(request, booking)
        if isinstance(problem, Booking):
            messages.success(
                request,
                "Moving: the new time is being written to the EHR. The original appointment "
                "is cancelled once the EHR confirms the new one, and stays if it does not.",
            )
            return redirect("frontdesk_booking_detail", practice_slug=practice_slug, pk=problem.pk)
        messages.error(request, problem)
    today = timezone.localdate(timezone=practice.tz)
    day = _day(request.GET.get("from") or request.POST.get("from"), today)
    slots = _free_slots(practice, booking, day)
    return render(
        request,
        "booking/frontdesk/booking_reschedule.html",
        {
            "b": booking,
            "slots": slots,
            "day": day,
            "days": MOVE_DAYS,
            "next_day": day + timedelta(days=MOVE_DAYS),
            "previous_day": max(today, day - timedelta(days=MOVE_DAYS)),
            "today": today,
        },
        status=400 if request.method == "POST" else 200,
    )


@dataclass(frozen=True)
class FreeTime:
    value: str  # what the form posts: provider|operatory|start
    start: datetime
    provider: str
    room: str


def _free_slots(practice: Practice, booking: Booking, day: date) -> list[FreeTime]:
    """The type's free times at the booking's location, as the schedule offers them (the
    hold checks the same), with who and where: a constant number of queries."""
    found = available_slots(
        practice,
        appointment_type_id=booking.appointment_type_id,
        start_date=day,
        days=MOVE_DAYS,
        location_id=booking.location_id,
    )[:MOVE_SLOTS]
    providers = dict(
        Provider.objects.for_practice(practice)
        .filter(pk__in={s.provider_id for s in found})
        .values_list("pk", "name")
    )
    rooms = dict(
        Operatory.objects.for_practice(practice)
        .filter(pk__in={s.operatory_id for s in found})
        .values_list("pk", "name")
    )
    return [
        FreeTime(
            f"{s.provider_id}|{s.operatory_id}|{s.start.isoformat()}",
            s.start,
            providers.get(s.provider_id, ""),
            rooms.get(s.operatory_id, ""),
        )
        for s in found
    ]


def _move(request: HttpRequest, booking: Booking) -> Booking | str:
    """The new booking, or what to tell the person."""
    raw = request.POST.get("slot", "")
    try:
        provider, operatory, start = raw.split("|", 2)
        when = datetime.fromisoformat(start)
        if when.tzinfo is None:
            raise ValueError(raw)
        hold = scheduling_services.place_hold(
            request_practice(request),
            appointment_type_id=booking.appointment_type_id,
            provider_id=int(provider),
            operatory_id=int(operatory),
            start=when,
        )
    except (ValueError, ObjectDoesNotExist):
        return "Choose one of the times offered."
    except scheduling_services.SlotUnavailableError:
        return "That time has just been taken. Choose another."
    try:
        return bookings.reschedule_booking(booking, hold)
    except bookings.MoveRefused as exc:
        scheduling_services.release_hold(request_practice(request), hold.pk)
        return str(exc)
    except bookings.HoldExpiredError:
        return "That time is no longer held. Choose it again."
