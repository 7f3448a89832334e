"""Mounted under /p/<practice_slug>/ehr/ (tenant pages)."""

from django.urls import path

from ehr import views

urlpatterns = [
    path("", views.connection_list, name="ehr_connections"),
    path("<int:pk>/test/", views.test_connection, name="ehr_test_connection"),
    path("<int:pk>/sync/", views.sync_now, name="ehr_sync_now"),
    path(
        "locations/<int:location_pk>/nextech/",
        views.nextech_connect,
        name="ehr_nextech_connect",
    ),
]
