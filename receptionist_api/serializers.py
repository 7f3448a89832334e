"""Request validation and (for the schema) response shapes of the receptionist API.

Hot responses (availability) are built as plain dicts in the views; these serializers still
describe them for the OpenAPI schema.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from calls.models import CallOutcome
from receptionist_api.fields import (
    AwareDateTimeField,
    BoundedDateField,
    BoundedIntegerField,
    DateOfBirthField,
    IdField,
    PersonNameField,
    PhoneField,
)
from scheduling.models import AppointmentType, BookingMode, BookingStatus, PendingReason
from scheduling.selectors import MAX_DAYS

__all__ = ["AwareDateTimeField"]  # re-exported: other API modules import it here


class TokenRequestSerializer(serializers.Serializer):
    grant_type = serializers.ChoiceField(choices=["client_credentials"])
    client_id = serializers.CharField()
    client_secret = serializers.CharField()
    scope = serializers.CharField(required=False, help_text="Space-separated; default: all granted")


class TokenResponseSerializer(serializers.Serializer):
    access_token = serializers.CharField()
    token_type = serializers.CharField()
    expires_in = BoundedIntegerField()
    scope = serializers.CharField()


class ProblemSerializer(serializers.Serializer):
    type = serializers.CharField()
    title = serializers.CharField()
    status = BoundedIntegerField()
    detail = serializers.CharField()
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), required=False
    )


MODE_HELP = (
    "`book`: the booking goes straight onto the schedule (tell the caller it is booked); "
    "`request`: staff confirm it first (tell the caller it is requested, not booked)."
)


class AppointmentTypeSerializer(serializers.Serializer):
    id = BoundedIntegerField()
    name = serializers.CharField()
    minutes = BoundedIntegerField()
    new_patients = serializers.BooleanField()
    existing_patients = serializers.BooleanField()
    bookable = serializers.BooleanField()
    instructions = serializers.CharField()
    booking_mode = serializers.ChoiceField(choices=BookingMode.values, help_text=MODE_HELP)


class AppointmentTypeListSerializer(serializers.Serializer):
    results = AppointmentTypeSerializer(many=True)


class IntentRequestSerializer(serializers.Serializer):
    utterance = serializers.CharField(max_length=2000, trim_whitespace=True)
    patient_status = serializers.ChoiceField(choices=["new", "existing"])


class IntentMatchSerializer(serializers.Serializer):
    appointment_type_id = BoundedIntegerField()
    name = serializers.CharField()
    confidence = serializers.FloatField(min_value=0, max_value=1)
    matched_phrase = serializers.CharField()


class IntentResponseSerializer(serializers.Serializer):
    matches = IntentMatchSerializer(many=True)


class AvailabilityQuerySerializer(serializers.Serializer):
    appointment_type_id = IdField()
    start_date = BoundedDateField()
    days = serializers.IntegerField(min_value=1, max_value=MAX_DAYS)
    location_id = IdField(required=False)
    provider_id = IdField(required=False)
    patient_status = serializers.ChoiceField(choices=["new", "existing"], default="existing")


class SlotSerializer(serializers.Serializer):
    start = AwareDateTimeField()
    end = AwareDateTimeField()
    provider_id = BoundedIntegerField()
    operatory_id = BoundedIntegerField()
    location_id = BoundedIntegerField()


class AvailabilitySerializer(serializers.Serializer):
    slots = SlotSerializer(many=True)


class HoldRequestSerializer(serializers.Serializer):
    appointment_type_id = IdField()
    provider_id = IdField()
    operatory_id = IdField()
    start = AwareDateTimeField()
    patient_status = serializers.ChoiceField(
        choices=["new", "existing"],
        default="existing",
        help_text="Provider rules can differ for new patients; as for /availability",
    )


class HoldSerializer(serializers.Serializer):
    id = BoundedIntegerField()
    expires_at = AwareDateTimeField()
    start = AwareDateTimeField()
    end = AwareDateTimeField()
    status = serializers.CharField()
    appointment_type_id = BoundedIntegerField()
    provider_id = BoundedIntegerField()
    operatory_id = BoundedIntegerField()
    location_id = BoundedIntegerField()
    booking_mode = serializers.ChoiceField(
        choices=BookingMode.values, help_text=f"The type's booking mode. {MODE_HELP}"
    )


class BookingPatientSerializer(serializers.Serializer):
    """An existing patient by our id, or the caller's demographics (matched before created)."""

    id = IdField(required=False)
    first_name = PersonNameField(required=False)
    last_name = PersonNameField(required=False)
    date_of_birth = DateOfBirthField(required=False)
    phone = PhoneField(required=False)
    email = serializers.EmailField(max_length=254, required=False)
    insurance = serializers.DictField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "id" in attrs:
            return {"id": attrs["id"]}
        missing = [
            f for f in ("first_name", "last_name", "date_of_birth", "phone") if f not in attrs
        ]
        if missing:
            raise serializers.ValidationError(
                {f: ["Required unless the patient's id is given."] for f in missing}
            )
        return attrs


