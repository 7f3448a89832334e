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
from compliance.models import AuditAction
from portal.tenancy import cross_tenant, tenant_context
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
    assert lines == expected and lines


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
