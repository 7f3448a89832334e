"""BAA pages, under /p/<practice_slug>/compliance/baa/."""

from django.urls import path

from compliance import baa_views

urlpatterns = [
    path("", baa_views.baa_list, name="compliance_baa_list"),
    path("new/", baa_views.baa_new, name="compliance_baa_new"),
    path("<int:pk>/", baa_views.baa_detail, name="compliance_baa_detail"),
    path("<int:pk>/pdf/", baa_views.baa_pdf, name="compliance_baa_pdf"),
    path("<int:pk>/upload/", baa_views.baa_upload, name="compliance_baa_upload"),
    path("<int:pk>/send/", baa_views.baa_send, name="compliance_baa_send"),
    path("<int:pk>/execute/", baa_views.baa_execute, name="compliance_baa_execute"),
    path("<int:pk>/terminate/", baa_views.baa_terminate, name="compliance_baa_terminate"),
    path("<int:pk>/amend/", baa_views.baa_amend, name="compliance_baa_amend"),
]
