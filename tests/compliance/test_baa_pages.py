"""The compliance officer's BAA pages: draft, signed PDF with its SHA-256 (PDF only, size
limit), sending, execution with consistent dates, immutability, amendment, termination, roles."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import Role
from compliance import baa_forms
from compliance.gate import phi_allowed
from compliance.models import BAAStatus, BusinessAssociateAgreement, ChangeEntry
from core.tenancy import cross_tenant, tenant_context
from tests.conftest import verify_second_factor
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n% countersigned\n%%EOF\n"
BASE = "/p/alpha/compliance/baa/"


def pdf(content: bytes = PDF, name: str = "baa-signed.pdf") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="application/pdf")


def signed_client(client, practice, role=Role.COMPLIANCE_OFFICER):
    user = UserFactory(totp=True)
    MembershipFactory(user=user, practice=practice, role=role)
    verify_second_factor(client, user)
    return client


@pytest.fixture
def officer(client, practice):
    return signed_client(client, practice)


def rows(practice) -> list[BusinessAssociateAgreement]:
    with tenant_context(practice):
        return list(BusinessAssociateAgreement.objects.order_by("version"))


def execute_data(**overrides) -> dict:
    data = {
        "practice_signer_name": "Dana Reyes",
        "practice_signer_title": "Owner",
        "hello_signer_name": "Sam Hello",
        "executed_on": "2026-01-05",
        "effective_on": "2026-01-05",
        "expires_on": "",
    }
    data.update(overrides)
    return data


def draft(officer, practice) -> BusinessAssociateAgreement:
    response = officer.post(f"{BASE}new/", {"practice_signer_name": "Dana Reyes"})
    assert response.status_code == 302
    return rows(practice)[-1]


def test_create_upload_send_execute(officer, practice):
    empty = officer.get(BASE).content.decode()
    assert "No agreement yet" in empty and "No executed agreement is in force" in empty
    agreement = draft(officer, practice)
    assert agreement.version == 1 and agreement.status == BAAStatus.DRAFT

    uploaded = officer.post(f"{BASE}{agreement.pk}/upload/", {"signed_pdf": pdf()})
    assert uploaded.status_code == 302
    [stored] = rows(practice)
    assert bytes(stored.signed_pdf) == PDF
    assert stored.signed_pdf_sha256 == hashlib.sha256(PDF).hexdigest()
    detail = officer.get(f"{BASE}{agreement.pk}/").content.decode()
    assert hashlib.sha256(PDF).hexdigest() in detail
    download = officer.get(f"{BASE}{agreement.pk}/pdf/")
    assert download.content == PDF and download["Content-Type"] == "application/pdf"

    assert officer.post(f"{BASE}{agreement.pk}/send/").status_code == 302
    assert rows(practice)[0].status == BAAStatus.SENT
    assert not phi_allowed(practice)

    executed = officer.post(f"{BASE}{agreement.pk}/execute/", execute_data())
    assert executed.status_code == 302, executed.content.decode()[-2000:]
    [done] = rows(practice)
    assert done.status == BAAStatus.EXECUTED and done.hello_signer_name == "Sam Hello"
    assert done.executed_on == date(2026, 1, 5) and bytes(done.signed_pdf) == PDF
    assert phi_allowed(practice)
    page = officer.get(BASE).content.decode()
    assert "In force: version 1" in page and "(in force)" in page
    history = officer.get(f"{BASE}{agreement.pk}/").content.decode()
    assert 'id="baa-history"' in history and "executed" in history


def test_execute_with_the_pdf_in_the_same_form(officer, practice):
    agreement = draft(officer, practice)
    response = officer.post(
        f"{BASE}{agreement.pk}/execute/", {**execute_data(), "signed_pdf": pdf()}
    )
    assert response.status_code == 302
    assert rows(practice)[0].signed_pdf_sha256 == hashlib.sha256(PDF).hexdigest()


def test_not_a_pdf_too_big_or_no_pdf_is_refused_next_to_the_field(officer, practice, settings):
    agreement = draft(officer, practice)
    fake = officer.post(
        f"{BASE}{agreement.pk}/upload/",
        {"signed_pdf": pdf(b"PK\x03\x04 a zip named .pdf", name="agreement.pdf")},
    )
    assert fake.status_code == 400
    assert "This is not a PDF" in fake.content.decode()
    big = PDF + b"0" * baa_forms.MAX_PDF_BYTES
    too_big = officer.post(f"{BASE}{agreement.pk}/upload/", {"signed_pdf": pdf(big)})
    assert too_big.status_code == 400 and "the limit is 10 MB" in too_big.content.decode()
    missing = officer.post(f"{BASE}{agreement.pk}/execute/", execute_data())
    assert missing.status_code == 400 and "Choose the signed agreement" in missing.content.decode()
    assert rows(practice)[0].signed_pdf is None and rows(practice)[0].status == BAAStatus.DRAFT


def test_dates_must_be_consistent(officer, practice):
    agreement = draft(officer, practice)
    officer.post(f"{BASE}{agreement.pk}/upload/", {"signed_pdf": pdf()})
    backwards = officer.post(
        f"{BASE}{agreement.pk}/execute/",
        execute_data(effective_on="2026-03-01", expires_on="2026-02-01"),
    )
    assert backwards.status_code == 400
    assert "The last day in force is before the first." in backwards.content.decode()
    future = (date.today() + timedelta(days=30)).isoformat()
    ahead = officer.post(f"{BASE}{agreement.pk}/execute/", execute_data(executed_on=future))
    assert "cannot be in the future" in ahead.content.decode()
    nobody = officer.post(f"{BASE}{agreement.pk}/execute/", execute_data(hello_signer_name=""))
    assert nobody.status_code == 400 and "This field is required." in nobody.content.decode()
    assert rows(practice)[0].status == BAAStatus.DRAFT


def test_executed_is_immutable_and_amend_makes_a_new_version(officer, practice):
    agreement = draft(officer, practice)
    officer.post(f"{BASE}{agreement.pk}/execute/", {**execute_data(), "signed_pdf": pdf()})
    digest = rows(practice)[0].signed_pdf_sha256

    other = PDF.replace(b"countersigned", b"forged")
    replaced = officer.post(f"{BASE}{agreement.pk}/upload/", {"signed_pdf": pdf(other)})
    assert replaced.status_code == 400 and "cannot change" in replaced.content.decode()
    again = officer.post(
        f"{BASE}{agreement.pk}/execute/", execute_data(practice_signer_name="Someone Else")
    )
    assert again.status_code == 302
    [kept] = rows(practice)
    assert kept.signed_pdf_sha256 == digest and kept.practice_signer_name == "Dana Reyes"
    detail = officer.get(f"{BASE}{agreement.pk}/").content.decode()
    assert "Amend (new draft version)" in detail and "Upload signed PDF" not in detail

    amended = officer.post(f"{BASE}{agreement.pk}/amend/")
    first, second = rows(practice)
    assert amended["Location"] == f"{BASE}{second.pk}/"
    assert (first.status, second.status) == (BAAStatus.EXECUTED, BAAStatus.DRAFT)
    assert second.version == 2 and second.practice_signer_name == "Dana Reyes"
    assert first.signed_pdf_sha256 == digest and phi_allowed(practice)  # still in force
    listing = officer.get(BASE).content.decode()
    assert "Version 1" in listing and "Version 2" in listing


def test_terminate_needs_a_reason_and_a_confirmation(officer, practice):
    agreement = draft(officer, practice)
    officer.post(f"{BASE}{agreement.pk}/execute/", {**execute_data(), "signed_pdf": pdf()})
    refused = officer.post(f"{BASE}{agreement.pk}/terminate/", {"reason": "ended"})
    assert refused.status_code == 400 and "Tick the box to confirm." in refused.content.decode()
    assert phi_allowed(practice)
    done = officer.post(
        f"{BASE}{agreement.pk}/terminate/", {"reason": "practice closed", "confirm": "on"}
    )
    assert done.status_code == 302
    [ended] = rows(practice)
    assert ended.status == BAAStatus.TERMINATED and ended.termination_reason == "practice closed"
    assert not phi_allowed(practice)
    with cross_tenant("test: the change is in the audit trail"):
        assert ChangeEntry.objects.filter(object_pk=str(ended.pk)).count() >= 3


@pytest.mark.parametrize(
    "role,reads,writes",
    [
        (Role.COMPLIANCE_OFFICER, 200, 302),
        (Role.PRACTICE_MANAGER, 200, 403),
        (Role.FRONT_DESK, 403, 403),
        (Role.CLINICIAN, 403, 403),
    ],
)
def test_roles(client, practice, role, reads, writes):
    from compliance import services

    agreement = services.create_draft(practice)
    c = signed_client(client, practice, role)
    assert c.get(BASE).status_code == reads
    assert c.get(f"{BASE}{agreement.pk}/").status_code == reads
    assert c.post(f"{BASE}new/", {}).status_code == writes
    assert c.post(f"{BASE}{agreement.pk}/send/").status_code == writes


def test_another_practices_agreement_is_404(officer, other_practice):
    from compliance import services

    theirs = services.create_draft(other_practice)
    for suffix in ("", "pdf/", "execute/", "terminate/"):
        assert officer.get(f"{BASE}{theirs.pk}/{suffix}").status_code == 404
    for suffix in ("upload/", "send/", "amend/"):
        assert officer.post(f"{BASE}{theirs.pk}/{suffix}").status_code == 404
    assert officer.get("/p/beta/compliance/baa/").status_code == 404
