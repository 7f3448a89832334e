"""Front desk pages, under /p/<practice_slug>/bookings/."""

from django.urls import path

from booking.frontdesk import views

urlpatterns = [
    path("", views.booking_list, name="frontdesk_bookings"),
    path("attention/", views.needs_attention, name="frontdesk_needs_attention"),
    path("requests/", views.booking_requests, name="frontdesk_requests"),
    path("<int:pk>/approve/", views.approve, name="frontdesk_booking_approve"),
    path("<int:pk>/decline/", views.decline, name="frontdesk_booking_decline"),
    path("<int:pk>/status/", views.booking_status, name="frontdesk_booking_status"),
    path("<int:pk>/retry/", views.retry, name="frontdesk_booking_retry"),
    path("<int:pk>/resolve/", views.resolve, name="frontdesk_booking_resolve"),
    path("<int:pk>/patient/", views.reveal_patient, name="frontdesk_booking_patient"),
]
