"""The compliance officer's pages read as they mean: audit actions by their labels (the filter's),
date filters as date pickers, times in the practice's zone with the zone named, and a
terminated agreement that no longer says it is in force."""

from __future__ import annotations

import pytest

from accounts.models import Role
from compliance import audit
from compliance import services as baa_services
from compliance.models import AuditAction, BusinessAssociateAgreement
from core.tenancy import tenant_context
from tests.conftest import verify_second_factor
from tests.factories import LocationFactory, sign_baa, staff_member

pytestmark = pytest.mark.django_db


@pytest.fixture
def officer(client, practice):
    practice.timezone = "America/Chicago"
    practice.save()
    user = staff_member(practice, Role.COMPLIANCE_OFFICER, username="officer@alpha.test")
    verify_second_factor(client, user)
    return client


def test_audit_actions_show_as_labels_and_the_filters_are_date_pickers(officer, practice):
    audit.record(
        AuditAction.PROTOCOL_APPROVED, practice=practice, reason="second clinician reviewed"
    )
    with tenant_context(practice):
        LocationFactory(practice=practice, name="Uptown")  # a change entry (created)
    page = officer.get("/p/alpha/compliance/audit/").content.decode()
    assert 'data-action="escalation.protocol_approved">Escalation protocol approved</td>' in page
    assert 'data-action="change.create">Created</td>' in page
    assert 'type="date" name="since"' in page and 'type="date" name="until"' in page
    assert "When (America/Chicago)" in page
    assert " CST</td>" in page  # each time says its zone
    assert "second clinician reviewed" in page
    filtered = officer.get("/p/alpha/compliance/audit/?since=2020-01-01&until=2100-12-31")
    assert "Escalation protocol approved" in filtered.content.decode()


def test_a_terminated_agreement_no_longer_says_it_is_in_force(officer, practice):
    sign_baa(practice)
    with tenant_context(practice):
        agreement = BusinessAssociateAgreement.objects.get(version=1)
    live = officer.get(f"/p/alpha/compliance/baa/{agreement.pk}/").content.decode()
    assert "<dt>In force</dt>" in live and "stays in force until the amendment" in live

    with tenant_context(practice):
        baa_services.terminate(agreement, reason="practice sold")
    detail = officer.get(f"/p/alpha/compliance/baa/{agreement.pk}/").content.decode()
    assert "<dt>In force</dt>" not in detail and "stays in force" not in detail
    assert "in force now" not in detail
    assert "<dt>Was in force</dt>" in detail and "until it was terminated" in detail
    assert 'id="baa-ended"' in detail and "no longer in force" in detail
    listing = officer.get("/p/alpha/compliance/baa/").content.decode()
    assert "(in force)" not in listing and "No executed agreement is in force" in listing
    assert "\N{EN DASH} terminated" in listing