class BookingRequestSerializer(serializers.Serializer):
    hold_id = IdField()
    patient = BookingPatientSerializer()
    reason = serializers.CharField(max_length=2000, allow_blank=True)
    call_id = serializers.CharField(max_length=100, required=False, allow_null=True)


class BookingAcceptedSerializer(serializers.Serializer):
    id = BoundedIntegerField()
    status = serializers.CharField()
    booking_mode = serializers.ChoiceField(choices=BookingMode.values, help_text=MODE_HELP)


STATUS_HELP = (
    "`pending`: being written to the practice's system; `confirmed`: booked; `requested`: a "
    "request waiting for staff to confirm it; `declined`: staff turned the request down; "
    "`failed`: not booked (see `failure_reason`); `cancel_requested`: cancel asked of the "
    "practice's system, which has not acted on it yet (the appointment still stands); "
    "`cancelled`: cancelled in the practice's system."
)


class BookingSerializer(serializers.Serializer):
    id = BoundedIntegerField()
    status = serializers.ChoiceField(choices=BookingStatus.values, help_text=STATUS_HELP)
    start = AwareDateTimeField()
    end = AwareDateTimeField()
    provider_id = BoundedIntegerField()
    appointment_type_id = BoundedIntegerField()
    ehr_appointment_id = BoundedIntegerField(allow_null=True)
    failure_reason = serializers.CharField(allow_blank=True)
    pending_reason = serializers.ChoiceField(
        choices=PendingReason.values,
        allow_null=True,
        help_text="While `pending`: why it is not confirmed yet (null once it is not pending).",
    )
    pending_message = serializers.CharField(
        allow_null=True,
        help_text="While `pending`: the reason as a sentence the agent can relay to the caller.",
    )
    booking_mode = serializers.ChoiceField(choices=BookingMode.values, help_text=MODE_HELP)
    request_expires_at = AwareDateTimeField(
        allow_null=True,
        help_text="While `requested` in the practice's own queue: when the slot stops being "
        "kept for it if staff have not approved it (null otherwise).",
    )


# --- calls and screening ---------------------------------------------------------------------

MAX_TURNS = 2000
MAX_TURN_CHARS = 20_000


MAX_TEXT = 5000


class CallRequestSerializer(serializers.Serializer):
    external_id = serializers.CharField(max_length=200)
    started_at = AwareDateTimeField()
    caller_phone = serializers.CharField(
        max_length=32, required=False, allow_blank=True, allow_null=True
    )
    ended_at = AwareDateTimeField(required=False, allow_null=True)


class CallCreatedSerializer(serializers.Serializer):
    id = BoundedIntegerField()


class TurnSerializer(serializers.Serializer):
    speaker = serializers.ChoiceField(choices=["caller", "agent"])
    text = serializers.CharField(max_length=MAX_TURN_CHARS, allow_blank=True, trim_whitespace=False)
    at = AwareDateTimeField()


class TranscriptRequestSerializer(serializers.Serializer):
    turns = TurnSerializer(many=True, allow_empty=False, max_length=MAX_TURNS)
    ended_at = AwareDateTimeField(required=False, allow_null=True)
    outcome = serializers.ChoiceField(
        choices=[
            CallOutcome.ESCALATED,
            CallOutcome.MESSAGE_TAKEN,
            CallOutcome.ABANDONED,
            CallOutcome.FAILED,
        ],
        required=False,
        help_text="What the call came to when no booking was made (a booking decides itself).",
    )


class NoteStateSerializer(serializers.Serializer):
    status = serializers.CharField()
    failure_reason = serializers.CharField()
    attempts = BoundedIntegerField()


class TranscriptStoredSerializer(serializers.Serializer):
    id = BoundedIntegerField()
    turns = BoundedIntegerField()
    outcome = serializers.CharField()
    booking_id = BoundedIntegerField(allow_null=True)
    encounter_note = NoteStateSerializer(allow_null=True)


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
