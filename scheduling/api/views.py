"""Receptionist API v1 views: thin; the work is in scheduling.selectors and .services."""

from __future__ import annotations

import json
from contextlib import ExitStack
from functools import cache
from typing import Any

from django.http import HttpRequest, HttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from oauth2_provider.oauth2_backends import get_oauthlib_core
from rest_framework import exceptions, status
from rest_framework.parsers import FormParser, JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from compliance.api import PHIGatedMixin
from compliance.context import bind as bind_audit
from portal.models import Practice
from scheduling import bookings, selectors, services
from scheduling.api import serializers as s
from scheduling.api.authentication import (
    TENANT_STACK,
    ApiClientAuthentication,
    ApiPrincipal,
    HasScope,
)
from scheduling.api.errors import (
    HoldBooked,
    HoldExpired,
    IdempotencyConflict,
    SlotUnavailable,
    problem_response,
)
from scheduling.models import ApiScope, AppointmentType, Booking, Hold
from scheduling.slots import Slot


def problems(*codes: int) -> dict[Any, Any]:
    """Schema entries for error responses, served as application/problem+json."""
    return {
        (code, "application/problem+json"): OpenApiResponse(s.ProblemSerializer) for code in codes
    }


ERRORS = problems(401, 403, 404)


class ReceptionistAPIView(APIView):
    """Base of the bearer-token endpoints: the whole request runs in the token's practice.

    Authentication enters the practice's `tenant_context` on a stack that `dispatch()` unwinds
    once the response is finalised, errors included, so the connection goes back clean.
    """

    authentication_classes = [ApiClientAuthentication]
    permission_classes = [HasScope]
    required_scope: str = ""
    practice: Practice

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        with ExitStack() as stack:
            setattr(request, TENANT_STACK, stack)
            return super().dispatch(request, *args, **kwargs)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        principal = request.user
        assert isinstance(principal, ApiPrincipal)  # HasScope admitted nothing else
        self.practice = principal.practice
        request._request.practice = self.practice  # audit entries and logs name the practice
        bind_audit(api_client_id=str(principal.client.pk))  # ...and the client acting


@cache
def _oauth_core() -> Any:
    return get_oauthlib_core()


