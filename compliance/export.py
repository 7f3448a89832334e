"""Browsing and exporting the audit trail: one projection of access events and change entries.

Exports stream with PostgreSQL's COPY (constant memory, first byte at once) as CSV or JSON Lines,
inside one REPEATABLE READ snapshot with the chain heads the manifest carries, so a verifier can
anchor what it received. Each ends with a trailer (row count, last entry, digest of the raw rows,
chain heads, and the signed checkpoints that name those heads with every public key that
signed): a file without one is incomplete. The stand-alone `scripts/verify_audit_export.py` (no
Django, no database) checks one offline: the rows against the trailer, each sealed row's hash
recomputed from the `sealed` payload, prev_hash and seal version it carries, and the chains
against the checkpoints' signatures; `verify_file` runs that same verifier. Row-level
security applies throughout: a practice's compliance officer gets that practice's rows (tenant
context), vendor compliance any practice (cross-tenant).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from compliance import checkpoints
from compliance.audit import SEALED_COLUMNS, all_chains, chain_heads, chain_name, record
from compliance.context import audit_context
from compliance.models import AccessEvent, AuditAction
from compliance.support_policy import SupportForbidden, refused_in_support_session
from core.tenancy import cross_tenant, tenant_context

CHUNK = 256 * 1024  # bytes per streamed block: constant memory, few writes

# An export row: the source table, an access event's sealed columns (a change entry is mapped
# onto them), and its seal.
COLUMNS = (
    "source",
    *SEALED_COLUMNS["v1"]["compliance_accessevent"],
    *("sealed", "seal_version", "prev_hash", "chain", "seq", "hash"),
)

_ACCESS = """
    SELECT 'access'::text AS source, e.id, e.occurred_at, e.practice_id, e.action::text AS action,
           e.actor_user_id, e.actor_label::text AS actor_label, e.api_client_id::text,
           e.impersonation_session_id, e.object_type::text AS object_type,
           array_to_string(e.object_ids, ' ') AS object_ids, e.request_id::text, host(e.ip) AS ip,
           e.user_agent::text, e.reason, e.details::text AS details,
           {access_sealed}::text AS sealed, s.version::text AS seal_version,
           encode(s.prev_hash, 'hex') AS prev_hash,
           s.chain::text, s.seq, encode(s.hash, 'hex') AS hash
    FROM compliance_accessevent e
    LEFT JOIN compliance_auditseal s
           ON s.entry_table = 'compliance_accessevent' AND s.entry_id = e.id
"""
_CHANGE = """
    SELECT 'change'::text AS source, c.id, c.timestamp AS occurred_at, c.practice_id,
           'change.' || CASE c.action WHEN 0 THEN 'create' WHEN 1 THEN 'update'
                                      WHEN 2 THEN 'delete' ELSE 'access' END AS action,
           c.actor_id AS actor_user_id, coalesce(c.actor_email, '')::text AS actor_label,
           c.api_client_id::text, c.impersonation_session_id,
           ct.app_label || '.' || ct.model AS object_type, c.object_pk::text AS object_ids,
           coalesce(c.cid, '')::text AS request_id, host(c.remote_addr) AS ip,
           ''::text AS user_agent, ''::text AS reason,
           coalesce(c.changes::text, c.changes_text) AS details,
           {change_sealed}::text AS sealed, s.version::text AS seal_version,
           encode(s.prev_hash, 'hex') AS prev_hash,
           s.chain::text, s.seq, encode(s.hash, 'hex') AS hash
    FROM compliance_changeentry c
    JOIN django_content_type ct ON ct.id = c.content_type_id
    LEFT JOIN compliance_auditseal s
           ON s.entry_table = 'compliance_changeentry' AND s.entry_id = c.id
