"""Mounted under /p/<practice_slug>/calls/ (tenant pages)."""

from django.urls import path

from calls import views

urlpatterns = [
    path("", views.call_list, name="calls_list"),
    path("retention/", views.retention, name="calls_retention"),
    path("<int:pk>/", views.call_detail, name="calls_detail"),
    path("<int:pk>/reveal/", views.call_reveal, name="calls_reveal"),
    path("<int:pk>/note/retry/", views.note_retry, name="calls_note_retry"),
]
