"""Mounted at /integrations/ (public prefix /integrations/webhooks/: the EHR signs its calls)."""

from django.urls import path

from ehr.nexhealth.webhooks import nexhealth_webhook

urlpatterns = [
    path(
        "webhooks/nexhealth/<int:connection_id>",
        nexhealth_webhook,
        name="integrations-nexhealth-webhook",
    ),
]
