"""A booking's page and its cancellation, mounted under /p/<practice_slug>/bookings/ beside
the front desk's lists (booking.frontdesk.urls)."""

from django.urls import path

from calls import booking_views

urlpatterns = [
    path("<int:pk>/", booking_views.booking_detail, name="frontdesk_booking_detail"),
    path("<int:pk>/cancel/", booking_views.booking_cancel, name="frontdesk_booking_cancel"),
    path("<int:pk>/move/", booking_views.booking_reschedule, name="frontdesk_booking_move"),
]
