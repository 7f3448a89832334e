"""Which models are audited (change entries by django-auditlog), with which options.

Each app registers its own models in its AppConfig.ready() (accounts, below compliance, names
them on its AppConfig for compliance to register). The set is what it was when compliance
enumerated them itself: a model leaving it loses its change history silently, so this test
names every one.
"""

from __future__ import annotations

from typing import Any

from auditlog.registry import auditlog
from django.apps import apps

REDACT = "compliance.audit.redact"

EXPECTED: dict[str, dict[str, Any]] = {
    "calls.ApprovalPolicy": {},
    "calls.Call": {
        "exclude_fields": ["caller_phone_index"],
        "mask_fields": ["caller_phone", "transcript"],
        "mask_callable": REDACT,
    },
    "calls.CallRetention": {},
    "calls.EncounterNote": {"mask_fields": ["content"], "mask_callable": REDACT},
    "calls.EscalationProtocol": {},
    "calls.OnCallShift": {},
    "calls.ProtocolVersion": {"m2m_fields": {"appointment_types"}},
    "calls.Screening": {"mask_fields": ["text", "procedure_date"], "mask_callable": REDACT},
    "compliance.BusinessAssociateAgreement": {"exclude_fields": ["signed_pdf"]},
    "compliance.PracticeDataKey": {"exclude_fields": ["wrapped_key"]},
    "integrations.AppointmentTypeLink": {},
    "integrations.EHRConnection": {
        "exclude_fields": ["last_successful_sync_at", "status_detail", "updated_at"],
        "mask_fields": ["api_key", "webhook_secret"],
        "mask_callable": REDACT,
    },
    "portal.Location": {},
    "portal.Membership": {},
    "portal.Practice": {},
    "scheduling.ApiClient": {},
    "scheduling.Appointment": {},
    "scheduling.AppointmentDescriptor": {},
    "scheduling.AppointmentType": {},
    "scheduling.Block": {},
    "scheduling.Booking": {"mask_fields": ["reason", "demographics"], "mask_callable": REDACT},
    "scheduling.CallerPhrase": {},
    "scheduling.ConfigImport": {"mask_fields": ["document", "outcome"], "mask_callable": REDACT},
    "scheduling.Operatory": {},
    "scheduling.Patient": {
        "exclude_fields": ["last_name_index", "date_of_birth_index", "phone_index"],
        "mask_fields": ["first_name", "last_name", "date_of_birth", "phone", "email", "insurance"],
        "mask_callable": REDACT,
    },
    "scheduling.Provider": {},
    "scheduling.ProviderRule": {},
    "scheduling.TestScenario": {},
    "scheduling.WorkingHour": {},
}


def _registered() -> dict[str, dict[str, Any]]:
    installed = set(apps.get_models())  # not the models tests make and register for themselves
    return {
        model._meta.label: {k: v for k, v in options.items() if v}
        for model, options in auditlog._registry.items()
        if model in installed
    }


def test_the_audited_models_and_their_options_are_unchanged() -> None:
    assert _registered() == EXPECTED


def test_operational_rows_are_not_audited() -> None:
    """A hold is a few minutes' claim on a slot, an outbox row the relay's queue; webhook
    deliveries, EHR versions and health counters are bookkeeping (see each app's ready())."""
    registered = _registered()
    for label in (
        "scheduling.Hold",
        "scheduling.OutboxMessage",
        "scheduling.NativeSlot",
        "integrations.WebhookDelivery",
        "integrations.EHRVersion",
        "integrations.ConnectionHealth",
    ):
        assert label not in registered
