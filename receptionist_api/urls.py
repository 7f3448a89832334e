"""Receptionist API v1, mounted at /api/v1/: every route of the voice agent's API is declared
here (docs/receptionist-api.md). The views are thin: `views` (tokens, catalogue, intents,
availability, holds, bookings), `calls` (calls and transcripts), `screening` (escalation)."""

from django.urls import path, register_converter

from receptionist_api import calls, screening, views
from receptionist_api.fields import BIGINT_MAX
from receptionist_api.voice.views import ToolsView


class IdConverter:
    """A path id within bigint (Django's `int` takes any digits): anything else is a 404."""

    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if not 1 <= number <= BIGINT_MAX:
            raise ValueError(value)  # the resolver takes it as no match
        return number

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(IdConverter, "api_id")

urlpatterns = [
    path("oauth/token", views.TokenView.as_view(), name="api-token"),
    path("appointment-types", views.AppointmentTypesView.as_view(), name="api-appointment-types"),
    path("intents/resolve", views.IntentResolveView.as_view(), name="api-intents-resolve"),
    path("availability", views.AvailabilityView.as_view(), name="api-availability"),
    path("holds", views.HoldsView.as_view(), name="api-holds"),
    path("holds/<api_id:hold_id>", views.HoldDetailView.as_view(), name="api-hold"),
    path("bookings", views.BookingsView.as_view(), name="api-bookings"),
    path("bookings/<api_id:booking_id>", views.BookingDetailView.as_view(), name="api-booking"),
    path(
        "bookings/<api_id:booking_id>/cancel",
        views.BookingCancelView.as_view(),
        name="api-booking-cancel",
    ),
    path("calls", calls.CallsView.as_view(), name="api-calls"),
    path(
        "calls/<api_id:call_id>/transcript",
        calls.CallTranscriptView.as_view(),
        name="api-call-transcript",
    ),
    path(
        "calls/<api_id:call_id>/screen",
        screening.CallScreenView.as_view(),
        name="api-call-screen",
    ),
    path("tools.json", ToolsView.as_view(), name="api-tools"),
    path(
        "schema/",
        views.SchemaView.as_view(),
        name="api-schema",
    ),
]
