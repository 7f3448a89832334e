"""Configuration download and upload in the portal (the file of docs/practice-config.md)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import Role
from compliance.gate import phi_allowed
from compliance.models import AccessEvent
from core.tenancy import cross_tenant, tenant_context
from onboarding.services import import_config
from scheduling.models import AppointmentType, CallerPhrase
from tests.conftest import verify_second_factor
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

BASE = "/p/alpha/configuration/"


def happy_smiles(slug: str = "alpha") -> dict:
    """The demo practice's file, for this practice, without an EHR and without a BAA."""
    doc = json.loads((Path(settings.BASE_DIR) / "demo" / "happy-smiles.json").read_text())
    doc["practice"]["slug"] = slug
    doc["practice"]["name"] = "Alpha Dental"
    doc["ehr"]["kind"] = "none"
    doc.pop("baa", None)
    return doc


def upload(client, doc, name: str = "alpha.json", **extra):
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return client.post(
        f"{BASE}upload/",
        {"file": SimpleUploadedFile(name, body, content_type="application/json")},
        **extra,
    )


def types_of(practice) -> dict[str, int]:
    with tenant_context(practice):
        return dict(AppointmentType.objects.values_list("key", "minutes"))


def test_download_is_the_export_and_is_audited(manager_client, practice):
    import_config(happy_smiles())
    page = manager_client.get(BASE).content.decode()
    assert "Download configuration" in page and 'enctype="multipart/form-data"' in page
    response = manager_client.get(f"{BASE}download/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert re.match(
        r'attachment; filename="alpha-\d{8}-\d{4}\.json"', response["Content-Disposition"]
    )
    doc = json.loads(response.content)
    assert doc["practice"]["slug"] == "alpha"
    assert {t["key"] for t in doc["appointment_types"]} == set(types_of(practice))
    with tenant_context(practice):
        assert AccessEvent.objects.filter(action="config.export").count() == 1


def test_uploading_the_downloaded_file_changes_nothing(manager_client, practice):
    import_config(happy_smiles())
    downloaded = manager_client.get(f"{BASE}download/").content
    response = upload(manager_client, downloaded)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Imported: nothing changed" in html
    with tenant_context(practice):
        event = AccessEvent.objects.get(action="config.import")
    assert event.details["changes"] == 0


def test_an_upload_imports_and_summarises_what_changed(manager_client, practice):
    doc = happy_smiles()
    response = upload(manager_client, doc)
    assert response.status_code == 200
    html = response.content.decode()
    assert re.search(r"Imported: \d+ changes", html)
    assert 'id="section-appointment_types"' in html
    assert types_of(practice)
    doc["appointment_types"][0]["minutes"] = 55
    doc["appointment_types"][0]["phrases"].append("sparkly teeth")
    html = upload(manager_client, doc).content.decode()
    assert "Imported: 2 changes" in html
    row = re.search(
        r'id="section-appointment_types"><td>[^<]+</td><td>(\d+)</td><td>(\d+)</td>', html
    )
    assert row and row.groups() == ("0", "1")
    assert types_of(practice)[doc["appointment_types"][0]["key"]] == 55
    with tenant_context(practice):
        assert CallerPhrase.objects.filter(text="sparkly teeth").exists()


def test_an_invalid_file_changes_nothing_and_shows_each_error_by_path(manager_client, practice):
    import_config(happy_smiles())
    before = types_of(practice)
    doc = happy_smiles()
    doc["appointment_types"][1]["minutes"] = -5
    doc["providers"][0]["accepts_new_patients"] = "maybe"
    response = upload(manager_client, doc)
    assert response.status_code == 400
    html = response.content.decode()
    assert "The file was not imported: 2 problems." in html
    assert "<code>appointment_types[1].minutes</code>:" in html
    assert "<code>providers[0].accepts_new_patients</code>:" in html
    assert types_of(practice) == before

    response = upload(manager_client, b"{not json", name="broken.json")
    assert response.status_code == 400
    assert "not valid JSON" in response.content.decode()
    response = upload(manager_client, b"{}", name="notes.txt")
    assert "unknown file type" in response.content.decode()


