"""The compliance officer's audit log page: filter, keyset paging, verify, streamed export."""

from __future__ import annotations

import csv
import io
import json

import pytest

from accounts.models import Role
from compliance import audit
from compliance.models import AuditAction
from core.tenancy import cross_tenant, tenant_context
from tests.conftest import verify_second_factor
from tests.factories import LocationFactory, staff_member

pytestmark = pytest.mark.django_db

TRICKY = 'said "stop", path C:\\temp\\x, then\na new line; ünïcode'


@pytest.fixture(params=[False, True], ids=["debug-off", "debug-on"])
def debug(request, settings):
    """The export tests run as deployed and as `make run` runs them (DEBUG on: Django's debug
    cursor wrapper, which has no COPY of its own)."""
    settings.DEBUG = request.param
    return request.param


@pytest.fixture
def officer_client(client, practice):
    officer = staff_member(practice, Role.COMPLIANCE_OFFICER, username="officer@alpha.test")
    verify_second_factor(client, officer)
    return client


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_only_compliance_officers_open_the_audit_log(client, manager, practice):
    verify_second_factor(client, manager)  # a practice manager
    assert client.get("/p/alpha/compliance/audit/").status_code == 403
    assert client.get("/p/alpha/compliance/audit/export.csv").status_code == 403


def test_the_page_lists_this_practices_entries_filters_and_pages(
    officer_client, practice, other_practice
):
    for i in range(55):
        audit.record(
            AuditAction.PHI_READ, practice=practice, object_type="calls.transcript", object_ids=[i]
        )
    audit.record(AuditAction.PHI_EXPORT, practice=practice, reason="records request")
    audit.record(AuditAction.PHI_READ, practice=other_practice, reason="other practice secret")
    with tenant_context(practice):
        LocationFactory(practice=practice, name="Uptown")

    page = officer_client.get("/p/alpha/compliance/audit/").content.decode()
    assert "Audit log" in page and "other practice secret" not in page
    assert page.count("<tr>") == 51  # header + 50, newest first
    assert "change.create" in page and "portal.location" in page
    assert "Older entries" in page

    older = page.split('href="?before=')[1].split('"')[0].replace("&amp;", "&")
    rest = officer_client.get(f"/p/alpha/compliance/audit/?before={older}").content.decode()
    assert rest.count("<tr>") > 1 and "Older entries" not in rest

    only = officer_client.get("/p/alpha/compliance/audit/?action=phi.export").content.decode()
    assert only.count("<tr>") == 2 and "records request" in only
    changes = officer_client.get("/p/alpha/compliance/audit/?action=change.").content.decode()
    assert 'data-action="phi.read"' not in changes and 'data-action="change.create"' in changes


def test_verify_from_the_page(officer_client, practice):
    audit.record(AuditAction.PHI_READ, practice=practice)
    audit.seal_now()
    page = officer_client.get("/p/alpha/compliance/audit/verify/").content.decode()
    assert "Chain intact" in page
    fragment = officer_client.get("/p/alpha/compliance/audit/verify/", HTTP_HX_REQUEST="true")
    assert fragment.content.decode().strip().startswith('<p class="ok"')


def test_csv_export_streams_this_practice_only_and_is_itself_audited(
    officer_client, practice, other_practice, debug
):
    audit.record(AuditAction.PHI_READ, practice=practice, reason=TRICKY, object_ids=[7, 8])
    audit.record(AuditAction.PHI_READ, practice=other_practice, reason="not yours")
    audit.seal_now()
    response = officer_client.get(
        "/p/alpha/compliance/audit/export.csv?action=phi.read", HTTP_X_REQUEST_ID="export-req-0001"
    )
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="audit-alpha-')
    manifest = json.loads(response["X-Audit-Manifest"])
    assert list(manifest["chain_heads"]) == [f"practice:{practice.pk}"]
    assert (
        manifest["filters"]["action"] == "phi.read" and manifest["request_id"] == "export-req-0001"
    )
    *lines, trailer = csv.DictReader(io.StringIO(body(response).decode(), newline=""))
    rows = [r for r in lines if r["source"] != "omitted"]  # the rest: stubs of left-out entries
    assert [r["reason"] for r in rows] == [TRICKY]
    assert trailer["source"] == "trailer"
    counted = json.loads(trailer["details"])["trailer"]
    assert counted["rows"] == len(lines) and counted["omitted"] == len(lines) - 1 > 0
    assert {r["chain"] for r in lines} == {f"practice:{practice.pk}"}
    assert rows[0]["object_ids"] == "7 8" and rows[0]["chain"] == f"practice:{practice.pk}"
    assert rows[0]["seq"] and len(rows[0]["hash"]) == 64
    with cross_tenant("test"):
        exported = audit.AccessEvent.objects.get(action="audit.export")
    assert exported.practice_id == practice.pk and exported.request_id == "export-req-0001"
    assert exported.details["filters"]["action"] == "phi.read"


