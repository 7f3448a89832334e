"""`POST /api/v1/calls/{id}/screen`: the caller's words against the practice's live protocols.

Thin: validation here, the decision in `screening.screen`, the record in `services.screen_call`.
The caller's words are PHI, so the BAA gate applies; another practice's call is simply not there
(404, row-level security).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from calls.escalation import services
from calls.models import Call
from compliance.api import PHIGatedMixin
from receptionist_api.serializers import ScreenRequestSerializer, ScreenResponseSerializer
from receptionist_api.views import ERRORS, ReceptionistAPIView, id_parameter, problems
from scheduling.models import ApiScope


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
