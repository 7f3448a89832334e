"""The EHR integration's configuration under audit: connections and type links are change
entries (credentials redacted), the high-volume bookkeeping is not."""

from __future__ import annotations

import json

import pytest
from django.utils import timezone

from compliance import audit
from compliance.context import audit_context
from compliance.models import ChangeEntry
from core.tenancy import cross_tenant, tenant_context
from ehr.models import (
    AppointmentTypeLink,
    ConnectionHealth,
    ConnectionKind,
    EHRConnection,
    EHRVersion,
    WebhookDelivery,
)
from tests.factories import LocationFactory, PracticeFactory, UserFactory
from tests.scheduling.factories import AppointmentTypeFactory

pytestmark = pytest.mark.django_db

OLD_KEY = "nh-live-key-0ld-5ecret-aaaa"
NEW_KEY = "nh-live-key-n3w-5ecret-bbbb"
SECRET = "whsec-9f8e7d6c5b4a"


def entries_for(obj) -> list[ChangeEntry]:
    with cross_tenant("test: read the audit trail"):
        return list(
            ChangeEntry.objects.filter(
                content_type__app_label=obj._meta.app_label,
                content_type__model=obj._meta.model_name,
                object_pk=str(obj.pk),
            ).order_by("id")
        )


def stored_text(entry: ChangeEntry) -> str:
    """Everything the entry holds that could carry a value."""
    return json.dumps(
        [entry.changes, entry.changes_text, entry.serialized_data, entry.object_repr],
        default=str,
    )


def test_changing_an_ehr_connection_is_a_change_entry_without_its_secrets():
    practice = PracticeFactory()
    location = LocationFactory(practice=practice)
    manager = UserFactory()
    with tenant_context(practice):
        conn = EHRConnection.objects.create(
            practice_id=practice.pk,
            location=location,
            kind=ConnectionKind.NEXHEALTH,
            base_url="https://nexhealth.info",
            subdomain="alpha",
            api_key=OLD_KEY,
        )
        with audit_context(request_id="req-ehr-settings", actor_user_id=manager.pk):
            conn.api_key = NEW_KEY
            conn.webhook_secret = SECRET
            conn.base_url = "https://eu.nexhealth.info"
            conn.rate_limit_per_minute = 100
            conn.save()

    created, changed = entries_for(conn)
    assert created.action == ChangeEntry.Action.CREATE
    assert changed.action == ChangeEntry.Action.UPDATE
    assert changed.practice_id == practice.pk and changed.actor_id == manager.pk
    assert changed.cid == "req-ehr-settings"
    assert changed.changes["base_url"] == ["https://nexhealth.info", "https://eu.nexhealth.info"]
    assert changed.changes["rate_limit_per_minute"] == ["None", "100"]
    assert changed.changes["api_key"] == ["[encrypted]", "[encrypted]"]
    assert changed.changes["webhook_secret"] == ["[encrypted]", "[encrypted]"]
    for entry in (created, changed):
        text = stored_text(entry)
        for secret in (OLD_KEY, NEW_KEY, SECRET):
            assert secret not in text
    audit.seal_now()
    with cross_tenant("test: verify"):
        assert audit.verify_chain(audit.chain_name(practice.pk)).ok


def test_sync_bookkeeping_writes_no_change_entries_but_type_mappings_do():
    practice = PracticeFactory()
    location = LocationFactory(practice=practice)
    with tenant_context(practice):
        conn = EHRConnection.objects.create(
            practice_id=practice.pk,
            location=location,
            kind=ConnectionKind.SANDBOX,
            base_url="http://127.0.0.1:1",
            subdomain="alpha",
            api_key=OLD_KEY,
        )
        before = len(entries_for(conn))
        conn.last_successful_sync_at = timezone.now()
        conn.status_detail = "synced 12 providers"
        conn.save()  # what every sync does: no entry
        assert len(entries_for(conn)) == before

        health = ConnectionHealth.objects.create(practice_id=practice.pk, connection=conn)
        version = EHRVersion.objects.create(practice_id=practice.pk, connection=conn, ehr_id=77)
        delivery = WebhookDelivery.objects.create(
            practice_id=practice.pk,
            connection=conn,
            delivery_id="d-1",
            event="appointment_created",
            payload={"patient": {"name": "Ana Lopez"}},
        )
        cleaning = AppointmentTypeFactory(practice=practice)
        link = AppointmentTypeLink.objects.create(
            practice_id=practice.pk, connection=conn, appointment_type=cleaning, ehr_id=9001
        )
    assert entries_for(health) == entries_for(version) == entries_for(delivery) == []
    (entry,) = entries_for(link)
    assert entry.action == ChangeEntry.Action.CREATE and entry.changes["ehr_id"] == ["None", "9001"]