"""


def _sealed_payload(alias: str, table: str) -> str:
    """The entry's canonical payload as its seal hashed it (v1: the frozen columns, as jsonb
    text in UTC), so an outsider can recompute the hash from the export alone."""
    pairs = ", ".join(f"'{c}', {alias}.\"{c}\"" for c in SEALED_COLUMNS["v1"][table])
    return f"jsonb_build_object({pairs})"


_ACCESS = _ACCESS.replace("{access_sealed}", _sealed_payload("e", "compliance_accessevent"))
_CHANGE = _CHANGE.replace("{change_sealed}", _sealed_payload("c", "compliance_changeentry"))


@dataclass(frozen=True)
class AuditFilters:
    """What to show. `practice_id` None means every practice (vendor compliance only)."""

    practice_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    actor: str = ""  # a user id, or an exact actor label (username, client, email)
    action: str = ""  # exact (phi.read), or a prefix ending in a dot (change., 2fa.)
    object_type: str = ""
    include_global: bool = False  # vendor-level events (sign-ins, ...) on the global chain

    def describe(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("since", "until"):
            data[key] = data[key].isoformat() if data[key] else None
        return data


def _where(filters: AuditFilters, alias: str, kind: str) -> tuple[str, list[Any]]:
    time_col = "timestamp" if kind == "change" else "occurred_at"
    scope, params = _where_time_and_scope(filters, alias, time_col)
    clauses = [scope]
    if filters.actor:
        actor_id = f"{alias}.actor_user_id" if kind == "access" else f"{alias}.actor_id"
        label = f"{alias}.actor_label" if kind == "access" else f"{alias}.actor_email"
        if filters.actor.isdigit():
            clauses.append(f"{actor_id} = %s")
            params.append(int(filters.actor))
        else:
            clauses.append(f"({label} = %s OR {alias}.api_client_id = %s)")
            params.extend([filters.actor, filters.actor])
    return " AND ".join(clauses), params


def _predicates(filters: AuditFilters) -> dict[str, tuple[str, list[Any]] | None]:
    """Per source (access, change), the WHERE clause that keeps its rows under these filters,
    or None where the filters leave out the whole table."""
    action, object_type = filters.action, filters.object_type
    found: dict[str, tuple[str, list[Any]] | None] = {"access": None, "change": None}
    if not action or not action.startswith("change."):
        where, p = _where(filters, "e", "access")
        if action:
            if action.endswith("."):
                where += " AND e.action LIKE %s"
                p.append(action.replace("%", r"\%").replace("_", r"\_") + "%")
            else:
                where += " AND e.action = %s"
                p.append(action)
        if object_type:
            where += " AND e.object_type = %s"
            p.append(object_type)
        found["access"] = (where, p)
    if not action or action.startswith("change.") or action == "change":
        where, p = _where(filters, "c", "change")
        verbs = {"change.create": 0, "change.update": 1, "change.delete": 2}
        if action in verbs:
            where += " AND c.action = %s"
            p.append(verbs[action])
        if object_type:
            where += " AND ct.app_label || '.' || ct.model = %s"
            p.append(object_type.lower())
        found["change"] = (where, p)
    return found


def projection(filters: AuditFilters) -> tuple[str, list[Any]]:
    """One SELECT over both audit tables with the filters applied (no ordering)."""
    parts, params = [], []
    for base, predicate in zip((_ACCESS, _CHANGE), _predicates(filters).values(), strict=True):
        if predicate is not None:
            parts.append(f"{base} WHERE {predicate[0]}")
            params += predicate[1]
    if not parts:  # pragma: no cover - both branches cannot be excluded
        return f"{_ACCESS} WHERE FALSE", []
    return " UNION ALL ".join(f"({part})" for part in parts), params


# An entry a filtered export leaves out appears as a stub: its chain position and the hash of
# its content as the database holds it now (recomputed here, not the stored seal's), nothing
# else. With the stubs every chain is whole from seq 1 to the signed head, so the verifier checks
# each link and the count against the checkpoint, and an entry rewritten in the database breaks
# its link even though its content stays out of the file.
OMITTED = "omitted"
_STUB = """
    SELECT 'omitted'::text AS source, {a}.id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
           NULL, NULL, NULL, NULL, NULL, NULL, NULL, s.version::text,
           encode(s.prev_hash, 'hex'), s.chain::text, s.seq,
           encode(sha256(convert_to(s.version || '|' || s.chain || '|' || s.seq::text || '|'
                  || s.entry_table || '|' || {a}.id::text || '|' || encode(s.prev_hash, 'hex')
                  || '|' || {payload}::text, 'UTF8')), 'hex')
    FROM compliance_auditseal s
    JOIN {table} {a} ON s.entry_table = '{table}' AND s.entry_id = {a}.id
    {join}
    WHERE s.chain = ANY(%s::text[]) AND {left_out}
