"""/p/<practice>/scheduling/...: the practice manager's scheduling set-up."""

from django.urls import path

from scheduling.web import views

urlpatterns = [
    path("types/", views.type_list, name="scheduling_types"),
    path("types/new/", views.type_new, name="scheduling_type_new"),
    path("types/<int:pk>/", views.type_detail, name="scheduling_type"),
    path("types/<int:pk>/phrases/", views.phrase_add, name="scheduling_phrase_add"),
    path(
        "types/<int:pk>/phrases/<int:phrase_pk>/delete/",
        views.phrase_delete,
        name="scheduling_phrase_delete",
    ),
    path("console/", views.console, name="scheduling_console"),
    path("providers/", views.provider_list, name="scheduling_providers"),
    path("providers/new/", views.provider_new, name="scheduling_provider_new"),
    path("providers/<int:pk>/", views.provider_detail, name="scheduling_provider"),
    path("providers/<int:pk>/rules/new/", views.rule_edit, name="scheduling_rule_new"),
    path("providers/<int:pk>/rules/<int:rule_pk>/", views.rule_edit, name="scheduling_rule"),
    path(
        "providers/<int:pk>/rules/<int:rule_pk>/delete/",
        views.rule_delete,
        name="scheduling_rule_delete",
    ),
    path("rooms/", views.room_list, name="scheduling_rooms"),
    path("rooms/new/", views.room_new, name="scheduling_room_new"),
    path("rooms/<int:pk>/", views.room_detail, name="scheduling_room"),
    path("schedule/", views.schedule, name="scheduling_schedule"),
    path("schedule/hours/new/", views.hour_edit, name="scheduling_hour_new"),
    path("schedule/hours/<int:pk>/", views.hour_edit, name="scheduling_hour"),
    path("schedule/hours/<int:pk>/delete/", views.hour_delete, name="scheduling_hour_delete"),
    path("schedule/blocks/new/", views.block_edit, name="scheduling_block_new"),
    path("schedule/blocks/<int:pk>/", views.block_edit, name="scheduling_block"),
    path("schedule/blocks/<int:pk>/delete/", views.block_delete, name="scheduling_block_delete"),
]
