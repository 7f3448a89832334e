"""Browsing and exporting the audit trail: one projection of access events and change entries.

Exports stream with PostgreSQL's COPY (constant memory, first byte at once) as CSV or JSON Lines,
inside one REPEATABLE READ snapshot with the chain heads the manifest carries, so a verifier can
anchor what it received. Row-level security applies throughout: a practice's compliance officer
gets that practice's rows (tenant context), vendor compliance any practice (cross-tenant).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from compliance.audit import all_chains, chain_heads, chain_name

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


def page(filters: AuditFilters, before: str = "", size: int = 50) -> tuple[list[Row], str]:
    """Newest first, `size` rows older than the `before` cursor; returns (rows, next cursor or "").

    Keyset paging, no counts: constant cost however deep the log is.
    """
    sql, params = projection(filters)
    keyset = ""
    if before:
        try:
            stamp, source, entry_id = before.split("|")
            cursor = [datetime.fromisoformat(stamp), source, int(entry_id)]
        except ValueError:
            cursor = []  # a mangled cursor starts from the newest entries
        if cursor:
            keyset = "WHERE (occurred_at, source, id) < (%s, %s, %s)"
            params = [*params, *cursor]
    query = (
        f"SELECT * FROM ({sql}) AS audit {keyset} "  # noqa: S608 - fixed SQL, values bound
        "ORDER BY occurred_at DESC, source DESC, id DESC LIMIT %s"
    )
    with connection.cursor() as cur:
        cur.execute(query, [*params, size + 1])
        rows = [Row(*r) for r in cur.fetchall()]
    more = len(rows) > size
    rows = rows[:size]
    return rows, (rows[-1].cursor if more and rows else "")


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


def stream(
    filters: AuditFilters, fmt: str, manifest_fields: dict[str, Any] | None = None
) -> Iterator[bytes]:
    """CSV or JSON Lines, straight from COPY, in chunks as PostgreSQL sends them (unsorted).

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
    elif fmt == "jsonl":
        # CSV with a quote and delimiter no JSON text contains: the JSON passes through verbatim
        # (text format would double every backslash).
        copy = (
            f"COPY (SELECT row_to_json(audit)::text FROM ({ordered}) AS audit) TO STDOUT "  # noqa: S608
            "WITH (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')"
        )
    else:
        raise ValueError(f"unknown export format {fmt!r}")
    outermost = not connection.in_atomic_block
    with transaction.atomic(), connection.cursor() as cur:
        if outermost:  # one snapshot for the manifest's heads and the rows
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cur.execute("SET LOCAL timezone = 'UTC'")
        if manifest_fields is not None and fmt == "jsonl":
            header = manifest(filters, fmt, **manifest_fields)
            yield (json.dumps({"manifest": header}) + "\n").encode()
        with cur.copy(copy, params) as out:
            for chunk in out:
                yield bytes(chunk)
