"""Receptionist API v1, mounted at /api/v1/ (paths as RECEPTIONIST_API.md fixes them)."""

from django.urls import path

from calls import api as calls_api
from calls.escalation import api as escalation_api
from scheduling.api import views

urlpatterns = [
    path("oauth/token", views.TokenView.as_view(), name="api-token"),
    path("appointment-types", views.AppointmentTypesView.as_view(), name="api-appointment-types"),
    path("intents/resolve", views.IntentResolveView.as_view(), name="api-intents-resolve"),
    path("availability", views.AvailabilityView.as_view(), name="api-availability"),
    path("holds", views.HoldsView.as_view(), name="api-holds"),
    path("holds/<int:hold_id>", views.HoldDetailView.as_view(), name="api-hold"),
    path("bookings", views.BookingsView.as_view(), name="api-bookings"),
    path("bookings/<int:booking_id>", views.BookingDetailView.as_view(), name="api-booking"),
    path(
        "bookings/<int:booking_id>/cancel",
        views.BookingCancelView.as_view(),
        name="api-booking-cancel",
    ),
    path("calls", calls_api.CallsView.as_view(), name="api-calls"),
    path(
        "calls/<int:call_id>/transcript",
        calls_api.CallTranscriptView.as_view(),
        name="api-call-transcript",
    ),
    path(
        "calls/<int:call_id>/screen",
        escalation_api.CallScreenView.as_view(),
        name="api-call-screen",
    ),
    path(
        "schema/",
        views.SchemaView.as_view(),
        name="api-schema",
    ),
]
