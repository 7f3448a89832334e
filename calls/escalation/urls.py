"""Tenant pages under /p/<practice_slug>/ (included from portal.urls.tenant_patterns)."""

from django.urls import path

from calls.escalation import views

urlpatterns = [
    path("protocols/", views.protocol_list, name="escalation_protocols"),
    path("protocols/new/", views.protocol_new, name="escalation_protocol_new"),
    path("protocols/console/", views.protocol_console, name="escalation_console"),
    path(
        "protocols/approval-policy/",
        views.approval_policy,
        name="escalation_approval_policy",
    ),
    path("protocols/<int:pk>/", views.protocol_detail, name="escalation_protocol"),
    path("protocols/<int:pk>/edit/", views.protocol_edit, name="escalation_protocol_edit"),
    path(
        "protocols/<int:pk>/versions/<int:version_pk>/approve/",
        views.protocol_approve,
        name="escalation_protocol_approve",
    ),
    path(
        "protocols/<int:pk>/withdraw/", views.protocol_withdraw, name="escalation_protocol_withdraw"
    ),
    path("on-call/", views.oncall, name="oncall_rota"),
    path("on-call/<int:pk>/delete/", views.oncall_delete, name="oncall_delete"),
]