class TokenView(APIView):
    """OAuth2 client credentials (form or JSON body, or HTTP Basic for the client). Errors are
    problem+json that also carry RFC 6749's `error` field."""

    # django-oauth-toolkit issues the token; scopes per ApiClient (scheduling.api.oauth).
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    parser_classes = [FormParser, JSONParser]  # for the schema; DOT reads the body itself

    @extend_schema(
        operation_id="oauth_token",
        request=s.TokenRequestSerializer,
        responses={200: s.TokenResponseSerializer, **problems(400, 401)},
        auth=[],
        tags=["auth"],
    )
    def post(self, request: Request) -> Response:
        _, headers, body, code = _oauth_core().create_token_response(request._request)
        data = json.loads(body) if body else {}
        if code != 200:
            error = str(data.get("error", "invalid_request"))
            passed = {k: v for k, v in headers.items() if k == "WWW-Authenticate"}
            return problem_response(
                code,
                error,
                str(data.get("error_description") or _TOKEN_ERRORS.get(error, error)),
                headers=passed | {"Cache-Control": "no-store"},
                error=error,
            )
        return Response(data, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


_TOKEN_ERRORS = {
    "invalid_client": "Unknown client, wrong secret, or a revoked client.",
    "invalid_scope": "The client was not granted the requested scope.",
    "unsupported_grant_type": "Only grant_type=client_credentials is supported.",
    "unauthorized_client": "This client may not use that grant type.",
    "invalid_request": "The token request is malformed.",
}


class AppointmentTypesView(ReceptionistAPIView):
    """The practice's appointment types; `bookable` says whether the agent may book one."""

    required_scope = ApiScope.AVAILABILITY_READ

    @extend_schema(
        operation_id="appointment_types_list",
        responses={200: s.AppointmentTypeListSerializer, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        rows = (
            AppointmentType.objects.for_practice(self.practice)
            .order_by("name", "pk")
            .values(
                "id",
                "name",
                "minutes",
                "new_patients",
                "existing_patients",
                "bookable",
                "instructions",
            )
        )
        return Response({"results": list(rows)})


class IntentResolveView(PHIGatedMixin, ReceptionistAPIView):
    """Caller's words -> candidate appointment types, best first; empty rather than a guess."""

    required_scope = ApiScope.AVAILABILITY_READ

    @extend_schema(
        operation_id="intents_resolve",
        request=s.IntentRequestSerializer,
        responses={200: s.IntentResponseSerializer, **problems(400), **ERRORS},
    )
    def post(self, request: Request) -> Response:
        data = _valid(s.IntentRequestSerializer, request.data)
        from scheduling.intents import resolve_intent  # written alongside; imported late

        matches = resolve_intent(self.practice, data["utterance"], data["patient_status"])
        return Response(
            {
                "matches": [
                    {
                        "appointment_type_id": m.appointment_type_id,
                        "name": m.name,
                        "confidence": round(float(m.confidence), 4),
                        "matched_phrase": m.matched_phrase,
                    }
                    for m in matches
                ]
            }
        )


class AvailabilityView(ReceptionistAPIView):
    """Bookable slots for a type over 1..31 days, ordered by start, in each location's zone."""

    required_scope = ApiScope.AVAILABILITY_READ

    @extend_schema(
        operation_id="availability",
        parameters=[s.AvailabilityQuerySerializer],
        responses={200: s.AvailabilitySerializer, **problems(400), **ERRORS},
    )
    def get(self, request: Request) -> HttpResponse:
        q = _valid(s.AvailabilityQuerySerializer, request.query_params)
        slots = selectors.available_slots(
            self.practice,
            appointment_type_id=q["appointment_type_id"],
            start_date=q["start_date"],
            days=q["days"],
            patient_status=q["patient_status"],
            location_id=q.get("location_id"),
            provider_id=q.get("provider_id"),
        )
        return HttpResponse(_slots_json(slots), content_type="application/json")


def _slots_json(slots: list[Slot]) -> bytes:
    """The availability body, written as text: a month is thousands of slots, and a dict per
    slot for DRF's renderer cost more than the slot search (and kept the garbage collector
    busy). The engine builds each instant once and slots share them: format each once (keyed
    by identity; hashing aware datetimes is slower than formatting them). ISO 8601 text and
    integers need no JSON escaping."""
    iso: dict[int, str] = {}
    parts = []
    for start, end, provider_id, operatory_id, location_id in slots:
        a = iso.get(id(start))
        if a is None:
            a = iso[id(start)] = start.isoformat()
        b = iso.get(id(end))
        if b is None:
            b = iso[id(end)] = end.isoformat()
        parts.append(
            f'{{"start":"{a}","end":"{b}","provider_id":{provider_id},'
            f'"operatory_id":{operatory_id},"location_id":{location_id}}}'
        )
    return f'{{"slots":[{",".join(parts)}]}}'.encode()


def _hold_body(hold: Hold, zone: Any) -> dict[str, Any]:
    return {
        "id": hold.pk,
        "expires_at": hold.expires_at.astimezone(zone).isoformat(),
        "start": hold.start.astimezone(zone).isoformat(),
        "end": hold.end.astimezone(zone).isoformat(),
        "status": hold.status,
        "appointment_type_id": hold.appointment_type_id,
        "provider_id": hold.provider_id,
        "operatory_id": hold.operatory_id,
        "location_id": hold.location_id,
    }


class HoldsView(ReceptionistAPIView):
    """Hold a slot the schedule offers for a few minutes, or 409 `slot_unavailable`."""

    required_scope = ApiScope.BOOKINGS_WRITE

    @extend_schema(
        operation_id="holds_create",
        request=s.HoldRequestSerializer,
        responses={201: s.HoldSerializer, **problems(400, 409), **ERRORS},
    )
    def post(self, request: Request) -> Response:
        data = _valid(s.HoldRequestSerializer, request.data)
        try:
            hold = services.place_hold(
                self.practice,
                appointment_type_id=data["appointment_type_id"],
                provider_id=data["provider_id"],
                operatory_id=data["operatory_id"],
                start=data["start"],
                patient_status=data["patient_status"],
            )
        except services.SlotUnavailableError as exc:
            raise SlotUnavailable() from exc
        # place_hold leaves start/end in the location's zone (the engine's slot): answer in it.
        return Response(_hold_body(hold, hold.start.tzinfo), status=status.HTTP_201_CREATED)


class HoldDetailView(ReceptionistAPIView):
    """Release a hold (idempotent); a booked hold is cancelled through its booking instead."""

    required_scope = ApiScope.BOOKINGS_WRITE

    @extend_schema(
        operation_id="holds_release",
        parameters=[OpenApiParameter("hold_id", int, OpenApiParameter.PATH)],
        responses={204: None, **problems(409), **ERRORS},
    )
    def delete(self, request: Request, hold_id: int) -> Response:
        try:
            services.release_hold(self.practice, hold_id)
        except services.HoldBookedError as exc:
            raise HoldBooked() from exc
        return Response(status=status.HTTP_204_NO_CONTENT)


def _valid(serializer_class: type[Any], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


# --- bookings ----------------------------------------------------------------------------------

IDEMPOTENCY_HEADER = "Idempotency-Key"


def _booking_body(booking: Booking) -> dict[str, Any]:
    zone = booking.location.tz
    return {
        "id": booking.pk,
        "status": booking.status,
        "start": booking.start.astimezone(zone).isoformat(),
        "end": booking.end.astimezone(zone).isoformat(),
        "provider_id": booking.provider_id,
        "appointment_type_id": booking.appointment_type_id,
        "ehr_appointment_id": booking.ehr_appointment_id,
        "failure_reason": booking.failure_reason,
    }


def _booking(practice: Practice, booking_id: int) -> Booking:
    return (
        Booking.objects.for_practice(practice)
        .select_related("location", "location__practice")
        .get(pk=booking_id)
    )


class BookingsView(PHIGatedMixin, ReceptionistAPIView):
    """Book a held slot: 202 pending; the EHR write happens in a task (poll the booking)."""

    required_scope = ApiScope.BOOKINGS_WRITE

    @extend_schema(
        operation_id="bookings_create",
        parameters=[OpenApiParameter(IDEMPOTENCY_HEADER, str, OpenApiParameter.HEADER, True)],
        request=s.BookingRequestSerializer,
        responses={202: s.BookingAcceptedSerializer, **problems(400, 409, 422), **ERRORS},
    )
    def post(self, request: Request) -> Response:
        key = (request.headers.get(IDEMPOTENCY_HEADER) or "").strip()
        if not key or len(key) > 200:
            raise exceptions.ValidationError(
                {IDEMPOTENCY_HEADER: ["This header is required (1 to 200 characters)."]}
            )
        _valid(s.BookingRequestSerializer, request.data)
        principal = request.user
        assert isinstance(principal, ApiPrincipal)
        try:
            booking, _ = bookings.create_booking(
                self.practice,
                idempotency_key=key,
                body=dict(request.data),
                api_client=principal.client,
            )
        except bookings.IdempotencyConflict as exc:
            raise IdempotencyConflict() from exc
        except bookings.HoldExpiredError as exc:
            raise HoldExpired() from exc
        except bookings.SlotTakenError as exc:
            raise SlotUnavailable() from exc
        return Response(
            {"id": booking.pk, "status": booking.status}, status=status.HTTP_202_ACCEPTED
        )


class BookingDetailView(PHIGatedMixin, ReceptionistAPIView):
    required_scope = ApiScope.BOOKINGS_WRITE

    @extend_schema(
        operation_id="bookings_retrieve",
        parameters=[OpenApiParameter("booking_id", int, OpenApiParameter.PATH)],
        responses={200: s.BookingSerializer, **ERRORS},
    )
    def get(self, request: Request, booking_id: int) -> Response:
        return Response(_booking_body(_booking(self.practice, booking_id)))


class BookingCancelView(PHIGatedMixin, ReceptionistAPIView):
    """Cancel a booking here and (by a task) in the EHR. Idempotent."""

    required_scope = ApiScope.BOOKINGS_WRITE

    @extend_schema(
        operation_id="bookings_cancel",
        request=None,
        parameters=[OpenApiParameter("booking_id", int, OpenApiParameter.PATH)],
        responses={200: s.BookingSerializer, **ERRORS},
    )
    def post(self, request: Request, booking_id: int) -> Response:
        booking = bookings.cancel_booking(_booking(self.practice, booking_id))
        return Response(_booking_body(_booking(self.practice, booking.pk)))
