"""An outsider checks an export with the stand-alone verifier: no Django, no database.

The verifier runs as a subprocess, as an auditor would run it; tampering with an export (an
edited, dropped, reordered or cut-off entry, with or without a recomputed trailer, or a forged
checkpoint) is caught and named.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest

from accounts.models import Location
from compliance import audit, checkpoints, export
from compliance.context import audit_context
from compliance.models import AuditAction, AuditCheckpoint, AuditSeal
from core.tenancy import tenant_context
from tests.factories import LocationFactory, PracticeFactory, UserFactory, staff_member
from tests.workers import ROOT

VERIFIER = ROOT / "scripts" / "verify_audit_export.py"


def run_verifier(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-I", str(VERIFIER), str(path), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=path.parent,  # nothing of the portal on the path (-I: isolated mode)
    )


@pytest.fixture
def trail(db):
    practice = PracticeFactory()
    user = UserFactory()
    with audit_context(request_id="req-verify-1", actor_user_id=user.pk, actor_label="dana"):
        for i in range(4):
            audit.record(
                AuditAction.PHI_READ, practice=practice, object_ids=[i], reason=f"call {i}"
            )
        with tenant_context(practice):
            location = LocationFactory(practice=practice, name="Main")
            location.name = "Main St"
            location.save()
            Location.objects.filter(pk=location.pk).update(name="Main Street")  # captured
    audit.seal_now()
    audit.record(AuditAction.PHI_READ, practice=practice, object_ids=[9], reason="later")
    audit.seal_now()
    return practice


def exported(practice, tmp_path: Path, fmt: str, filters=None) -> Path:
    filters = filters or export.AuditFilters(practice_id=practice.pk)
    path = tmp_path / f"audit.{fmt}"
    with tenant_context(practice):
        data = b"".join(
            export.stream(filters, fmt, {"exported_by": "officer", "request_id": "r-1"})
        )
    path.write_bytes(data)
    return path


def jsonl_parts(path: Path) -> tuple[str, list[str], dict]:
    lines = path.read_text().splitlines(keepends=True)
    manifest, rows, trailer = lines[0], lines[1:-1], json.loads(lines[-1])["trailer"]
    return manifest, rows, trailer


def rewrite(path: Path, manifest: str, rows: list[str], trailer: dict) -> None:
    """Write the file again with a trailer recomputed for these rows, as a forger would."""
    verifier = _verifier_module()
    digest = hashlib.sha256()
    for line in rows:
        fields = verifier.raw_jsonl(json.loads(line))
        digest.update(("\t".join(map(verifier.copy_text, fields)) + "\n").encode())
    last = json.loads(rows[-1])
    trailer = {
        **trailer,
        "rows": len(rows),
        "sha256": digest.hexdigest(),
        "last": {"source": last["source"], "id": last["id"], "hash": last["hash"]},
    }
    path.write_text(manifest + "".join(rows) + json.dumps({"trailer": trailer}) + "\n")


def _verifier_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("verify_audit_export", VERIFIER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sealed_rows(rows: list[str]) -> list[int]:
    return [i for i, line in enumerate(rows) if json.loads(line)["hash"]]


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_a_whole_export_verifies_against_its_signed_checkpoints(trail, tmp_path, fmt):
    path = exported(trail, tmp_path, fmt)
    result = run_verifier(path, "--public-key", checkpoints.signing_key().public.hex())
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("OK") and "complete chains" in result.stdout
    sealed = AuditSeal.objects.filter(chain=audit.chain_name(trail.pk)).count()
    assert sealed >= 8  # the practice and its keys, 5 reads, 2 by auditlog, 1 captured
    assert f"({sealed} sealed, 0 awaiting sealing)" in result.stdout


def test_the_manifest_says_how_to_run_the_verifier_and_carries_the_keys(trail, tmp_path):
    manifest = json.loads(exported(trail, tmp_path, "jsonl").read_text().splitlines()[0])
    assert "scripts/verify_audit_export.py" in manifest["manifest"]["verify"]
    key = checkpoints.signing_key()
    assert manifest["manifest"]["public_keys"][key.key_id] == key.public.hex()


def test_an_edited_entry_is_caught_with_or_without_a_recomputed_trailer(trail, tmp_path):
    path = exported(trail, tmp_path, "jsonl")
    manifest, rows, trailer = jsonl_parts(path)
    i = sealed_rows(rows)[1]
    record = json.loads(rows[i])
    record["reason"] = "nothing to see"
    rows[i] = json.dumps(record, separators=(",", ":")) + "\n"
    path.write_text(manifest + "".join(rows) + json.dumps({"trailer": trailer}) + "\n")
    naive = run_verifier(path)
    assert naive.returncode == 1 and "trailer's digest" in naive.stdout

    rewrite(path, manifest, rows, trailer)
    forged = run_verifier(path)
    assert forged.returncode == 1
    assert f"row {i + 1} (access #{record['id']})" in forged.stdout
    assert "reason differs from the sealed entry" in forged.stdout

    payload = json.loads(record["sealed"])  # the sealed payload edited to match: its hash breaks
    payload["reason"] = "nothing to see"
    record["sealed"] = json.dumps(payload)
    rows[i] = json.dumps(record, separators=(",", ":")) + "\n"
    rewrite(path, manifest, rows, trailer)
    rehashed = run_verifier(path)
    assert rehashed.returncode == 1 and "does not match its hash" in rehashed.stdout


def test_a_dropped_entry_is_caught(trail, tmp_path):
    path = exported(trail, tmp_path, "jsonl")
    manifest, rows, trailer = jsonl_parts(path)
    dropped = rows.pop(sealed_rows(rows)[2])
    rewrite(path, manifest, rows, trailer)
    result = run_verifier(path)
    assert result.returncode == 1 and "missing (entries dropped)" in result.stdout, result.stdout
    assert json.loads(dropped)["hash"]


def test_reordered_entries_are_caught(trail, tmp_path):
    path = exported(trail, tmp_path, "jsonl")
    manifest, rows, trailer = jsonl_parts(path)
    a, b = sealed_rows(rows)[:2]
    rows[a], rows[b] = rows[b], rows[a]
    path.write_text(manifest + "".join(rows) + json.dumps({"trailer": trailer}) + "\n")
    moved = run_verifier(path)
    assert moved.returncode == 1 and "trailer's digest" in moved.stdout

    # Renumbered so the chain reads in the new order: every moved entry's hash breaks.
    first, second = json.loads(rows[a]), json.loads(rows[b])
    first["seq"], second["seq"] = second["seq"], first["seq"]
    first["prev_hash"], second["prev_hash"] = second["prev_hash"], first["prev_hash"]
    rows[a] = json.dumps(first, separators=(",", ":")) + "\n"
    rows[b] = json.dumps(second, separators=(",", ":")) + "\n"
    rewrite(path, manifest, rows, trailer)
    renumbered = run_verifier(path)
    assert renumbered.returncode == 1 and "does not match its hash" in renumbered.stdout


def test_a_truncated_export_is_caught(trail, tmp_path):
    path = exported(trail, tmp_path, "jsonl")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    cut = run_verifier(path)
    assert cut.returncode == 1 and "truncated" in cut.stdout

    path.write_bytes(data)
    manifest, rows, trailer = jsonl_parts(path)
    by_seq = sorted(sealed_rows(rows), key=lambda i: json.loads(rows[i])["seq"])
    newest = by_seq[-1]
    kept = [line for i, line in enumerate(rows) if i != newest]
    newest_seq = json.loads(rows[newest])["seq"]
    chain = json.loads(rows[newest])["chain"]
    trailer["chain_heads"][chain] = {
        "seq": newest_seq - 1,
        "hash": json.loads(rows[by_seq[-2]])["hash"],
    }
    rewrite(path, manifest, kept, trailer)  # the newest entry cut off, the trailer made to fit
    shortened = run_verifier(path)
    assert shortened.returncode == 1 and "signed checkpoint" in shortened.stdout


def test_a_forged_checkpoint_or_a_foreign_key_is_refused(trail, tmp_path):
    path = exported(trail, tmp_path, "jsonl")
    manifest, rows, trailer = jsonl_parts(path)
    body = json.loads(trailer["checkpoints"][-1]["body"])
    body["entries"] += 1
    trailer["checkpoints"][-1]["body"] = checkpoints.canonical(body)
    rewrite(path, manifest, rows, trailer)
    forged = run_verifier(path)
    assert forged.returncode == 1 and "signature does not verify" in forged.stdout

    path = exported(trail, tmp_path, "jsonl")
    other = run_verifier(path, "--public-key", "ab" * 32)
    assert other.returncode == 1 and "the key you gave" in other.stdout


def stubs_of(rows: list[str]) -> list[int]:
    return [i for i, line in enumerate(rows) if json.loads(line)["source"] == "omitted"]


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_a_filtered_export_proves_its_chain_whole_with_stubs_that_hold_no_content(
    trail, tmp_path, fmt
):
    filters = export.AuditFilters(practice_id=trail.pk, action="change.")
    path = exported(trail, tmp_path, fmt, filters)
    result = run_verifier(path, "--public-key", checkpoints.signing_key().public.hex())
    assert result.returncode == 0, result.stdout
    reads = AuditSeal.objects.filter(
        chain=audit.chain_name(trail.pk), entry_table="compliance_accessevent"
    ).count()
    assert reads >= 5
    assert f"filtered, complete chains ({reads} left-out entries as stubs)" in result.stdout
    # The reads the filter leaves out say nothing of themselves: neither what nor why.
    text = path.read_text()
    assert "phi.read" not in text and not any(f"call {i}" in text for i in range(4))


def test_a_filtered_export_with_a_dropped_row_or_a_changed_count_is_caught(trail, tmp_path):
    filters = export.AuditFilters(practice_id=trail.pk, action="phi.read")
    path = exported(trail, tmp_path, "jsonl", filters)
    manifest, rows, trailer = jsonl_parts(path)
    assert stubs_of(rows) and run_verifier(path).returncode == 0

    kept = list(rows)
    kept.pop(sealed_rows(rows)[1])  # a row the filter selected, gone: a gap in the chain
    rewrite(path, manifest, kept, trailer)
    dropped = run_verifier(path)
    assert dropped.returncode == 1 and "missing (entries dropped)" in dropped.stdout

    rewrite(path, manifest, rows, {**trailer, "omitted": trailer["omitted"] - 1})
    miscounted = run_verifier(path)
    assert miscounted.returncode == 1 and "left-out entries, the file" in miscounted.stdout

    # A selected row passed off as left out (its hashes kept, its content gone) links up, and
    # the recomputed trailer counts it: the trailer's signature no longer holds.
    i = next(i for i in sealed_rows(rows) if i not in stubs_of(rows))
    record = json.loads(rows[i])
    stub = {c: None for c in export.COLUMNS}
    stub.update({c: record[c] for c in ("id", "seal_version", "prev_hash", "chain", "seq", "hash")})
    disguised = list(rows)
    disguised[i] = json.dumps({**stub, "source": "omitted"}, separators=(",", ":")) + "\n"
    rewrite(path, manifest, disguised, {**trailer, "omitted": trailer["omitted"] + 1})
    hidden = run_verifier(path)
    assert hidden.returncode == 1 and "the trailer's signature does not verify" in hidden.stdout


@pytest.mark.django_db(transaction=True)
def test_a_left_out_entry_rewritten_in_the_database_breaks_the_filtered_exports_chain(tmp_path):
    from tests.superuser import superuser_connection

    practice = PracticeFactory()
    ids = [
        audit.record(AuditAction.PHI_READ, practice=practice, object_ids=[i], reason=f"r{i}").pk
        for i in range(4)
    ]
    audit.record(AuditAction.PHI_EXPORT, practice=practice, reason="the one asked for")
    audit.seal_now()
    with superuser_connection(triggers=False) as su:
        su.execute(
            "UPDATE compliance_accessevent SET reason = 'nothing to see' WHERE id = %s", [ids[1]]
        )
    filters = export.AuditFilters(practice_id=practice.pk, action=AuditAction.PHI_EXPORT)
    result = run_verifier(exported(practice, tmp_path, "jsonl", filters))
    assert result.returncode == 1, result.stdout
    assert "prev_hash is not the hash before it" in result.stdout


def test_each_sealed_batch_leaves_a_signed_checkpoint_chained_to_the_one_before(trail):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    keys = checkpoints.public_keys()
    made = list(AuditCheckpoint.objects.order_by("id"))
    assert len(made) >= 2
    for before, after in itertools.pairwise(made):
        assert json.loads(after.body)["prev"] == hashlib.sha256(before.body.encode()).hexdigest()
    last = made[-1]
    Ed25519PublicKey.from_public_bytes(bytes.fromhex(keys[last.key_id])).verify(
        bytes.fromhex(last.signature), last.body.encode()
    )
    body = json.loads(last.body)
    chain = audit.chain_name(trail.pk)
    assert body["heads"][chain]["seq"] == AuditSeal.objects.filter(chain=chain).count()
    assert body["entries"] == AuditSeal.objects.count()


def test_after_a_key_rotation_old_checkpoints_still_verify_and_the_page_shows_the_new_key(
    trail, tmp_path, settings, client
):
    from django.core.management import call_command

    settings.AUDIT_SIGNING_KEY_FILE = str(tmp_path / "audit-signing.key")
    checkpoints.forget_key()
    try:
        first = checkpoints.signing_key()
        audit.record(AuditAction.PHI_READ, practice=trail, object_ids=[10], reason="before")
        audit.seal_now()
        call_command("rotate_keys", "--audit-signing-key", stdout=io.StringIO())
        second = checkpoints.signing_key()
        assert second.key_id != first.key_id
        audit.record(AuditAction.PHI_READ, practice=trail, object_ids=[11], reason="after")
        audit.seal_now()
        keys = checkpoints.public_keys()
        assert keys[first.key_id] == first.public.hex() and keys[second.key_id]

        path = exported(trail, tmp_path, "jsonl")
        result = run_verifier(path, "--public-key", second.public.hex())
        assert result.returncode == 0, result.stdout

        from accounts.models import Role
        from tests.conftest import verify_second_factor

        officer = staff_member(trail, Role.COMPLIANCE_OFFICER, username="officer@verifier.test")
        verify_second_factor(client, officer)
        page = client.get(f"/p/{trail.slug}/compliance/audit/")
        assert page.status_code == 200, page.content[:300]
        assert second.public.hex() in page.content.decode()
        assert first.key_id in page.content.decode()  # the earlier key, still listed
    finally:
        checkpoints.forget_key()
