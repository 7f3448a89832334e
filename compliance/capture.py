"""Changes to audited tables that the ORM's signals never see, captured by PostgreSQL.

django-auditlog writes a change entry from `save()` and `delete()` on a model instance; it sees
nothing of `QuerySet.update()`, `bulk_create`, `bulk_update`, a queryset's `delete()`, raw SQL
or a data migration (historical models have no receivers). Every audited model's table
therefore carries a deferred row trigger, `compliance_capture` (function in migration 0010,
installed for each registered model by `install_triggers` after every migrate), that at COMMIT
writes a change entry into the same trail for each row the transaction inserted, updated or
deleted.

No double entries: an entry auditlog writes marks its (content type, pk, action) in a
transaction-local setting (a trigger on the entries), and the capture trigger consumes a mark
instead of writing a second entry. That needs the ORM's write and its entry in ONE transaction,
so an audited model's `save()` outside a transaction runs in one (`atomic_save`); `delete()`
already does. auditlog keeps writing the entries it can (object names, values as Python shows
them, its history views); the database writes the rest, with values as PostgreSQL renders them
and `additional_data.captured_by = "database"`.

Who acted: the capture reads the transaction-local settings `compliance.actor_id`,
`compliance.actor_label`, `compliance.request_id`, `compliance.ip`, `compliance.api_client_id`,
`compliance.impersonation_session_id` and `compliance.via`. They are set from the audit context
(`compliance.context`: the request's, or a task's carried from the request that queued it) by
`set_config(..., true)` appended to the statement that writes an audited table, in the same
round trip (Django's psycopg cursor binds client-side and sends one simple query; the write's
result stays the cursor's current one). No statement is added, and the values are in the
transaction when its deferred triggers read them at COMMIT, autocommit included. A change
made with no audit context (a shell, psql, a migration) is recorded with no actor, its
database role and application name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import wraps
from typing import Any

import psycopg
from django.db import connection as default_connection
from django.db import models, router, transaction

from compliance import context as audit_ctx

TRIGGER = "compliance_capture"

# Table -> its model, for every model registered with auditlog (filled by `register`).
_AUDITED: dict[str, type[models.Model]] = {}
_table_pattern: re.Pattern[str] | None = None

SETTINGS = (
    ("compliance.actor_id", "actor_user_id"),
    ("compliance.actor_label", "actor_label"),
    ("compliance.request_id", "request_id"),
    ("compliance.ip", "ip"),
    ("compliance.api_client_id", "api_client_id"),
    ("compliance.impersonation_session_id", "impersonation_session_id"),
    ("compliance.via", "via"),
)


def register(model: type[models.Model]) -> None:
    """Capture this (auditlog-registered) model's table, and save it atomically."""
    global _table_pattern
    _AUDITED[model._meta.db_table] = model
    _table_pattern = None
    save_base = model.save_base
    if not getattr(save_base, "audit_atomic", False):
        model.save_base = atomic_save(save_base)  # type: ignore[method-assign]


def audited_tables() -> dict[str, type[models.Model]]:
    return dict(_AUDITED)


def atomic_save(save_base: Callable[..., Any]) -> Callable[..., Any]:
    """`save_base` in a transaction when there is none: auditlog's entry and the row's write
    then commit together, and the capture trigger (at that commit) finds the entry's mark."""

    @wraps(save_base)
    def wrapper(self: models.Model, *args: Any, **kwargs: Any) -> Any:
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        from django.db import connections

        if connections[using].in_atomic_block:
            return save_base(self, *args, **kwargs)
        with transaction.atomic(using=using, savepoint=False):
            return save_base(self, *args, **kwargs)

    wrapper.audit_atomic = True  # type: ignore[attr-defined]
    return wrapper


# --- the trigger per table -------------------------------------------------------------------


def trigger_config(model: type[models.Model]) -> dict[str, Any]:
    """What `compliance_capture_change()` needs of a model: its content type, pk column, the
    audited columns with auditlog's field names (its include/exclude rules, binary columns left
    out as `register_model` does), the encrypted ones to mask, and the tenant column."""
    from auditlog.registry import auditlog

    from compliance.crypto import EncryptedField

    rules = auditlog.get_model_fields(model)
    fields: dict[str, str] = {}
    masked: list[str] = []
    for f in model._meta.concrete_fields:
        if f.primary_key:
            continue
        if rules["include_fields"] and f.name not in rules["include_fields"]:
            continue
        if f.name in rules["exclude_fields"]:
            continue
        if isinstance(f, models.BinaryField) and not isinstance(f, EncryptedField):
            continue
        fields[f.column] = f.name
        if isinstance(f, EncryptedField) or f.name in (rules.get("mask_fields") or ()):
            masked.append(f.column)
    pk = model._meta.pk
    assert pk is not None
    column_names = {f.column for f in model._meta.concrete_fields}
    if model._meta.label == "portal.Practice":
        practice: str | None = pk.column
    else:
        practice = "practice_id" if "practice_id" in column_names else None
    return {
        "ct": [model._meta.app_label, model._meta.model_name],
        "label": str(model._meta.verbose_name),
        "pk": pk.column,
        "fields": fields,
        "masked": sorted(masked),
        "practice": practice,
    }