"""


def narrowed(filters: AuditFilters) -> bool:
    """The filters leave out entries of the chains the export draws from (beyond its scope)."""
    return bool(
        filters.since or filters.until or filters.actor or filters.action or filters.object_type
    )


def omitted_stubs(filters: AuditFilters, chains: list[str]) -> tuple[str, list[Any]]:
    """The stubs of every sealed entry of `chains` that the filters leave out (see `_STUB`)."""
    parts, params = [], []
    tables = {
        "access": ("e", "compliance_accessevent", ""),
        "change": (
            "c",
            "compliance_changeentry",
            "JOIN django_content_type ct ON ct.id = c.content_type_id",
        ),
    }
    for source, predicate in _predicates(filters).items():
        alias, table, join = tables[source]
        left_out = "TRUE" if predicate is None else f"NOT coalesce(({predicate[0]}), false)"
        parts.append(
            _STUB.format(
                a=alias,
                table=table,
                join=join,
                left_out=left_out,
                payload=_sealed_payload(alias, table),
            )
        )
        params += [chains, *(predicate[1] if predicate is not None else [])]
    return " UNION ALL ".join(f"({part})" for part in parts), params


@dataclass(frozen=True)
class Row:
    source: str
    id: int
    occurred_at: datetime
    practice_id: int | None
    action: str
    actor_user_id: int | None
    actor_label: str
    api_client_id: str
    impersonation_session_id: int | None
    object_type: str
    object_ids: str
    request_id: str
    ip: str | None
    user_agent: str
    reason: str
    details: str | None
    sealed: str | None
    seal_version: str | None
    prev_hash: str | None
    chain: str | None
    seq: int | None
    hash: str | None

    @property
    def cursor(self) -> str:
        return f"{self.occurred_at.isoformat()}|{self.source}|{self.id}"


Branch = tuple[str, str, list[Any]]  # (source, WHERE clause, its parameters)


def _access_branches(filters: AuditFilters) -> list[Branch]:
    """The access-event part of a page as branches that each read one index in order: one per
    action a prefix stands for, two for an actor name (a user's label, or an API client)."""
    where, params = _where_time_and_scope(filters, "e", "occurred_at")
    if filters.object_type:
        where += " AND e.object_type = %s"
        params.append(filters.object_type)
    actions: list[list[Any]] = [[]]
    action = filters.action
    if action.endswith("."):
        known = [a for a in AuditAction.values if a.startswith(action)]
        actions = [[a] for a in known] or [[]]
        if not known:
            where += " AND e.action LIKE %s"
            params.append(action.replace("%", r"\%").replace("_", r"\_") + "%")
    elif action:
        actions = [[action]]
    actors: list[tuple[str, list[Any]]] = [("", [])]
    if filters.actor.isdigit():
        actors = [(" AND e.actor_user_id = %s", [int(filters.actor)])]
    elif filters.actor:
        actors = [
            (" AND e.actor_label = %s", [filters.actor]),
            (" AND e.api_client_id = %s AND e.actor_label <> %s", [filters.actor] * 2),
        ]
    branches = []
    for one_action in actions:
        for actor_sql, actor_params in actors:
            clause = where + (" AND e.action = %s" if one_action else "") + actor_sql
            branches.append(("access", clause, [*params, *one_action, *actor_params]))
    return branches


def _change_branches(filters: AuditFilters) -> list[Branch]:
    where, params = _where_time_and_scope(filters, "c", "timestamp")
    verbs = {"change.create": 0, "change.update": 1, "change.delete": 2}
    if filters.action in verbs:
        where += " AND c.action = %s"
        params.append(verbs[filters.action])
    if filters.object_type:
        app_label, dot, model = filters.object_type.lower().partition(".")
        if not dot:
            return []
        where += (
            " AND c.content_type_id = (SELECT id FROM django_content_type "
            "WHERE app_label = %s AND model = %s)"
        )
        params += [app_label, model]
    if filters.actor.isdigit():
        return [("change", where + " AND c.actor_id = %s", [*params, int(filters.actor)])]
    if filters.actor:
        return [
            ("change", where + " AND c.actor_email = %s", [*params, filters.actor]),
            (
                "change",
                where + " AND c.api_client_id = %s AND c.actor_email IS DISTINCT FROM %s",
                [*params, filters.actor, filters.actor],
            ),
        ]
    return [("change", where, params)]


def _where_time_and_scope(
    filters: AuditFilters, alias: str, time_col: str
) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if filters.practice_id is not None:
        clauses.append(f"{alias}.practice_id = %s")
        params.append(filters.practice_id)
    elif not filters.include_global:
        clauses.append(f"{alias}.practice_id IS NOT NULL")
    if filters.since:
        clauses.append(f"{alias}.{time_col} >= %s")
        params.append(filters.since)
    if filters.until:
        clauses.append(f"{alias}.{time_col} < %s")
        params.append(filters.until)
    return " AND ".join(clauses) or "TRUE", params


def _parse_cursor(before: str) -> tuple[datetime, str, int] | None:
    try:
        stamp, source, entry_id = before.split("|")
        if source not in ("access", "change"):
            return None
        return datetime.fromisoformat(stamp), source, int(entry_id)
    except ValueError:
        return None  # a mangled cursor starts from the newest entries


def page(filters: AuditFilters, before: str = "", size: int = 50) -> tuple[list[Row], str]:
    """Newest first, `size` rows older than the `before` cursor; returns (rows, next cursor or "").

    Keyset paging, no counts, no OFFSET: each branch (see `_access_branches`) reads at most
    size + 1 rows from an index range that starts at the cursor, and the branches are merged.
    Constant cost however deep the log is and wherever the page is.
    """
    query, params = page_query(filters, before, size)
    if not query:
        return [], ""
    with connection.cursor() as cur:
        cur.execute(query, params)
        rows = [Row(*r) for r in cur.fetchall()]
    more = len(rows) > size
    rows = rows[:size]
    return rows, (rows[-1].cursor if more and rows else "")


def page_query(filters: AuditFilters, before: str = "", size: int = 50) -> tuple[str, list[Any]]:
    """The SQL of `page` (size + 1 rows, to know whether there are older ones); "" if nothing
    can match."""
    action = filters.action
    want_access = not action or not action.startswith("change")
    want_change = not action or action.startswith("change.") or action == "change"
    branches = (_access_branches(filters) if want_access else []) + (
        _change_branches(filters) if want_change else []
    )
    if not branches:
        return "", []
    cursor = _parse_cursor(before) if before else None
    parts, params = [], []
    for source, where, branch_params in branches:
        alias, time_col = ("e", "occurred_at") if source == "access" else ("c", "timestamp")
        clause, values = where, list(branch_params)
        if cursor is not None:
            stamp, after_source, entry_id = cursor
            # Newest first is (time, source, id) descending; 'access' sorts before 'change'.
            if source == after_source:
                clause += f" AND ({alias}.{time_col}, {alias}.id) < (%s, %s)"
                values += [stamp, entry_id]
            elif source < after_source:
                clause += f" AND {alias}.{time_col} <= %s"
                values.append(stamp)
            else:
                clause += f" AND {alias}.{time_col} < %s"
                values.append(stamp)
        base = _ACCESS if source == "access" else _CHANGE
        parts.append(
            f"({base} WHERE {clause} ORDER BY {alias}.{time_col} DESC, {alias}.id DESC LIMIT %s)"
        )
        params += [*values, size + 1]
    query = (
        f"SELECT * FROM ({' UNION ALL '.join(parts)}) AS audit "  # noqa: S608 - values bound
        "ORDER BY occurred_at DESC, source DESC, id DESC LIMIT %s"
    )
    return query, [*params, size + 1]


@refused_in_support_session(SupportForbidden.EXPORT)
def manifest(
    filters: AuditFilters, fmt: str, *, exported_by: str, request_id: str
) -> dict[str, Any]:
    """What comes with an export: its filters and the heads of the chains it draws from."""
    return {
        "format": fmt,
        "columns": list(COLUMNS),
        "generated_at": timezone.now().isoformat(),
        "exported_by": exported_by,
        "request_id": request_id,
        "filters": filters.describe(),
        "chain_heads": _heads_json(chain_names(filters)),
        "public_keys": checkpoints.public_keys(),
        "verify": f"{VERIFY_HOW}. manage.py verify_audit --manifest <this file>: every chain in "
        "the database must still hold these heads",
    }


# --- JSON Lines -------------------------------------------------------------------------------
# Each line is exactly what PostgreSQL's row_to_json() makes of a projection row, but PostgreSQL
# does not build it: row_to_json looks up every column's type for each row and escapes char by
# char, which would be most of the export's time on one core. COPY's text format is as cheap as
# CSV and already escapes backslash, \b, \f, \n, \r and \t exactly as JSON does, and its tabs
# and newlines only ever separate columns and rows. So PostgreSQL sends the plain columns (numbers
# as digits or `null`, timestamps in JSON's form) and the exporter adds the keys and quotes with a
# few bytes operations per block, on the other core while PostgreSQL reads on.

_NUMBERS = frozenset({"id", "practice_id", "actor_user_id", "impersonation_session_id", "seq"})
_TIMESTAMPS = frozenset({"occurred_at"})
_RAW_CONTROLS = bytes(range(0x00, 0x08 + 1)) + bytes(range(0x0E, 0x1F + 1))  # COPY leaves these
_TOKEN = re.compile(rb"\\.|[\x00-\x08\x0e-\x1f]", re.DOTALL)


def _jsonl_select() -> str:
    """The projection's columns as COPY text fields that need only quotes and keys around them."""
    fields = []
    for col in COLUMNS:
        if col in _NUMBERS:
            fields.append(f"coalesce(audit.{col}::text, 'null')")
        elif col in _TIMESTAMPS:  # to_json's ISO 8601 form, unquoted (it needs no escaping)
            fields.append(f"btrim(to_json(audit.{col})::text, '\"')")
        else:
            fields.append(f"audit.{col}")
    return ", ".join(fields)


def _jsonl_row_format() -> bytes:
    """One line with a %s for each field: `{"source":"%s","id":%s,...,"hash":"%s"}\n`."""
    fields = []
    for col in COLUMNS:
        value = "%s" if col in _NUMBERS else '"%s"'
        fields.append(f'"{col}":{value}')
    return ("{" + ",".join(fields) + "}\n").encode()


_ROW = _jsonl_row_format()


def _json_escape(token: re.Match[bytes]) -> bytes:
    text = token[0]
    if len(text) == 1:  # a raw control character
        return b"\\u%04x" % text[0]
    return b"\\u000b" if text == b"\\v" else text  # COPY's other escapes are JSON's too


def jsonl_from_copy_text(block: bytes) -> bytes:
    """Whole rows of `COPY (SELECT <_jsonl_select()> ...) TO STDOUT` text output as JSON lines,
    each exactly the text row_to_json() gives of that row (tests/compliance/test_audit_export)."""
    escapes = b"\\" in block  # COPY's escapes, doubled backslashes and NULL (\N) all start so
    if (escapes and b"\\v" in block) or len(block.translate(None, _RAW_CONTROLS)) != len(block):
        block = _TOKEN.sub(_json_escape, block)  # rare: pair every backslash with what it escapes
    fields = block.replace(b'"', b'\\"').replace(b"\n", b"\t").split(b"\t")
    rows, rest = divmod(len(fields) - 1, len(COLUMNS))
    if rest or fields.pop():
        raise ValueError("COPY text block does not end on a row boundary")
    lines = (_ROW * rows) % tuple(fields)
    # A NULL text field is \N between two quotes; data never holds that (its backslashes are
    # doubled and its quotes escaped); numbers came as `null` already.
    return lines.replace(b'"\\N"', b"null") if escapes else lines


# --- CSV ----------------------------------------------------------------------------------------
# Made by the exporter from COPY's text rows too (not by COPY's CSV format), so both formats hash
# the same raw values (see `Tally`) and a cell can be neutralised for spreadsheets: a value that
# starts with = + - @, a tab or a carriage return is a formula to Excel or LibreOffice, so it is
# written with a ' in front; so is one that starts with ' itself, which makes the rule reversible
# (`csv_raw_value`). Every non-NULL cell is quoted; NULL is an empty unquoted cell.

NEUTRALISE_PREFIX = "'"
NEUTRALISED_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")
_CSV_ROW = (b'"%s",' * (len(COLUMNS) - 1)) + b'"%s"\n'
CSV_HEADER = (",".join(COLUMNS) + "\n").encode()
# A cell starts right after `,"` (the first column, `source`, is always access or change): in
# COPY's text form a tab or CR at its start is still the escape \t or \r. Data quotes are doubled,
# so `,"` followed by one of these is always a cell's start.
_NEUTRAL = re.compile(rb""","(?=[=+\-@']|\\[tr])""")
_COPY_ESCAPE = re.compile(rb"\\[\\bfnrtv]")
_COPY_UNESCAPED = {
    b"\\\\": b"\\",
    b"\\b": b"\b",
    b"\\f": b"\f",
    b"\\n": b"\n",
    b"\\r": b"\r",
    b"\\t": b"\t",
    b"\\v": b"\v",
}


def csv_from_copy_text(block: bytes) -> bytes:
    """Whole rows of `COPY (SELECT * FROM <projection>) TO STDOUT` text output as CSV rows (every
    cell quoted, NULL empty and unquoted, formula-like cells neutralised)."""
    fields = block.replace(b'"', b'""').replace(b"\n", b"\t").split(b"\t")
    rows, rest = divmod(len(fields) - 1, len(COLUMNS))
    if rest or fields.pop():
        raise ValueError("COPY text block does not end on a row boundary")
    lines = (_CSV_ROW * rows) % tuple(fields)
    if _NEUTRAL.search(lines):  # one scan; the rule is rarely needed
        lines = _NEUTRAL.sub(b',"' + NEUTRALISE_PREFIX.encode(), lines)
    if b"\\" in lines:
        # NULL is \N between two quotes (data backslashes are doubled, data quotes too).
        lines = lines.replace(b'"\\N"', b"")
        if b"\\" in lines:
            lines = _COPY_ESCAPE.sub(lambda m: _COPY_UNESCAPED[m[0]], lines)
    return lines


def csv_raw_value(cell: str) -> str:
    """A CSV cell's value as it is stored (the neutralisation undone)."""
    return cell[1:] if cell.startswith(NEUTRALISE_PREFIX) else cell


# --- the trailer --------------------------------------------------------------------------------


@dataclass
class Tally:
    """What an export's trailer says of the rows before it: how many, the last one's entry and
    seal hash, and the SHA-256 of the rows' raw values in the order sent (COPY's text rows of
    the format's select list, before any JSON or CSV encoding and before neutralisation), so a
    file that lost, gained, reordered or changed a row no longer matches its trailer."""

    counts_omitted: bool = False  # a filtered export: how many of its rows are stubs
    rows: int = 0
    omitted: int = 0
    last: dict[str, Any] | None = None
    digest: Any = None

    def __post_init__(self) -> None:
        self.digest = hashlib.sha256()

    def add(self, block: bytes) -> None:
        """Count one block of whole COPY text rows."""
        if not block:
            return
        self.digest.update(block)
        self.rows += block.count(b"\n")
        if self.counts_omitted:  # a row starts the block or follows a newline
            stub = OMITTED.encode() + b"\t"
            self.omitted += block.count(b"\n" + stub) + block.startswith(stub)
        start = block.rfind(b"\n", 0, len(block) - 1) + 1
        fields = block[start:-1].split(b"\t")
        entry_hash = fields[COLUMNS.index("hash")].decode()
        self.last = {
            "source": fields[0].decode(),
            "id": int(fields[1]),
            "hash": None if entry_hash == "\\N" else entry_hash,
        }

    def trailer(
        self, chain_heads: dict[str, Any], proof: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        return {
            "rows": self.rows,
            **({"omitted": self.omitted} if self.counts_omitted else {}),
            "last": self.last,
            "sha256": self.digest.hexdigest(),
            "chain_heads": chain_heads,
            **(proof or {}),
            "complete": True,
        }


def signed_trailer(trailer: dict[str, Any]) -> dict[str, Any]:
    """The trailer with the portal's signature over it (`checkpoints.sign_trailer`): the rows'
    digest and counts in it then cannot be recomputed by whoever edits the file."""
    key = checkpoints.signing_key()
    keys = {**trailer.get("public_keys", {}), key.key_id: key.public.hex()}
    body = {**trailer, "public_keys": keys}
    return {**body, "trailer_signature": checkpoints.sign_trailer(body, key)}


def trailer_line(fmt: str, trailer: dict[str, Any]) -> bytes:
    """The export's last line: a JSON object, or a CSV row whose source is `trailer` and whose
    details cell holds that object."""
    text = json.dumps({"trailer": trailer}, separators=(",", ":"))
    if fmt == "jsonl":
        return (text + "\n").encode()
    cells = ["" for _ in COLUMNS]
    cells[0] = '"trailer"'
    cells[COLUMNS.index("details")] = '"' + text.replace('"', '""') + '"'
    return (",".join(cells) + "\n").encode()


class ExportFailed(Exception):
    """The export stopped before its trailer (the database went away, a statement timed out)."""

    def __init__(self, rows_sent: int, cause: BaseException) -> None:
        super().__init__(f"audit export failed after {rows_sent} rows: {type(cause).__name__}")
        self.rows_sent = rows_sent
        self.cause = cause


def record_failure(export_event: AccessEvent, failure: ExportFailed) -> None:
    """Put on record that an export stopped half-way, as its own entry next to the export's
    (audit rows are never changed), by the export's actor. The connection the export ran on may
    be gone (its backend terminated): a fresh one is opened, in the export's scope."""
    if connection.connection is not None and not connection.is_usable():
        connection.close()
    practice_id = export_event.practice_id
    scope = (
        tenant_context(practice_id)
        if practice_id is not None
        else cross_tenant("audit export failure: recorded")
    )
    with (
        audit_context(
            request_id=export_event.request_id,
            actor_user_id=export_event.actor_user_id,
            actor_label=export_event.actor_label,
            ip=export_event.ip,
            user_agent=export_event.user_agent,
            impersonation_session_id=export_event.impersonation_session_id,
        ),
        scope,
    ):
        record(
            AuditAction.AUDIT_EXPORT_FAILED,
            practice=practice_id,
            object_type="compliance.accessevent",
            object_ids=[export_event.pk],
            reason=export_event.reason,
            details={
                "export_event_id": export_event.pk,
                "format": export_event.details.get("format"),
                "rows_sent": failure.rows_sent,
                "error": type(failure.cause).__name__,  # the class only: messages may quote rows
            },
        )


def _heads_json(names: list[str]) -> dict[str, Any]:
    return {
        chain: {"seq": seq, "hash": digest.hex()}
        for chain, (seq, digest) in chain_heads(names).items()
    }


VERIFIER = "scripts/verify_audit_export.py"
VERIFY_HOW = (
    f"python3 {VERIFIER} <the export> [--public-key <hex key from the compliance page>]: "
    "stand-alone (Python 3.11+ and the `cryptography` package, no database), it checks the rows "
    "against the trailer, recomputes every sealed entry's hash and its chain links, and checks "
    "the chains' heads and counts against the signed checkpoints the trailer carries; it "
    "reports the first bad entry"
)


def signed_proof(heads: dict[str, Any]) -> dict[str, Any]:
    """What lets an outsider check an export: for each chain's head the signed checkpoint that
    names it, and every public key that ever signed (read in the export's snapshot)."""
    covering = checkpoints.covering({chain: int(head["seq"]) for chain, head in heads.items()})
    return {
        "checkpoints": [
            {"body": c["body"], "signature": c["signature"], "key_id": c["key_id"]}
            for c in covering
        ],
        "public_keys": checkpoints.public_keys(),
        "verify": VERIFY_HOW,
    }


def chain_names(filters: AuditFilters) -> list[str]:
    """The chains an export under these filters draws from."""
    if filters.practice_id is not None:
        return [chain_name(filters.practice_id)]
    return [c for c in all_chains() if filters.include_global or c != chain_name(None)]


def stream(
    filters: AuditFilters, fmt: str, manifest_fields: dict[str, Any] | None = None
) -> Iterator[bytes]:
    """CSV or JSON Lines made from COPY's text rows as they come (see `jsonl_from_copy_text`,
    `csv_from_copy_text`), in blocks of about CHUNK bytes (unsorted), ending with the trailer.

    Run it (iterate it) inside the tenant context or cross-tenant scope that may read the rows;
    it opens its own REPEATABLE READ transaction so rows and chain heads agree. With
    `manifest_fields` (exported_by, request_id), JSON Lines starts with {"manifest": ...} read in
    that same snapshot. CSV starts with its header row. A failure on the way raises
    `ExportFailed` (no trailer was sent: the file is visibly incomplete).
    """
    sql, params = projection(filters)
    chains = chain_names(filters)
    if narrowed(filters):
        stubs, stub_params = omitted_stubs(filters, chains)
        sql, params = f"{sql} UNION ALL {stubs}", [*params, *stub_params]
    # No ORDER BY: a sort would hold the first byte back until every row is read. Rows come
    # table by table in storage order; each carries occurred_at and its chain/seq to sort by.
    ordered = f"SELECT * FROM ({sql}) AS audit"  # noqa: S608 - fixed SQL, values bound
    if fmt == "csv":
        copy, convert = f"COPY ({ordered}) TO STDOUT", csv_from_copy_text
    elif fmt == "jsonl":  # text format: see jsonl_from_copy_text
        copy = f"COPY (SELECT {_jsonl_select()} FROM ({ordered}) AS audit) TO STDOUT"  # noqa: S608
        convert = jsonl_from_copy_text
    else:
        raise ValueError(f"unknown export format {fmt!r}")
    tally = Tally(counts_omitted=narrowed(filters))
    try:
        outermost = not connection.in_atomic_block
        with transaction.atomic(), connection.cursor() as cur:
            if outermost:  # one snapshot for the manifest's heads, the rows and the trailer
                cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cur.execute("SET LOCAL timezone = 'UTC'")
            # One backend reads in storage order: a parallel plan (which a costlier select list
            # can tip the planner into) would interleave its workers' rows and hold the first
            # byte back behind a parallel hash build; the exporter keeps the other core busy.
            cur.execute("SET LOCAL max_parallel_workers_per_gather = 0")
            heads = _heads_json(chains)
            proof = {**signed_proof(heads), "filters": filters.describe()}
            if manifest_fields is not None and fmt == "jsonl":
                header = manifest(filters, fmt, **manifest_fields)
                yield (json.dumps({"manifest": header}) + "\n").encode()
            elif fmt == "csv":
                yield CSV_HEADER
            # The driver's own cursor: Django's debug wrapper (DEBUG on) has no COPY.
            with cur.cursor.copy(copy, params) as out:
                # COPY sends one message per row: pass them on in blocks of about CHUNK bytes
                # (a million tiny writes would cost the web server more than the query).
                block = bytearray()
                for row in out:
                    block += row
                    if len(block) >= CHUNK:
                        tally.add(bytes(block))
                        yield convert(bytes(block))
                        block.clear()
                if block:
                    tally.add(bytes(block))
                    yield convert(bytes(block))
        yield trailer_line(fmt, signed_trailer(tally.trailer(heads, proof)))
    except (DatabaseError, psycopg.Error) as exc:
        raise ExportFailed(tally.rows, exc) from exc


# --- checking an export file offline ------------------------------------------------------------


@dataclass(frozen=True)
class FileReport:
    """What `verify_file` found: `problem` is empty when the file is whole and unaltered."""

    path: str
    fmt: str
    rows: int
    problem: str
    trailer: dict[str, Any] | None

    @property
    def ok(self) -> bool:
        return not self.problem


@functools.cache
def offline_verifier() -> ModuleType:
    """The stand-alone verifier outsiders run (`VERIFIER`), loaded from its file: the portal
    checks an export with the very code an auditor does (it imports nothing of the portal)."""
    spec = importlib.util.spec_from_file_location(
        "verify_audit_export", Path(settings.BASE_DIR) / VERIFIER
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def verify_file(path: Path) -> FileReport:
    """Check an export file offline with the stand-alone verifier (`offline_verifier`: the rows
    against the trailer, every sealed row's hash and chain links, the chains' heads against the
    signed checkpoints the trailer carries), and the manifest's heads against the trailer's (the
    JSON Lines manifest line, or FILE.manifest.json beside it, whose SHA-256 of the file too)."""
    verifier = offline_verifier()
    with path.open("rb") as fh:
        start = fh.read(len(CSV_HEADER))
    fmt = "csv" if start == CSV_HEADER else "jsonl"
    rows: list[list[str | None]] = []
    trailer: dict[str, Any] | None = None
    try:
        rows, trailer, manifest_line = verifier.read(path)
        verifier.check(rows, trailer, manifest_line, set())
    except verifier.Bad as exc:
        return FileReport(str(path), fmt, len(rows), str(exc), trailer)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        return FileReport(str(path), fmt, len(rows), f"unreadable: {type(exc).__name__}", trailer)

    def report(problem: str) -> FileReport:
        return FileReport(str(path), fmt, len(rows), problem, trailer)

    heads = trailer.get("chain_heads") or {}
    manifest_heads = manifest_line.get("chain_heads") if manifest_line is not None else None
    beside = Path(f"{path}.manifest.json")
    if manifest_heads is None and beside.exists():
        try:
            data = json.loads(beside.read_text())
        except ValueError:
            return report(f"{beside.name} is unreadable")
        manifest_heads = data.get("chain_heads")
        with path.open("rb") as fh:
            whole = hashlib.file_digest(fh, "sha256").hexdigest()
        if "sha256" in data and data["sha256"] != whole:
            return report(f"the file's SHA-256 is not the one {beside.name} recorded")
    if manifest_heads is not None and manifest_heads != heads:
        return report("the manifest's chain heads differ from the trailer's")
    return report("")
