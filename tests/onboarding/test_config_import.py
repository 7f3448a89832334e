"""Large configuration uploads are imported by a worker, with a progress page that polls."""

from __future__ import annotations

import json
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from compliance.models import AccessEvent, AuditAction
from core.tenancy import cross_tenant, tenant_context
from onboarding import services
from scheduling.models import CallerPhrase, ConfigImport, ConfigImportStatus
from tests.conftest import verify_second_factor
from tests.factories import MembershipFactory, UserFactory
from tests.onboarding.test_config_page import APPLY, BASE, happy_smiles
from tests.workers import celery_worker

EXTRA_TYPES = 12
PHRASES_EACH = 50


def large_file() -> dict:
    """The demo practice plus 600 caller phrases: over the portal's background threshold."""
    doc = happy_smiles()
    for n in range(EXTRA_TYPES):
        doc["appointment_types"].append(
            {
                "key": f"extra-{n}",
                "name": f"Extra visit {n}",
                "minutes": 30,
                "phrases": [f"extra visit {n} phrase {i}" for i in range(PHRASES_EACH)],
            }
        )
    return doc


def post(client, doc, **extra):
    """Upload and confirm (a large file's preview says a worker imports it once confirmed)."""
    body = json.dumps(doc).encode()
    shown = client.post(
        f"{BASE}upload/",
        {"file": SimpleUploadedFile("alpha.json", body, content_type="application/json")},
        **extra,
    )
    found = APPLY.search(shown.content.decode())
    if shown.status_code != 200 or found is None:
        return shown
    assert "imported by a background worker once you confirm" in shown.content.decode()
    return client.post(found.group(1), **extra)


def wait_for(condition, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
    raise AssertionError("condition not met before the deadline")


def job_of(practice) -> ConfigImport:
    with tenant_context(practice):
        return ConfigImport.objects.get()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_large_upload_is_imported_by_the_worker_behind_a_progress_page(
    manager_client, manager, practice, other_practice, settings
):
    with celery_worker() as (_proc, queue):
        settings.CONFIG_IMPORT_QUEUE = queue
        response = post(manager_client, large_file())
        assert response.status_code == 302, response.content.decode()[-1500:]
        job = job_of(practice)
        assert response["Location"] == f"{BASE}imports/{job.pk}/"
        assert job.created_by == manager and job.entries_total > services.background_above_entries()

        def finished():
            with tenant_context(practice):
                row = ConfigImport.objects.get(pk=job.pk)
            return row if row.finished else None

        done = wait_for(finished)
    assert done.status == ConfigImportStatus.SUCCEEDED, done.outcome
    assert done.entries_done == done.entries_total and done.document is None
    with tenant_context(practice):
        extra = CallerPhrase.objects.filter(appointment_type__key__startswith="extra-").count()
    assert extra == EXTRA_TYPES * PHRASES_EACH
    assert done.outcome["sections"]["phrases"][0] >= extra

    page = manager_client.get(response["Location"])
    html = page.content.decode()
    assert page.status_code == 200
    assert f"Imported: {done.changes} changes" in html and 'id="section-phrases"' in html
    assert "hx-trigger" not in html  # finished: the page stops polling
    with cross_tenant("test: the import's audit entry"):
        event = AccessEvent.objects.get(practice_id=practice.pk, action=AuditAction.CONFIG_IMPORT)
    assert event.actor_user_id == manager.pk

    # Another practice's manager cannot see it.
    stranger = UserFactory(totp=True)
    from accounts.models import Role

    MembershipFactory(user=stranger, practice=other_practice, role=Role.PRACTICE_MANAGER)
    other = type(manager_client)()
    verify_second_factor(other, stranger)
    assert other.get(f"/p/beta/configuration/imports/{job.pk}/").status_code == 404

    # The task is idempotent: delivered again, a finished import is not run again.
    assert services.run_config_import(job.pk, practice.pk) == "nothing to do"


@pytest.mark.django_db
def test_the_progress_page_polls_while_the_import_is_queued_and_htmx_is_sent_there(
    manager_client, practice, settings
):
    settings.CONFIG_IMPORT_QUEUE = "nobody-listens-here"
    response = post(manager_client, large_file(), HTTP_HX_REQUEST="true")
    job = job_of(practice)
    assert response["HX-Redirect"] == f"{BASE}imports/{job.pk}/"
    html = manager_client.get(response["HX-Redirect"]).content.decode()
    assert 'hx-trigger="every 1s"' in html
    assert f'<span id="import-done">0</span> of <span id="import-total">{job.entries_total}' in html
    with tenant_context(practice):
        assert not CallerPhrase.objects.exists()  # nothing is written before the worker runs


@pytest.mark.django_db
def test_a_background_import_that_fails_shows_its_errors_by_path_and_changes_nothing(
    manager_client, practice, settings
):
    """The practice changed between the upload and the run: the BAA gate refuses it then."""
    settings.CONFIG_IMPORT_QUEUE = "nobody-listens-here"
    from tests.factories import sign_baa

    sign_baa(practice)
    doc = large_file()
    doc["ehr"]["kind"] = "sandbox"
    response = post(manager_client, doc)
    job = job_of(practice)
    from compliance import services as baa_services
    from compliance.models import BusinessAssociateAgreement

    with tenant_context(practice):
        agreement = BusinessAssociateAgreement.objects.get(practice=practice)
    baa_services.terminate(agreement, reason="test: ended after the upload")
    assert services.run_config_import(job.pk, practice.pk) == "failed"
    html = manager_client.get(response["Location"]).content.decode()
    assert "<code>ehr</code>: connecting an EHR needs an executed BAA" in html
    with tenant_context(practice):
        assert not CallerPhrase.objects.exists()
        assert ConfigImport.objects.get().document is None


@pytest.mark.django_db
def test_the_importer_reports_progress_and_the_page_shows_it_while_running(
    manager_client, practice, settings
):
    from django.core.cache import cache

    from onboarding.services import apply_config, config_entries, parse_config

    seen: list[int] = []
    config = parse_config(large_file())
    apply_config(config, progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == config_entries(config) > 600

    settings.CONFIG_IMPORT_QUEUE = "nobody-listens-here"
    doc = large_file()
    doc["appointment_types"][0]["minutes"] = 45  # something to change
    response = post(manager_client, doc)
    job = job_of(practice)
    with tenant_context(practice):
        ConfigImport.objects.filter(pk=job.pk).update(status=ConfigImportStatus.RUNNING)
    cache.set(services.progress_key(job.pk), 300)
    try:
        html = manager_client.get(response["Location"]).content.decode()
    finally:
        cache.delete(services.progress_key(job.pk))
    assert (
        f'<span id="import-done">300</span> of <span id="import-total">{job.entries_total}' in html
    )
    assert 'hx-trigger="every 1s"' in html and "Importing" in html