def test_json_lines_export_keeps_json_intact_and_starts_with_the_manifest(
    officer_client, practice, debug
):
    audit.record(AuditAction.PHI_READ, practice=practice, reason=TRICKY, details={"k": TRICKY})
    audit.seal_now()
    response = officer_client.get("/p/alpha/compliance/audit/export.jsonl")
    lines = body(response).decode().splitlines()
    head = json.loads(lines[0])["manifest"]
    assert head["format"] == "jsonl" and f"practice:{practice.pk}" in head["chain_heads"]
    records = [json.loads(line) for line in lines[1:-1]]
    assert json.loads(lines[-1])["trailer"]["rows"] == len(records)
    read = next(r for r in records if r["action"] == "phi.read")
    assert read["reason"] == TRICKY and json.loads(read["details"]) == {"k": TRICKY}
    assert {r["source"] for r in records} >= {"access", "change"}


def test_vendor_export_command_writes_data_and_a_manifest_with_its_digest(
    tmp_path, practice, other_practice, debug
):
    import hashlib

    from django.core.management import call_command

    audit.record(AuditAction.PHI_READ, practice=practice, reason="alpha read")
    audit.record(AuditAction.PHI_READ, practice=other_practice, reason="beta read")
    audit.record(AuditAction.LOGIN, practice=None)
    audit.seal_now()
    out = tmp_path / "all.csv"
    call_command(
        "export_audit",
        str(out),
        "--format",
        "csv",
        "--action",
        "phi.read",
        "--reason",
        "regulator request #12",
        stdout=io.StringIO(),
    )
    *rows, _ = csv.DictReader(io.StringIO(out.read_text(), newline=""))
    rows = [r for r in rows if r["source"] != "omitted"]
    assert sorted(r["reason"] for r in rows) == ["alpha read", "beta read"]
    manifest = json.loads((tmp_path / "all.csv.manifest.json").read_text())
    assert manifest["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert set(manifest["chain_heads"]) == {
        f"practice:{practice.pk}",
        f"practice:{other_practice.pk}",
    }
    with cross_tenant("test"):
        recorded = audit.AccessEvent.objects.get(action="audit.export")
    assert recorded.reason == "regulator request #12" and recorded.practice_id is None


