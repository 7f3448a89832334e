"""Receptionist API v1, calls: record a call, store its transcript. Thin over calls.services."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from calls import services
from calls.models import Call, EncounterNote
from compliance.api import PHIGatedMixin
from receptionist_api.authentication import ApiPrincipal
from receptionist_api.errors import TranscriptPurgedProblem
from receptionist_api.serializers import (
    CallCreatedSerializer,
    CallRequestSerializer,
    TranscriptRequestSerializer,
    TranscriptStoredSerializer,
)
from receptionist_api.views import (
    ERRORS,
    ReceptionistAPIView,
    id_parameter,
    problems,
    validated,
)
from scheduling.models import ApiScope


def _note_state(call: Call) -> dict[str, Any] | None:
    note = EncounterNote.objects.filter(call_id=call.pk).first()
    if note is None:
        return None
    return {
        "status": note.status,
        "failure_reason": note.failure_reason,
        "attempts": note.attempts,
    }


class CallsView(PHIGatedMixin, ReceptionistAPIView):
    """Record a call (idempotent on external_id: the same id answers the same call)."""

    required_scope = ApiScope.CALLS_WRITE

    @extend_schema(
        operation_id="calls_create",
        request=CallRequestSerializer,
        responses={201: CallCreatedSerializer, **problems(400), **ERRORS},
        tags=["calls"],
    )
    def post(self, request: Request) -> Response:
        data = validated(CallRequestSerializer, request.data)
        principal = request.user
        assert isinstance(principal, ApiPrincipal)
        call, _ = services.record_call(
            self.practice,
            external_id=data["external_id"],
            started_at=data["started_at"],
            caller_phone=data.get("caller_phone") or None,
            ended_at=data.get("ended_at"),
            api_client=principal.client,
        )
        return Response({"id": call.pk}, status=status.HTTP_201_CREATED)


class CallTranscriptView(PHIGatedMixin, ReceptionistAPIView):
    """Store the call's turns (encrypted). A call tied to a confirmed booking queues its
    encounter note for the patient's EHR record."""

    required_scope = ApiScope.CALLS_WRITE

    @extend_schema(
        operation_id="calls_transcript",
        request=TranscriptRequestSerializer,
        parameters=[id_parameter("call_id")],
        responses={200: TranscriptStoredSerializer, **problems(400, 409), **ERRORS},
        tags=["calls"],
    )
    def put(self, request: Request, call_id: int) -> Response:
        call = Call.objects.for_practice(self.practice).get(pk=call_id)  # 404 if not ours
        data = validated(TranscriptRequestSerializer, request.data)
        try:
            call = services.store_transcript(
                call,
                data["turns"],
                ended_at=data.get("ended_at"),
                outcome=data.get("outcome"),
            )
        except services.TranscriptPurged as exc:
            raise TranscriptPurgedProblem() from exc
        return Response(
            {
                "id": call.pk,
                "turns": call.transcript_turns,
                "outcome": call.outcome,
                "booking_id": call.booking_id,
                "encounter_note": _note_state(call),
            }
        )
