"""Browsing and exporting the audit trail: one projection of access events and change entries.

Exports stream with PostgreSQL's COPY (constant memory, first byte at once) as CSV or JSON Lines,
inside one REPEATABLE READ snapshot with the chain heads the manifest carries, so a verifier can
anchor what it received. Row-level security applies throughout: a practice's compliance officer
gets that practice's rows (tenant context), vendor compliance any practice (cross-tenant).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from compliance.audit import all_chains, chain_heads, chain_name
from compliance.models import AuditAction
from compliance.support_policy import SupportForbidden, refused_in_support_session

CHUNK = 256 * 1024  # bytes per streamed block: constant memory, few writes

COLUMNS = (
    "source",
    "id",
    "occurred_at",
    "practice_id",
    "action",
    "actor_user_id",
    "actor_label",
    "api_client_id",
    "impersonation_session_id",
    "object_type",
    "object_ids",
    "request_id",
    "ip",
    "user_agent",
    "reason",
    "details",
    "chain",
    "seq",
    "hash",
)

_ACCESS = """
    SELECT 'access'::text AS source, e.id, e.occurred_at, e.practice_id, e.action::text AS action,
           e.actor_user_id, e.actor_label::text AS actor_label, e.api_client_id::text,
           e.impersonation_session_id, e.object_type::text AS object_type,
           array_to_string(e.object_ids, ' ') AS object_ids, e.request_id::text, host(e.ip) AS ip,
           e.user_agent::text, e.reason, e.details::text AS details,
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
           s.chain::text, s.seq, encode(s.hash, 'hex') AS hash
    FROM compliance_changeentry c
    JOIN django_content_type ct ON ct.id = c.content_type_id
    LEFT JOIN compliance_auditseal s
           ON s.entry_table = 'compliance_changeentry' AND s.entry_id = c.id
"""


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
    if filters.actor:
        actor_id = f"{alias}.actor_user_id" if kind == "access" else f"{alias}.actor_id"
        label = f"{alias}.actor_label" if kind == "access" else f"{alias}.actor_email"
        if filters.actor.isdigit():
            clauses.append(f"{actor_id} = %s")
            params.append(int(filters.actor))
        else:
            clauses.append(f"({label} = %s OR {alias}.api_client_id = %s)")
            params.extend([filters.actor, filters.actor])
    return " AND ".join(clauses) or "TRUE", params


def projection(filters: AuditFilters) -> tuple[str, list[Any]]:
    """One SELECT over both audit tables with the filters applied (no ordering)."""
    parts, params = [], []
    action, object_type = filters.action, filters.object_type
    want_access = not action or not action.startswith("change.")
    want_change = not action or action.startswith("change.") or action == "change"
    if want_access:
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
        parts.append(f"{_ACCESS} WHERE {where}")
        params += p
    if want_change:
        where, p = _where(filters, "c", "change")
        verbs = {"change.create": 0, "change.update": 1, "change.delete": 2}
        if action in verbs:
            where += " AND c.action = %s"
            p.append(verbs[action])
        if object_type:
            where += " AND ct.app_label || '.' || ct.model = %s"
            p.append(object_type.lower())
        parts.append(f"{_CHANGE} WHERE {where}")
        params += p
    if not parts:  # pragma: no cover - both branches cannot be excluded
        return f"{_ACCESS} WHERE FALSE", []
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
    if filters.practice_id is not None:
        names = [chain_name(filters.practice_id)]
    else:
        names = [c for c in all_chains() if filters.include_global or c != chain_name(None)]
    return {
        "format": fmt,
        "columns": list(COLUMNS),
        "generated_at": timezone.now().isoformat(),
        "exported_by": exported_by,
        "request_id": request_id,
        "filters": filters.describe(),
        "chain_heads": {
            chain: {"seq": seq, "hash": digest.hex()}
            for chain, (seq, digest) in chain_heads(names).items()
        },
        "verify": "manage.py verify_audit --manifest <this file>: every chain must still hold "
        "these heads; each row's chain/seq/hash lies on its verified chain",
    }


# --- JSON Lines -------------------------------------------------------------------------------
# Each line is exactly what PostgreSQL's row_to_json() makes of a projection row, but PostgreSQL
# does not build it: row_to_json spends 8-10 µs a row looking up every column's type and
# escaping char by char, most of the export's time on one core. COPY's text format is as cheap as
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


def stream(
    filters: AuditFilters, fmt: str, manifest_fields: dict[str, Any] | None = None
) -> Iterator[bytes]:
    """CSV straight from COPY, or JSON Lines made from COPY's text rows as they come (see
    `jsonl_from_copy_text`), in blocks of about CHUNK bytes (unsorted).

    Run it (iterate it) inside the tenant context or cross-tenant scope that may read the rows;
    it opens its own REPEATABLE READ transaction so rows and chain heads agree. With
    `manifest_fields` (exported_by, request_id), JSON Lines starts with {"manifest": ...} read in
    that same snapshot.
    """
    sql, params = projection(filters)
    # No ORDER BY: a sort would hold the first byte back until every row is read. Rows come
    # table by table in storage order; each carries occurred_at and its chain/seq to sort by.
    ordered = f"SELECT * FROM ({sql}) AS audit"  # noqa: S608 - fixed SQL, values bound
    if fmt == "csv":
        copy = f"COPY ({ordered}) TO STDOUT WITH (FORMAT csv, HEADER true)"
    elif fmt == "jsonl":  # text format: see jsonl_from_copy_text
        copy = f"COPY (SELECT {_jsonl_select()} FROM ({ordered}) AS audit) TO STDOUT"  # noqa: S608
    else:
        raise ValueError(f"unknown export format {fmt!r}")
    outermost = not connection.in_atomic_block
    with transaction.atomic(), connection.cursor() as cur:
        if outermost:  # one snapshot for the manifest's heads and the rows
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cur.execute("SET LOCAL timezone = 'UTC'")
        # One backend reads in storage order: a parallel plan (which a costlier select list can
        # tip the planner into) would interleave its workers' rows and hold the first byte back
        # behind a parallel hash build, and the exporter already keeps the other core busy.
        cur.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        if manifest_fields is not None and fmt == "jsonl":
            header = manifest(filters, fmt, **manifest_fields)
            yield (json.dumps({"manifest": header}) + "\n").encode()
        with cur.copy(copy, params) as out:
            # COPY sends one message per row: pass them on in blocks of about CHUNK bytes
            # (a million tiny writes would cost the web server more than the query).
            block = bytearray()
            for row in out:
                block += row
                if len(block) >= CHUNK:
                    yield jsonl_from_copy_text(bytes(block)) if fmt == "jsonl" else bytes(block)
                    block.clear()
            if block:
                yield jsonl_from_copy_text(bytes(block)) if fmt == "jsonl" else bytes(block)
