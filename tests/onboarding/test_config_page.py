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
from scheduling.models import AppointmentType, CallerPhrase, ConfigImport
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


def preview(client, doc, name: str = "alpha.json", **extra):
    """Upload a file: its preview (or its errors); nothing is applied."""
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return client.post(
        f"{BASE}upload/",
        {"file": SimpleUploadedFile(name, body, content_type="application/json")},
        **extra,
    )


APPLY = re.compile(r'action="(/p/alpha/configuration/imports/\d+/apply/)"')


def upload(client, doc, name: str = "alpha.json", **extra):
    """Upload a file and confirm its preview, as a manager does: the apply's answer (or the
    upload's, when it was refused)."""
    response = preview(client, doc, name, **extra)
    found = APPLY.search(response.content.decode())
    if response.status_code != 200 or found is None:
        return response
    return client.post(found.group(1), **extra)


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


# --- the preview -----------------------------------------------------------------------------


def test_the_preview_lists_changes_by_key_and_applies_only_on_confirmation(
    manager_client, practice
):
    removed = {"key": "polish", "name": "Polish", "minutes": 20}
    old = happy_smiles()
    old["appointment_types"].append(removed)
    import_config(old)
    before = types_of(practice)
    doc = happy_smiles()
    first, second = doc["appointment_types"][0], doc["appointment_types"][1]
    first["minutes"] = 55
    doc["appointment_types"].append({"key": "whitening", "name": "Whitening", "minutes": 45})
    doc["working_hours"][0]["end"] = "16:30"

    shown = preview(manager_client, doc)
    html = shown.content.decode()
    assert shown.status_code == 200 and 'id="import-preview"' in html
    assert "Nothing has been changed yet." in html
    assert types_of(practice) == before  # nothing applied
    items = html.split('id="preview-items-appointment_types"')[1].split("</details>")[0]
    assert "<strong>Added</strong> <code>whitening</code>" in items
    assert f"<strong>Changed</strong> <code>{first['key']}</code> <small>(minutes)</small>" in items
    assert f"<strong>Removed</strong> <code>{removed['key']}</code>" in items
    assert f"<code>{second['key']}</code>" not in items  # untouched: not listed
    assert "[0]" not in html and "[2]" not in html  # by key, never by position
    hours = html.split('id="preview-items-working_hours"')[1].split("</details>")[0]
    wh = doc["working_hours"][0]
    assert f"{wh['provider']} in {wh['operatory']}" in hours and "(end)" in hours
    with tenant_context(practice):
        assert not AccessEvent.objects.filter(action="config.import").exists()
        [job] = ConfigImport.objects.all()
        assert job.status == "preview" and job.document is not None

    counts = re.search(r'id="preview-appointment_types"><td>[^<]+</td>((?:<td>\d+</td>){3})', html)
    assert counts and re.findall(r"\d+", counts.group(1)) == ["1", "1", "1"]
    applied = manager_client.post(f"{BASE}imports/{job.pk}/apply/").content.decode()
    assert re.search(r"Imported: \d+ changes", applied)
    after = types_of(practice)
    assert after[first["key"]] == 55 and "whitening" in after and removed["key"] not in after
    with tenant_context(practice):
        job.refresh_from_db()
        assert job.status == "succeeded" and job.document is None
    # Confirmed twice (a double click): applied once; the second lands on the import's page.
    again = manager_client.post(f"{BASE}imports/{job.pk}/apply/")
    assert again.status_code == 302 and again["Location"] == f"{BASE}imports/{job.pk}/"
    with tenant_context(practice):
        assert AccessEvent.objects.filter(action="config.import").count() == 1


def test_a_discarded_preview_changes_nothing_and_forgets_the_file(manager_client, practice):
    doc = happy_smiles()
    html = preview(manager_client, doc).content.decode()
    assert re.search(r"Preview of alpha.json: \d+ changes", html)
    with tenant_context(practice):
        job = ConfigImport.objects.get()
    done = manager_client.post(f"{BASE}imports/{job.pk}/discard/", follow=True)
    assert "Discarded: nothing was changed." in done.content.decode()
    with tenant_context(practice):
        job.refresh_from_db()
        assert job.status == "discarded" and job.document is None
    assert types_of(practice) == {}
    assert manager_client.post(f"{BASE}imports/{job.pk}/apply/").status_code == 302
    assert types_of(practice) == {}


def test_another_practices_preview_cannot_be_applied(manager_client, practice, other_practice):
    stranger = UserFactory(totp=True)
    MembershipFactory(user=stranger, practice=other_practice, role=Role.PRACTICE_MANAGER)
    theirs = type(manager_client)()
    verify_second_factor(theirs, stranger)
    doc = happy_smiles("beta")
    theirs.post(
        "/p/beta/configuration/upload/",
        {"file": SimpleUploadedFile("b.json", json.dumps(doc).encode())},
    )
    with cross_tenant("test: their preview"):
        job = ConfigImport.objects.get(practice=other_practice)
    assert manager_client.post(f"{BASE}imports/{job.pk}/apply/").status_code == 404
    assert manager_client.post(f"{BASE}imports/{job.pk}/discard/").status_code == 404
    assert types_of(other_practice) == {}


def test_the_summary_counts_what_the_ehr_sync_brought_back_in_words(practice):
    """The sandbox EHR: blocks go to the EHR and the sync mirrors them back; they are counted
    with the upload, and the EHR's part is said in words, not printed as a dict."""
    from types import SimpleNamespace

    from onboarding import services
    from onboarding.importer import ImportResult

    result = ImportResult(practice_slug="alpha", practice_id=practice.pk)
    result.sections["providers"].created = 1
    report = SimpleNamespace(
        sync_counts={"blocks": [1, 0, 0], "providers": [0, 1, 0]},
        written=lambda: "blocks 1 created, providers 1 created",
    )
    services._count_ehr_sync(result, report)
    assert result.sections["blocks"].created == 1 and result.changes == 2
    assert result.notes == [
        "EHR: blocks 1 created, providers 1 created in the EHR.",
        "EHR: 1 row(s) here linked to their EHR records by the sync.",
    ]
    assert not any("{" in n for n in result.notes)