def install_triggers(using: str = "default") -> list[str]:
    """(Re)create the capture trigger on every audited table whose trigger is missing or
    configured otherwise; returns the tables changed. Idempotent (run after every migrate)."""
    from django.db import connections

    conn = connections[using]
    changed = []
    with conn.cursor() as cur:
        cur.execute("SELECT to_regprocedure('compliance_capture_change()') IS NOT NULL")
        if not cur.fetchone()[0]:
            return []  # migrated backwards past 0010
        cur.execute(
            "SELECT c.relname, encode(t.tgargs, 'escape') FROM pg_trigger t "
            "JOIN pg_class c ON c.oid = t.tgrelid WHERE t.tgname = %s",
            [TRIGGER],
        )
        existing = {name: args for name, args in cur.fetchall()}
        cur.execute(
            "SELECT relname FROM pg_class WHERE relkind IN ('r', 'p') AND relname = ANY(%s)",
            [list(_AUDITED)],
        )
        present = {row[0] for row in cur.fetchall()}
        for table, model in sorted(_AUDITED.items()):
            if table not in present:
                continue
            config = json.dumps(trigger_config(model), sort_keys=True, separators=(",", ":"))
            # tgargs holds each argument followed by a NUL byte (shown escaped as \000).
            if existing.get(table, "").replace("\\000", "") == config:
                continue
            name = conn.ops.quote_name(table)
            literal = "'" + config.replace("'", "''") + "'"
            cur.execute(f"DROP TRIGGER IF EXISTS {TRIGGER} ON {name}")
            cur.execute(
                f"CREATE CONSTRAINT TRIGGER {TRIGGER} AFTER INSERT OR UPDATE OR DELETE ON {name} "
                "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
                f"EXECUTE FUNCTION compliance_capture_change({literal})"
            )
            changed.append(table)
    return changed


def install_after_migrate(using: str = "default", **kwargs: Any) -> None:
    """post_migrate receiver (compliance's app config)."""
    install_triggers(using)


# --- who acted, into the writing statement's transaction --------------------------------------

_WRITE = re.compile(r"\s*(?:INSERT|UPDATE|DELETE|MERGE|WITH|COPY)\b", re.IGNORECASE)
# Schema changes PostgreSQL refuses on a table with deferred trigger events still pending ("cannot
# ALTER TABLE ... because it has pending trigger events"): a migration that changes audited rows
# and then alters their table, in one transaction. The pending events (the capture's, and the
# deferred foreign-key checks of the rows it wrote) are fired first, attributed as they would
# be at COMMIT; then every deferrable constraint is deferred again, as all of ours are created
# (INITIALLY DEFERRED), so the rest of the transaction behaves as before.
_DDL = re.compile(
    r"\s*(?:ALTER\s+TABLE|ALTER\s+INDEX|CREATE\s+(?:UNIQUE\s+)?INDEX|DROP\s+(?:TABLE|INDEX))\b",
    re.IGNORECASE,
)
FIRE_PENDING = "SET CONSTRAINTS ALL IMMEDIATE; SET CONSTRAINTS ALL DEFERRED"


def _audited_table_in(sql: str) -> bool:
    global _table_pattern
    if _table_pattern is None:
        names = sorted(_AUDITED, key=len, reverse=True)
        _table_pattern = re.compile(
            r"\b(?:" + "|".join(re.escape(n) for n in names) + r")\b" if names else r"(?!)"
        )
    return _table_pattern.search(sql) is not None


def _literal(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text.replace("'", "''") + "'"


def context_sql(ctx: audit_ctx.AuditContext) -> str:
    """`SELECT set_config(...)` of the audit context, transaction-local, as literals."""
    calls = ", ".join(
        f"set_config('{name}', {_literal(getattr(ctx, attr))}, true)" for name, attr in SETTINGS
    )
    return f"SELECT {calls}"


def _has_context(ctx: audit_ctx.AuditContext) -> bool:
    return bool(
        ctx.request_id
        or ctx.actor_user_id is not None
        or ctx.actor_label
        or ctx.api_client_id
        or ctx.impersonation_session_id is not None
        or ctx.via
    )


def with_context(
    execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]
) -> Any:
    """Execute wrapper (on every connection): a statement that writes an audited table carries
    the audit context into its transaction (see the module's docstring); a schema change in a
    transaction first fires the capture's pending events (see `_DDL`)."""
    if (
        isinstance(sql, str)
        and not many
        and _DDL.match(sql)
        and getattr(context.get("connection"), "in_atomic_block", False)
    ):
        execute(FIRE_PENDING, None, False, context)
    if (
        many
        or not _AUDITED
        or not isinstance(sql, str)
        or not _WRITE.match(sql)
        or not _audited_table_in(sql)
    ):
        return execute(sql, params, many, context)
    ctx = audit_ctx.current()
    cursor = getattr(context.get("cursor"), "cursor", None)
    if not _has_context(ctx) or not isinstance(cursor, psycopg.ClientCursor):
        return execute(sql, params, many, context)
    suffix = context_sql(ctx)
    if params is not None:
        suffix = suffix.replace("%", "%%")
    return execute(f"{sql.rstrip().rstrip(';')}; {suffix}", params, many, context)


def add_wrapper(sender: Any = None, connection: Any = None, **kwargs: Any) -> None:
    """connection_created receiver: every connection carries the context into its writes."""
    conn = connection if connection is not None else default_connection
    if conn.vendor == "postgresql" and with_context not in conn.execute_wrappers:
        conn.execute_wrappers.append(with_context)
