"""Tenant compliance pages, under /p/<practice_slug>/compliance/."""

from django.urls import include, path

from compliance import support_views, views

urlpatterns = [
    path("baa/", include("compliance.baa_urls")),
    path("audit/", views.audit_log, name="compliance_audit"),
    path("audit/verify/", views.audit_verify, name="compliance_audit_verify"),
    path("audit/export.<str:fmt>", views.audit_export, name="compliance_audit_export"),
    path("support-access/", support_views.support_access, name="compliance_support_access"),
]
