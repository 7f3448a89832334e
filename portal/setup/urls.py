"""Set-up pages, mounted under /p/<practice_slug>/ (tenant pages)."""

from django.urls import path

from portal.setup import views

urlpatterns = [
    path("go-live/", views.golive_page, name="golive"),
    path("go-live/scenarios/", views.scenario_add, name="golive_scenario_add"),
    path("go-live/scenarios/run/", views.scenarios_run, name="golive_scenarios_run"),
    path("go-live/scenarios/paste/", views.scenarios_paste, name="golive_scenarios_paste"),
    path("go-live/suggestions/", views.suggestion_add, name="golive_suggestion_add"),
    path("go-live/caller-words/", views.lay_terms_save, name="golive_lay_terms"),
    path("go-live/scenarios/<int:pk>/", views.scenario_edit, name="golive_scenario_edit"),
    path(
        "go-live/scenarios/<int:pk>/delete/", views.scenario_delete, name="golive_scenario_delete"
    ),
    path("api-clients/", views.api_clients, name="setup_api_clients"),
    path("api-clients/new/", views.api_client_create, name="setup_api_client_create"),
    path("api-clients/<int:pk>/rotate/", views.api_client_rotate, name="setup_api_client_rotate"),
    path("api-clients/<int:pk>/revoke/", views.api_client_revoke, name="setup_api_client_revoke"),
    path("configuration/", views.config_page, name="setup_config"),
    path("configuration/download/", views.config_download, name="setup_config_download"),
    path("configuration/upload/", views.config_upload, name="setup_config_upload"),
    path("configuration/imports/<int:pk>/", views.config_import, name="setup_config_import"),
]
