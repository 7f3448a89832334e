"""`POST /api/v1/calls/{id}/screen`: the caller's words against the practice's live protocols.

Thin: validation here, the decision in `screening.screen`, the record in `services.screen_call`.
The caller's words are PHI, so the BAA gate applies; another practice's call is simply not there
(404, row-level security).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from calls.escalation import services
from calls.models import Call
from compliance.api import PHIGatedMixin
from receptionist_api.fields import BoundedDateField, BoundedIntegerField, IdField
from receptionist_api.views import ERRORS, ReceptionistAPIView, id_parameter, problems
from scheduling.models import ApiScope, AppointmentType

MAX_TEXT = 5000


class ScreenRequestSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=MAX_TEXT, help_text="What the caller said")
    appointment_type_id = IdField(required=False, allow_null=True)
    procedure_date = BoundedDateField(
        required=False,
        allow_null=True,
        help_text="The caller's procedure (YYYY-MM-DD, 2000-01-01 to 2199-12-31)",
    )

    def validate_appointment_type_id(self, value: int | None) -> int | None:
        practice = self.context["practice"]
        if value is not None and not (
            AppointmentType.objects.for_practice(practice).filter(pk=value).exists()
        ):
            raise serializers.ValidationError("Unknown appointment type.")
        return value


class RouteToSerializer(serializers.Serializer):
    provider_id = BoundedIntegerField()
    name = serializers.CharField()
    phone = serializers.CharField()


class ScreenResponseSerializer(serializers.Serializer):
    escalate = serializers.BooleanField()
    protocol_id = BoundedIntegerField(allow_null=True)
    severity = serializers.ChoiceField(choices=["emergency", "urgent", "routine"], allow_null=True)
    route_to = RouteToSerializer(allow_null=True)
    instructions = serializers.CharField(allow_null=True)
    route = serializers.CharField(allow_null=True)
    protocol_version = BoundedIntegerField(allow_null=True)
    protocol_name = serializers.CharField(allow_null=True)
    matched_trigger = serializers.CharField(allow_null=True)
    on_call_missing = serializers.BooleanField()


class CallScreenView(PHIGatedMixin, ReceptionistAPIView):
    """Escalate or not, how, and to whom now: per the live protocols and today's on-call rota.
    Emergencies beat everything; no match answers `escalate: false`."""

    required_scope = ApiScope.CALLS_WRITE

    @extend_schema(
        operation_id="calls_screen",
        parameters=[id_parameter("call_id")],
        request=ScreenRequestSerializer,
        responses={200: ScreenResponseSerializer, **problems(400), **ERRORS},
        tags=["calls"],
    )
    def post(self, request: Request, call_id: int) -> Response:
        call = Call.objects.for_practice(self.practice).select_related("practice").get(pk=call_id)
        serializer = ScreenRequestSerializer(data=request.data, context={"practice": self.practice})
        serializer.is_valid(raise_exception=True)
        data: dict[str, Any] = dict(serializer.validated_data)
        decision = services.screen_call(
            call,
            data["text"],
            appointment_type_id=data.get("appointment_type_id"),
            procedure_date=data.get("procedure_date"),
        )
        return Response(decision.as_api())