def test_keyset_paging_walks_both_tables_once_each_in_order_even_at_equal_times(practice):
    """Access events and change entries sharing timestamps, paged 7 at a time from the cursor
    the page hands out: every row exactly once, newest first (time, source, id)."""
    from datetime import timedelta

    from django.contrib.contenttypes.models import ContentType
    from django.utils import timezone

    from compliance import export
    from compliance.models import ChangeEntry

    start = timezone.now().replace(microsecond=0) - timedelta(days=1)
    location_type = ContentType.objects.get_by_natural_key("portal", "location")
    for i in range(20):
        at = start + timedelta(seconds=i // 3)  # three rows per instant, both kinds
        audit.record(AuditAction.PHI_READ, practice=practice, occurred_at=at, object_ids=[i])
        ChangeEntry.objects.create(
            content_type=location_type,
            object_pk=str(i),
            object_repr=f"loc {i}",
            action=ChangeEntry.Action.UPDATE,
            timestamp=at,
            practice_id=practice.pk,
        )
    filters = export.AuditFilters(practice_id=practice.pk, until=start + timedelta(hours=1))
    with tenant_context(practice):
        seen, before = [], ""
        for _ in range(20):
            rows, before = export.page(filters, before=before, size=7)
            seen += [(r.occurred_at, r.source, r.id) for r in rows]
            if not before:
                break
    assert len(seen) == 40 and len(set(seen)) == 40
    assert seen == sorted(seen, reverse=True)


def test_filters_each_reach_their_rows(practice):
    from django.contrib.contenttypes.models import ContentType

    from compliance import export
    from compliance.context import audit_context
    from compliance.models import ChangeEntry

    audit.record(AuditAction.TWO_FACTOR_FAILED, practice=practice, actor_label="ana@alpha.test")
    audit.record(AuditAction.TWO_FACTOR_VERIFIED, practice=practice, actor_label="bo@alpha.test")
    with audit_context(api_client_id="voice-agent"):
        audit.record(AuditAction.PHI_READ, practice=practice, object_type="calls.transcript")
    hold_type = ContentType.objects.get_by_natural_key("scheduling", "hold")
    ChangeEntry.objects.create(
        content_type=hold_type,
        object_pk="5",
        object_repr="hold 5",
        action=ChangeEntry.Action.DELETE,
        practice_id=practice.pk,
        actor_email="ana@alpha.test",
    )

    def actions(**kw):
        with tenant_context(practice):
            rows, _ = export.page(export.AuditFilters(practice_id=practice.pk, **kw))
        return sorted(r.action for r in rows)

    assert actions(action="2fa.") == ["2fa.failed", "2fa.verified"]
    assert actions(actor="ana@alpha.test") == ["2fa.failed", "change.delete"]
    assert actions(actor="voice-agent") == ["phi.read"]
    assert actions(object_type="scheduling.hold") == ["change.delete"]
    assert actions(object_type="calls.transcript") == ["phi.read"]
    assert actions(action="change.delete", actor="ana@alpha.test") == ["change.delete"]
    assert actions(action="impersonation.") == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_an_export_the_database_drops_half_way_errors_and_is_recorded_as_failed(
    officer_client, practice, debug, fmt
):
    """The client reads the first blocks, then the backend streaming the COPY is terminated:
    the response raises instead of ending (the server aborts it: no clean end of a chunked
    body), nothing received holds a trailer, and the failure is on record beside the export."""
    from compliance import export
    from tests.compliance.test_audit_export import BIG, fat_trail, terminate_the_copy

    fat_trail(practice)
    response = officer_client.get(f"/p/alpha/compliance/audit/export.{fmt}")
    assert response.status_code == 200
    blocks = iter(response.streaming_content)
    received = [next(blocks), next(blocks)]
    terminate_the_copy()
    with pytest.raises(export.ExportFailed):
        received.extend(blocks)
    data = b"".join(received)
    assert len(data) > len(BIG) and b"trailer" not in data.splitlines()[-1][:20]
    with cross_tenant("test"):
        started = audit.AccessEvent.objects.get(action="audit.export")
        failed = audit.AccessEvent.objects.get(action="audit.export_failed")
    assert failed.practice_id == practice.pk and failed.object_ids == [str(started.pk)]
    assert failed.actor_user_id == started.actor_user_id and failed.actor_user_id
    assert failed.request_id == started.request_id
    assert failed.details["format"] == fmt and 0 < failed.details["rows_sent"] < 40


@pytest.mark.django_db(transaction=True)
def test_behind_gunicorn_a_dropped_export_is_a_broken_chunked_body_the_client_sees(
    officer_client, practice, tmp_path
):
    """As deployed (gunicorn.conf.py): the response raising makes gunicorn close the connection
    without the chunked body's last chunk, which an HTTP client reports as an error."""
    import os
    import subprocess
    import sys
    import threading
    import time

    import httpx

    from tests.compliance.test_audit_export import BIG, fat_trail, terminate_the_copy
    from tests.portal.test_make_run import free_port
    from tests.workers import ROOT, test_database_url

    fat_trail(practice)
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "WEB_CONCURRENCY": "1",
        "GUNICORN_THREADS": "2",
        "RUN_STATE_DIR": str(tmp_path),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "portal.wsgi:application", "--config",
         "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}", "--log-level", "critical"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    cookies = {name: morsel.value for name, morsel in officer_client.cookies.items()}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", cookies=cookies) as http:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if http.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "gunicorn did not start"
                threading.Event().wait(0.2)
            with http.stream("GET", "/p/alpha/compliance/audit/export.jsonl") as response:
                assert response.status_code == 200
                assert response.headers["transfer-encoding"] == "chunked"
                chunks = response.iter_raw()
                received = next(chunks)
                terminate_the_copy()
                with pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"):
                    for chunk in chunks:
                        received += chunk
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert len(received) > len(BIG) and b'{"trailer"' not in received
    with cross_tenant("test"):
        assert audit.AccessEvent.objects.filter(action="audit.export_failed").count() == 1