def test_a_file_for_another_practice_is_refused(manager_client, practice, other_practice):
    response = upload(manager_client, happy_smiles(slug="beta"))
    assert response.status_code == 400
    html = response.content.decode()
    assert "<code>practice.slug</code>: this file is for &quot;beta&quot;" in html
    assert types_of(other_practice) == {} and types_of(practice) == {}


def test_only_a_compliance_officer_may_import_a_baa(client, manager_client, practice):
    doc = happy_smiles()
    doc["baa"] = {
        "status": "executed",
        "signed_by": "Dana Reyes, Practice Owner",
        "executed_on": "2026-01-05",
        "effective_on": "2026-01-05",
        "expires_on": None,
    }
    response = upload(manager_client, doc)
    assert response.status_code == 400
    assert "<code>baa</code>: only a compliance officer" in response.content.decode()
    assert not phi_allowed(practice) and types_of(practice) == {}

    both = UserFactory(totp=True)
    MembershipFactory(user=both, practice=practice, role=Role.PRACTICE_MANAGER)
    MembershipFactory(user=both, practice=practice, role=Role.COMPLIANCE_OFFICER)
    other = type(client)()
    verify_second_factor(other, both)
    response = upload(other, doc)
    assert response.status_code == 200, response.content.decode()[-2000:]
    assert "baa: version 1, executed" in response.content.decode()
    assert phi_allowed(practice)


def test_when_the_ehr_cannot_be_set_up_the_import_still_reports_its_changes(
    manager_client, practice, settings
):
    """Fault injected by configuration: the EHR sandbox address answers nothing."""
    settings.EHR_SANDBOX_URL = "http://127.0.0.1:9"
    from tests.factories import sign_baa

    sign_baa(practice)
    doc = happy_smiles()
    doc["ehr"]["kind"] = "sandbox"
    response = upload(manager_client, doc)
    assert response.status_code == 200
    html = response.content.decode()
    assert re.search(r"Imported: \d+ changes", html)
    assert "setting up the EHR failed" in html and "Uploading the same file again" in html
    assert types_of(practice)


def test_htmx_uploads_get_a_swappable_answer(manager_client, practice):
    doc = happy_smiles()
    doc["appointment_types"][0]["minutes"] = 0
    response = upload(manager_client, doc, HTTP_HX_REQUEST="true")
    assert response.status_code == 200  # htmx swaps only 2xx answers
    assert "The file was not imported" in response.content.decode()


def test_only_managers_use_the_configuration_pages(client, practice):
    user = UserFactory(totp=True)
    MembershipFactory(user=user, practice=practice, role=Role.FRONT_DESK)
    verify_second_factor(client, user)
    assert client.get(BASE).status_code == 403
    assert client.get(f"{BASE}download/").status_code == 403
    assert upload(client, happy_smiles()).status_code == 403
    with cross_tenant("test: nothing was written"):
        assert not AppointmentType.objects.exists()


def test_an_ehr_without_a_baa_is_refused_by_path_and_nothing_changes(manager_client, practice):
    doc = happy_smiles()
    doc["ehr"]["kind"] = "sandbox"
    response = upload(manager_client, doc)
    assert response.status_code == 400
    html = response.content.decode()
    assert "<code>ehr</code>: connecting an EHR needs an executed BAA" in html
    assert "Nothing was changed" in html
    assert types_of(practice) == {}


def test_a_section_over_its_cap_is_refused_by_path_on_the_upload_page(manager_client, practice):
    doc = happy_smiles()
    doc["appointment_types"][0]["phrases"] = [f"phrase {i}" for i in range(51)]
    response = upload(manager_client, doc)
    assert response.status_code == 400
    html = response.content.decode()
    assert "<code>appointment_types[0].phrases</code>: at most 50 entries" in html
    assert types_of(practice) == {}
