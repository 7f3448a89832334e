"""Request validation and (for the schema) response shapes of the receptionist API.

Hot responses (availability) are built as plain dicts in the views; these serializers still
describe them for the OpenAPI schema.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from scheduling.models import PendingReason
from scheduling.selectors import MAX_DAYS


@extend_schema_field(OpenApiTypes.DATETIME)
class AwareDateTimeField(serializers.Field):
    """ISO 8601 with an offset, kept in the caller's offset (a naive time is ambiguous)."""

    default_error_messages = {
        "invalid": "Use ISO 8601 with an offset, e.g. 2026-05-04T11:00:00-07:00.",
        "naive": "The time needs a UTC offset, e.g. 2026-05-04T11:00:00-07:00.",
    }

    def to_internal_value(self, data: Any) -> datetime:
        try:
            value = datetime.fromisoformat(str(data))
        except ValueError:
            self.fail("invalid")
        if value.tzinfo is None or value.utcoffset() is None:
            self.fail("naive")
        return value

    def to_representation(self, value: datetime) -> str:
        return value.isoformat()


class TokenRequestSerializer(serializers.Serializer):
    grant_type = serializers.ChoiceField(choices=["client_credentials"])
    client_id = serializers.CharField()
    client_secret = serializers.CharField()
    scope = serializers.CharField(required=False, help_text="Space-separated; default: all granted")


class TokenResponseSerializer(serializers.Serializer):
    access_token = serializers.CharField()
    token_type = serializers.CharField()
    expires_in = serializers.IntegerField()
    scope = serializers.CharField()


class ProblemSerializer(serializers.Serializer):
    type = serializers.CharField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), required=False
    )


class AppointmentTypeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    minutes = serializers.IntegerField()
    new_patients = serializers.BooleanField()
    existing_patients = serializers.BooleanField()
    bookable = serializers.BooleanField()
    instructions = serializers.CharField()


class AppointmentTypeListSerializer(serializers.Serializer):
    results = AppointmentTypeSerializer(many=True)


class IntentRequestSerializer(serializers.Serializer):
    utterance = serializers.CharField(max_length=2000, trim_whitespace=True)
    patient_status = serializers.ChoiceField(choices=["new", "existing"])


class IntentMatchSerializer(serializers.Serializer):
    appointment_type_id = serializers.IntegerField()
    name = serializers.CharField()
    confidence = serializers.FloatField(min_value=0, max_value=1)
    matched_phrase = serializers.CharField()


class IntentResponseSerializer(serializers.Serializer):
    matches = IntentMatchSerializer(many=True)


class AvailabilityQuerySerializer(serializers.Serializer):
    appointment_type_id = serializers.IntegerField(min_value=1)
    start_date = serializers.DateField(input_formats=["%Y-%m-%d"])
    days = serializers.IntegerField(min_value=1, max_value=MAX_DAYS)
    location_id = serializers.IntegerField(min_value=1, required=False)
    provider_id = serializers.IntegerField(min_value=1, required=False)
    patient_status = serializers.ChoiceField(choices=["new", "existing"], default="existing")


class SlotSerializer(serializers.Serializer):
    start = AwareDateTimeField()
    end = AwareDateTimeField()
    provider_id = serializers.IntegerField()
    operatory_id = serializers.IntegerField()
    location_id = serializers.IntegerField()


class AvailabilitySerializer(serializers.Serializer):
    slots = SlotSerializer(many=True)


class HoldRequestSerializer(serializers.Serializer):
    appointment_type_id = serializers.IntegerField(min_value=1)
    provider_id = serializers.IntegerField(min_value=1)
    operatory_id = serializers.IntegerField(min_value=1)
    start = AwareDateTimeField()
    patient_status = serializers.ChoiceField(
        choices=["new", "existing"],
        default="existing",
        help_text="Provider rules can differ for new patients; as for /availability",
    )


class HoldSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    expires_at = AwareDateTimeField()
    start = AwareDateTimeField()
    end = AwareDateTimeField()
    status = serializers.CharField()
    appointment_type_id = serializers.IntegerField()
    provider_id = serializers.IntegerField()
    operatory_id = serializers.IntegerField()
    location_id = serializers.IntegerField()


class BookingPatientSerializer(serializers.Serializer):
    """An existing patient by our id, or the caller's demographics (matched before created)."""

    id = serializers.IntegerField(min_value=1, required=False)
    first_name = serializers.CharField(max_length=100, required=False)
    last_name = serializers.CharField(max_length=100, required=False)
    date_of_birth = serializers.DateField(input_formats=["%Y-%m-%d"], required=False)
    phone = serializers.CharField(max_length=32, required=False)
    email = serializers.EmailField(required=False)
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
    hold_id = serializers.IntegerField(min_value=1)
    patient = BookingPatientSerializer()
    reason = serializers.CharField(max_length=2000, allow_blank=True)
    call_id = serializers.CharField(max_length=100, required=False, allow_null=True)


class BookingAcceptedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()


class BookingSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["pending", "confirmed", "failed", "cancelled"])
    start = AwareDateTimeField()
    end = AwareDateTimeField()
    provider_id = serializers.IntegerField()
    appointment_type_id = serializers.IntegerField()
    ehr_appointment_id = serializers.IntegerField(allow_null=True)
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
