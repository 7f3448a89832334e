"""Vendor support pages, under /support/."""

from django.urls import path

from compliance import support_views

urlpatterns = [
    path("", support_views.directory, name="support_directory"),
    path("impersonate/", support_views.start, name="support_impersonation_start"),
    path("impersonate/end/", support_views.end, name="support_impersonation_end"),
    path(
        "impersonate/<int:pk>/end/",
        support_views.end_session,
        name="support_impersonation_end_session",
    ),
]
