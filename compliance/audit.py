"""The audit trail: access events, change entries, their hash chains and the verifier.

Writing (on the request's path: one INSERT per row, see "change entries without auditlog's
extra SELECT" below; each INSERT is prepared on the server once per session,
`core.statements.execute_prepared`):
- `record(action, practice=..., object_type=..., object_ids=..., reason=...)` for what auditlog
  cannot see (PHI reads, exports, sign-ins, 2FA, impersonation, API tokens). Actor, request id,
  IP, user agent, API client and impersonation session come from `compliance.context`. A list
  page records ONE event with the ids it shows.
- Change entries: django-auditlog (AUDITLOG_LOGENTRY_MODEL = compliance.ChangeEntry) on the
  models passed to `register_model` (configuration models are registered at start-up).

Chaining: the request path only appends. An entry's INSERT queues its canonical payload
(`compliance_sealqueue`, migration 0011): no chain lock, no head read, no hash. After commit one
sealer per database (`compliance.sealer`: a LISTEN-woken loop and a beat task, one at a time
under an advisory lock) appends each queued entry to its chain in queue order and records a
signed checkpoint (`compliance.checkpoints`). Per practice one chain (`practice:<id>`), plus
`global`. Concurrent writers cannot fork a chain: only the lock holder seals, and UNIQUE
(chain, seq) / (chain, prev_hash) would refuse a fork anyway. Business transactions take no
audit lock at all, so the audit trail adds nothing to their lock order. `seal_now()` seals
synchronously (tests, the verifier). Changes the ORM's signals miss are captured by the
database at commit (`compliance.capture`) into the same trail.

Append-only: statement-level triggers reject UPDATE, DELETE and TRUNCATE of audit rows (sealed
or still queued) and seals (test databases alone may TRUNCATE, for Django's flush between
tests). Nothing in the app deletes them (retention is at least six years). The triggers bind
every role; a table's owner could disable them, so the application's role owns none of the trail
(`compliance.protection`, `manage.py protect_audit_tables`: it may only read and append, and
UPDATE, DELETE and TRUNCATE are refused by privilege before the triggers). A superuser still
can, which is what the hash chain and `manage.py verify_audit` detect.

Anchoring: a chain verifies from its genesis, but someone able to rewrite the database could cut
its newest entries off (or rewrite the whole chain). Exports carry the chain heads in their
manifest; keep manifests outside the database and give them to `verify_audit --manifest` (or
`--anchor chain=seq:hash`): an anchored head that is gone or different is reported.

Reading: row-level security shows a practice's rows inside its tenant context, everything only
under `cross_tenant(reason)` (vendor compliance); anyone may append.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from django.db import connection, models, transaction
from django.db.models.signals import post_save, pre_save
from django.utils import timezone

from compliance import context as audit_ctx
from compliance import support_policy
from compliance.models import (
    INSERT_GUARD,
    AccessEvent,
    AuditAction,
    ChangeEntry,
    InsertGuard,
)
from core.statements import execute_prepared, insert_sql, session_execute

if TYPE_CHECKING:
    from accounts.models import Practice, User

SEAL_VERSION = "v1"
GENESIS = bytes(32)
GLOBAL_CHAIN = "global"

# The columns each seal version covers, per table: the migration passes the same lists to the
# sealing trigger, and a test checks they are every column of the table. Adding a column to an
# audit table means a new version here and in a migration that re-creates the trigger.
SEALED_COLUMNS: dict[str, dict[str, tuple[str, ...]]] = {
    "v1": {
        "compliance_accessevent": (
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
        ),
        "compliance_changeentry": (
            "id",
            "content_type_id",
            "object_pk",
            "object_id",
            "object_repr",
            "serialized_data",
            "action",
            "changes_text",
            "changes",
            "actor_id",
            "cid",
            "remote_addr",
            "remote_port",
            "timestamp",
            "additional_data",
            "actor_email",
            "practice_id",
            "api_client_id",
            "impersonation_session_id",
        ),
    }
}
ENTRY_MODELS: tuple[type[AccessEvent] | type[ChangeEntry], ...] = (AccessEvent, ChangeEntry)


def chain_name(practice_id: int | None) -> str:
    return GLOBAL_CHAIN if practice_id is None else f"practice:{practice_id}"


# --- writing ---------------------------------------------------------------------------------

ID_BLOCK = 32
_sequences: dict[tuple[str, ...], str] = {}
_id_pool: dict[tuple[str, ...], list[int]] = {}
_id_lock = threading.Lock()


def allocate_id(model: type[models.Model]) -> int:
    """An id drawn from the table's sequence before inserting, so the insert needs no RETURNING
    (see AppendOnlyModel). Drawn in blocks per process: one round trip per ID_BLOCK rows. Ids
    are unique, not gap-free nor time-ordered across processes; chains order by seq."""
    table = model._meta.db_table
    db = connection.settings_dict
    # Pooled ids belong to one database's sequence: a process that moves to another database
    # (a benchmark's throwaway one, a test database) must not bring them along.
    key = (str(db["HOST"]), str(db["PORT"]), str(db["NAME"]), table)
    with _id_lock:
        pool = _id_pool.setdefault(key, [])
        if pool:
            return pool.pop()
    # Drawn as plumbing of the session, out of the query log: one request in ID_BLOCK would
    # otherwise show one query more than the next, depending on where earlier ones left off.
    if key not in _sequences:
        [(_sequences[key],)] = session_execute(
            connection, "SELECT pg_get_serial_sequence(%s, 'id')", [table]
        )
    rows = session_execute(
        connection,
        "SELECT nextval(%s::regclass) FROM generate_series(1, %s)",
        [_sequences[key], ID_BLOCK],
    )
    # Descending, so the pool pops them in ascending order after this call takes the lowest:
    # within a process, ids follow the order rows were written.
    ids = sorted((int(row[0]) for row in rows), reverse=True)
    first = ids.pop()
    with _id_lock:
        _id_pool[key].extend(ids)
    return first


def stamp_context(entry: models.Model) -> None:
    """Fill what the current audit context knows into a row about to be written."""
    ctx = audit_ctx.current()
    if isinstance(entry, AccessEvent):
        _fill_access_context(vars(entry), ctx)  # a model keeps its field values by attname
        return
    if isinstance(entry, ChangeEntry):
        entry.cid = entry.cid or ctx.request_id or None
        if entry.actor_id is None and ctx.actor_user_id is not None:
            entry.actor_id = ctx.actor_user_id
            entry.actor_email = entry.actor_email or ctx.actor_label or None
        entry.remote_addr = entry.remote_addr or ctx.ip
    entry.api_client_id = entry.api_client_id or ctx.api_client_id  # type: ignore[attr-defined]
    if entry.impersonation_session_id is None:  # type: ignore[attr-defined]
        entry.impersonation_session_id = ctx.impersonation_session_id  # type: ignore[attr-defined]


def _fill_access_context(row: dict[str, Any], ctx: audit_ctx.AuditContext) -> None:
    """What the current audit context knows, into an access event's values (by attname): for
    `record()`'s INSERT and for an `AccessEvent` saved through the model alike."""
    if row["actor_user_id"] is None and not row["actor_label"]:
        row["actor_user_id"], row["actor_label"] = ctx.actor_user_id, ctx.actor_label
    row["request_id"] = row["request_id"] or ctx.request_id
    row["ip"] = row["ip"] or ctx.ip
    row["user_agent"] = row["user_agent"] or ctx.user_agent
    row["api_client_id"] = row["api_client_id"] or ctx.api_client_id
    if row["impersonation_session_id"] is None:
        row["impersonation_session_id"] = ctx.impersonation_session_id


def record(
    action: AuditAction,
    *,
    practice: Practice | int | None = None,
    object_type: str = "",
    object_ids: Iterable[object] = (),
    reason: str = "",
    details: Mapping[str, Any] | None = None,
    actor: User | None = None,
    actor_label: str | None = None,
    api_client_id: str = "",
    occurred_at: datetime | None = None,
) -> AccessEvent:
    """Append an access event; it is sealed into its chain when the transaction commits.

    `practice` defaults to the current request's practice (tenant pages); without one the event
    goes to the global chain. `actor` defaults to the signed-in user of the request (a task's:
    the one whose request queued it). Call it in the transaction that does the work, so the
    event and the work commit together.

    One INSERT, with no model instance on the way (this is on every PHI read's path):
    the same row, and the same context stamping, as `AccessEvent(...).save()` writes.

    Every action is an `AuditAction`: the audit browser labels and filters by those, so an
    action without one is refused here rather than shown raw and unfilterable.
    """
    if action not in _ACTIONS:
        raise ValueError(f"unknown audit action {action!r}: add it to AuditAction")
    if action in _READS:
        support_policy.require_reason(reason)
    actor_user_id: int | None = None
    label = ""
    if actor is not None:
        actor_user_id = actor.pk
        label = actor.get_username()
    if actor_label is not None:
        label = actor_label
    values = {
        "id": allocate_id(AccessEvent),
        "occurred_at": occurred_at if occurred_at is not None else timezone.now(),
        "practice_id": _practice_id(practice)
        if practice is not None
        else audit_ctx.context_practice_id(),
        "action": str(action),
        "actor_user_id": actor_user_id,
        "actor_label": label,
        "api_client_id": api_client_id,
        "impersonation_session_id": None,
        "object_type": object_type,
        "object_ids": [str(i) for i in object_ids],
        "request_id": "",
        "ip": None,
        "user_agent": "",
        "reason": reason,
        "details": dict(details or {}),
    }
    _fill_access_context(values, audit_ctx.current())
    sql, prep = _event_insert()
    params = [
        values[name] if convert is None else convert(values[name], connection)
        for name, convert in prep
    ]
    execute_prepared(sql, params)
    return _saved_event(values)


_ACTIONS = frozenset(AuditAction.values)
_READS = frozenset({AuditAction.PHI_READ, AuditAction.PHI_EXPORT})  # a support session says why
_EVENT_INSERT: tuple[str, list[tuple[str, Any]]] | None = None


def _event_insert() -> tuple[str, list[tuple[str, Any]]]:
    """The access-event INSERT and, per column, the field's conversion where Python values need
    one (JSON, arrays); built once from the model, like AppendOnlyModel's."""
    global _EVENT_INSERT
    if _EVENT_INSERT is None:
        fields = tuple(AccessEvent._meta.concrete_fields)
        # Strings and integers go as they are; the others as the field prepares them.
        plain = (models.BigIntegerField, models.CharField, models.TextField)
        prep = [(f.attname, None if isinstance(f, plain) else f.get_db_prep_save) for f in fields]
        _EVENT_INSERT = (insert_sql(AccessEvent, fields, connection), prep)
    return _EVENT_INSERT


def _saved_event(values: dict[str, Any]) -> AccessEvent:
    """The written row as a model instance (as `from_db` makes one: saved, append-only)."""
    names = [f.attname for f in AccessEvent._meta.concrete_fields]
    return AccessEvent.from_db(connection.alias, names, [values[name] for name in names])


def _practice_id(practice: Practice | int) -> int:
    return practice if isinstance(practice, int) else int(practice.pk)


def seal_now() -> int:
    """Seal every entry written so far, synchronously (tests, the verifier): the changes the
    database captures at commit first (in a transaction, the deferred capture triggers fire
    now), then the sealer's work, waiting for the sealer lock if another sealer holds it.
    Inside a transaction it seals that transaction's own entries too, and the lock is held to
    its end. Returns how many entries it sealed."""
    from compliance import sealer

    if connection.in_atomic_block:
        with connection.cursor() as cur:
            cur.execute("SET CONSTRAINTS compliance_capture IMMEDIATE")
            cur.execute("SET CONSTRAINTS compliance_capture DEFERRED")
    return sealer.seal_pending(wait=True)


# --- auditlog registration -------------------------------------------------------------------


def redact(value: str) -> str:
    """auditlog mask for encrypted fields: a change is recorded, its PHI never is."""
    return "[encrypted]"


def register_model(model: type[models.Model], **options: Any) -> None:
    """Track a model's changes with auditlog: encrypted fields are recorded as changed without
    their values; blind indexes and other binary columns are left out. Idempotent."""
    from auditlog.registry import auditlog

    from compliance.crypto import EncryptedField

    if auditlog.contains(model):
        return
    encrypted = [f.name for f in model._meta.concrete_fields if isinstance(f, EncryptedField)]
    binary = [
        f.name
        for f in model._meta.concrete_fields
        if isinstance(f, models.BinaryField) and not isinstance(f, EncryptedField)
    ]
    options["exclude_fields"] = [*options.get("exclude_fields", ()), *binary]
    if encrypted:
        options.setdefault("mask_fields", encrypted)
        options.setdefault("mask_callable", "compliance.audit.redact")
    auditlog.register(model, **options)
    from auditlog import receivers as auditlog_receivers

    _remember_loaded_state(model)
    post_save.connect(_remember_saved_state, sender=model, dispatch_uid="compliance.saved_state")
    uid = auditlog._dispatch_uid(pre_save, auditlog_receivers.log_update)
    if pre_save.disconnect(sender=model, dispatch_uid=uid):
        pre_save.connect(log_update, sender=model, dispatch_uid=uid)
    from compliance import capture

    capture.register(model)


# --- change entries without auditlog's extra SELECT --------------------------------------------
#
# auditlog reads the old row before every UPDATE (one more round trip, and an ORM query that
# cost more Python than the rest of the entry) to diff it against the instance. The row's state
# as it was loaded is usually still the state in the database: it is kept when the instance is
# loaded (`from_db`), the diff is computed from it with auditlog's own functions, and the change
# entry's INSERT is made on the condition that the row in the database holds exactly those
# values (compared as text, column by column), checked by PostgreSQL in that same statement:
# the same moment and the same visibility as auditlog's own read. When it does not hold (the
# row changed since it was loaded, in this transaction or by a committed one), or cannot be
# used (fields loaded deferred, a multi-table model), no row is inserted and auditlog's own
# receiver runs: it reads the row and diffs. When nothing changed from the loaded state, the
# same condition is asked as a query: if the row holds it there is nothing to record (as
# auditlog would find), otherwise auditlog's receiver runs. Either way the entry's old values
# are the values that were in the row, never a stale copy.

LOADED_STATE = "_audit_loaded_state"


def _remember_loaded_state(model: type[models.Model]) -> None:
    """Make `model.from_db` keep the loaded (field names, values) on the instance: references
    to what the query returned, no copy."""
    loader = model.from_db
    if getattr(loader, "keeps_loaded_state", False):
        return
    load = loader.__func__  # type: ignore[attr-defined]

    def from_db(cls: type[models.Model], db: str, field_names: Any, values: Any) -> Any:
        instance = load(cls, db, field_names, values)
        instance.__dict__[LOADED_STATE] = (field_names, values)
        return instance

    from_db.keeps_loaded_state = True  # type: ignore[attr-defined]
    model.from_db = classmethod(from_db)  # type: ignore[assignment,method-assign]


def _remember_saved_state(
    sender: type[models.Model],
    instance: models.Model,
    update_fields: frozenset[str] | None = None,
    raw: bool = False,
    **kwargs: Any,
) -> None:
    """After a save the row holds what was written: that becomes the loaded state, so saving
    the instance again in the same request is diffed without a read (otherwise its guard, made
    for the first state, fails and auditlog reads the row). Only a hint, like the loaded state
    itself: the change entry's INSERT still checks it against the row."""
    from compliance.crypto import EncryptedField, Sealed

    if raw or instance.get_deferred_fields():
        return  # a field not in memory (loaded deferred, or generated): nothing to assume
    written = [
        f
        for f in sender._meta.concrete_fields
        if update_fields is None or f.name in update_fields or f.attname in update_fields
    ]
    values = instance.__dict__
    if any(
        isinstance(f, EncryptedField) and not isinstance(values[f.attname], Sealed | None)
        for f in written
    ):
        return  # encrypted anew by this save: its ciphertext is not kept on the instance
    if update_fields is None:
        state = {}
    elif (loaded := values.get(LOADED_STATE)) is not None:
        state = dict(zip(*loaded, strict=True))
    else:
        return
    state.update((f.attname, values[f.attname]) for f in written)
    values[LOADED_STATE] = (list(state), list(state.values()))


@dataclass(frozen=True)
class _Checked:
    """Per model and update_fields: the fields the diff compares, and the SQL comparing them."""

    fields: tuple[models.Field, ...]
    condition: str  # appended to the change entry's INSERT ... SELECT
    probe: str  # the same condition as a query
    read: str  # the row, every column (what auditlog's own read returns)


_checked: dict[tuple[type[models.Model], frozenset[str] | None], _Checked | None] = {}


def _checked_fields(
    model: type[models.Model], update_fields: frozenset[str] | None
) -> _Checked | None:
    key = (model, update_fields)
    if key in _checked:
        return _checked[key]
    from auditlog.models import _get_manager_from_settings
    from auditlog.registry import auditlog

    checked: _Checked | None = None
    manager_filters = _get_manager_from_settings(model).get_queryset().query.where
    # auditlog reads the old row through the manager: the same rows as RLS shows, if it does
    # not filter. One table: a multi-table model's parent fields live in another.
    if not manager_filters and not model._meta.parents:
        rules = auditlog.get_model_fields(model)
        fields = [
            f
            for f in model._meta.fields
            if f.concrete
            and not f.primary_key
            and (
                update_fields is None
                or f.name in update_fields
                or (f.is_relation and f.attname in update_fields)
            )
            and (not rules["include_fields"] or f.name in rules["include_fields"])
            and f.name not in rules["exclude_fields"]
        ]
        qn = connection.ops.quote_name
        types = [cast(Any, f).cast_db_type(connection) for f in fields]
        if None in types:
            _checked[key] = None
            return None
        compare = "".join(
            f" AND {qn(f.column)}::text IS NOT DISTINCT FROM (%s::{db_type})::text"
            for f, db_type in zip(fields, types, strict=True)
        )
        pk = model._meta.pk
        assert pk is not None
        table, where = qn(model._meta.db_table), f"WHERE {qn(pk.column)} = %s"
        row = f"SELECT FROM {table} {where}{compare}"
        columns = ", ".join(qn(f.column) for f in model._meta.concrete_fields)
        checked = _Checked(
            tuple(fields),
            f" WHERE EXISTS ({row})",
            f"SELECT EXISTS ({row})",
            f"SELECT {columns} FROM {table} {where}",  # noqa: S608 - the model's identifiers
        )
    _checked[key] = checked
    return checked


def log_update(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    """auditlog's pre_save receiver for updates, without its SELECT when the loaded state of
    the row is known and still true (see above); otherwise auditlog's, reading the row."""
    from auditlog import receivers as auditlog_receivers
    from auditlog.context import auditlog_disabled
    from auditlog.models import _get_manager_from_settings
    from django.conf import settings

    if auditlog_disabled.get(False) or (
        kwargs.get("raw") and getattr(settings, "AUDITLOG_DISABLE_ON_RAW_SAVE", False)
    ):
        return
    if instance._state.adding or instance.pk is None:
        return
    update_fields = kwargs.get("update_fields")
    checked = _checked_fields(
        sender, frozenset(update_fields) if update_fields is not None else None
    )
    if checked is None or instance._state.db != connection.alias:
        auditlog_receivers.log_update(sender, instance, **kwargs)
        return
    loaded = instance.__dict__.get(LOADED_STATE)
    if loaded is not None:
        names, values = loaded
        state = dict(zip(names, values, strict=True))
        if (
            len(state) == len(sender._meta.concrete_fields)
            and state.get(sender._meta.pk.attname) == instance.pk
        ):
            guard = InsertGuard(
                ChangeEntry,
                checked.condition,
                [
                    instance.pk,
                    *(
                        f.get_db_prep_value(state[f.attname], connection, prepared=False)
                        for f in checked.fields
                    ),
                ],
            )
            token = INSERT_GUARD.set(guard)
            try:
                _log_change(
                    sender,
                    instance,
                    sender.from_db(instance._state.db, names, values),
                    update_fields,
                )
            finally:
                INSERT_GUARD.reset(token)
            if guard.inserted:
                return
            if not guard.tried and _row_holds(checked, guard.params):
                return  # nothing changed from the loaded state, which is the row's: no entry
    # auditlog's own: the row as it is now, read through the same manager (see _checked_fields)
    # by one statement written once per model, where auditlog builds an ORM query each time.
    old = next(iter(_get_manager_from_settings(sender).raw(checked.read, [instance.pk])), None)
    _log_change(sender, instance, old, update_fields)


def _log_change(
    sender: type[models.Model],
    instance: models.Model,
    old: models.Model | None,
    update_fields: Any,
) -> None:
    from auditlog.receivers import _create_log_entry
    from django.conf import settings

    _create_log_entry(
        action=ChangeEntry.Action.UPDATE,
        instance=instance,
        sender=sender,
        diff_old=old,
        diff_new=instance,
        fields_to_check=update_fields,
        use_json_for_changes=getattr(settings, "AUDITLOG_STORE_JSON_CHANGES", False),
    )


def _row_holds(checked: _Checked, params: list[Any]) -> bool:
    """Whether the row still holds its loaded state: the guard's condition, as a query (one
    fixed statement, where auditlog's read builds an ORM query)."""
    with connection.cursor() as cur:
        cur.execute(checked.probe, params)
        row = cur.fetchone()
    return bool(row and row[0])


# --- verification ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Break:
    chain: str
    seq: int
    entry_table: str
    entry_id: int | None
    problem: str

    def __str__(self) -> str:
        where = f"{self.entry_table} #{self.entry_id}" if self.entry_id is not None else "-"
        return f"chain {self.chain}: first broken link at seq {self.seq} ({where}): {self.problem}"


@dataclass(frozen=True)
class ChainReport:
    chain: str
    entries: int
    head_seq: int
    head_hash: bytes
    first_break: Break | None

    @property
    def ok(self) -> bool:
        return self.first_break is None


Anchor = tuple[int, bytes]  # (seq, hash) of a chain head recorded outside the database


def _payload_sql() -> tuple[str, list[Any]]:
    params: list[Any] = []
    values = []
    for version, tables in SEALED_COLUMNS.items():
        for table, columns in tables.items():
            values.append("(%s, %s, %s::text[])")
            params.extend([version, table, list(columns)])
    return ", ".join(values), params


def _digest(
    version: str, chain: str, seq: int, table: str, entry_id: int, prev: bytes, payload: str
) -> bytes:
    text = "|".join([version, chain, str(seq), table, str(entry_id), prev.hex(), payload])
    return hashlib.sha256(text.encode()).digest()


def _sealed_rows(chain: str, chunk: int = 2000) -> Iterator[tuple[Any, ...]]:
    """(seq, table, entry id, prev_hash, hash, version, payload or None), by seq, streamed."""
    versions, params = _payload_sql()
    sql = f"""
        SELECT s.seq, s.entry_table, s.entry_id, s.prev_hash, s.hash, s.version,
               CASE s.entry_table
                 WHEN 'compliance_accessevent' THEN (
                   SELECT jsonb_object_agg(key, value) FROM jsonb_each(to_jsonb(a))
                   WHERE key = ANY(v.cols))::text
                 WHEN 'compliance_changeentry' THEN (
                   SELECT jsonb_object_agg(key, value) FROM jsonb_each(to_jsonb(c))
                   WHERE key = ANY(v.cols))::text
               END,
               CASE s.entry_table WHEN 'compliance_accessevent' THEN a.id ELSE c.id END
        FROM compliance_auditseal s
        LEFT JOIN (VALUES {versions}) AS v(version, tbl, cols)
               ON v.version = s.version AND v.tbl = s.entry_table
        LEFT JOIN compliance_accessevent a
               ON s.entry_table = 'compliance_accessevent' AND a.id = s.entry_id
        LEFT JOIN compliance_changeentry c
               ON s.entry_table = 'compliance_changeentry' AND c.id = s.entry_id
        WHERE s.chain = %s
        ORDER BY s.seq
    """  # noqa: S608 - fixed identifiers; values are parameters
    with connection.cursor() as cur:
        cur.execute("SET LOCAL timezone = 'UTC'")
        cur.execute("SET LOCAL bytea_output = 'hex'")
    raw = connection.connection
    with raw.cursor(name=f"audit_verify_{id(object())}") as server_side:
        server_side.itersize = chunk
        server_side.execute(sql, [*params, chain])
        for row in server_side:
            yield (*row[:6], row[6] if row[7] is not None else None)


def _unsealed_entry(chain: str) -> tuple[str, int] | None:
    """The first audit row of this chain that has no seal (written with the trigger disabled)."""
    practice_id = None if chain == GLOBAL_CHAIN else int(chain.split(":", 1)[1])
    for model in ENTRY_MODELS:
        table = model._meta.db_table
        rows = (
            model.objects.filter(practice_id__isnull=True)
            if practice_id is None
            else model.objects.filter(practice_id=practice_id)
        )
        missing = (
            rows.exclude(_sealed(table))
            .exclude(_queued(table))
            .order_by("pk")
            .values_list("pk", flat=True)
            .first()
        )
        if missing is not None:
            return table, missing
    return None


def _sealed(table: str) -> models.Exists:
    """NOT EXISTS, not NOT IN: an anti-join probing the seal index, where NOT IN over a million
    seals degrades to a nested scan that does not finish on a large trail."""
    from compliance.models import AuditSeal

    return models.Exists(
        AuditSeal.objects.filter(entry_table=table, entry_id=models.OuterRef("pk"))
    )


def _queued(table: str) -> models.Exists:
    """Written and waiting for the sealer: not a break."""
    from compliance.models import SealQueue

    return models.Exists(
        SealQueue.objects.filter(entry_table=table, entry_id=models.OuterRef("pk"))
    )


def verify_chain(chain: str, anchor: Anchor | None = None) -> ChainReport:
    """Walk one chain from its genesis and report the first broken link, if any.

    Checks, per seal in order: consecutive seq, prev_hash = the previous hash, the row it names
    exists and hashes to its hash; that no row of the chain lacks a seal; and, given an `anchor`
    (a head from an earlier export's manifest), that the chain still holds it. Constant memory
    (server-side cursor). Run it in the practice's tenant context, or cross-tenant.
    """
    seal_now()
    expected_seq, prev = 1, GENESIS
    first_break: Break | None = None
    count = 0
    anchored = anchor is None or anchor[0] == 0
    with transaction.atomic():
        for seq, table, entry_id, prev_hash, digest, version, payload in _sealed_rows(chain):
            count += 1
            prev_hash, digest = bytes(prev_hash), bytes(digest)
            problem = ""
            if seq != expected_seq:
                problem = f"sequence gap: expected seq {expected_seq}"
            elif prev_hash != prev:
                problem = "prev_hash does not match the hash of the entry before"
            elif payload is None:
                problem = "the sealed entry is missing (deleted)"
            elif version not in SEALED_COLUMNS:
                problem = f"unknown seal version {version!r}"
            elif _digest(version, chain, seq, table, entry_id, prev_hash, payload) != digest:
                problem = "content does not match its hash (altered)"
            elif anchor is not None and seq == anchor[0]:
                if digest != anchor[1]:
                    problem = "differs from the anchored head (the chain was rewritten)"
                anchored = True
            if problem:
                first_break = Break(chain, seq, table, entry_id, problem)
                break
            expected_seq, prev = seq + 1, digest
    if first_break is None and not anchored:
        assert anchor is not None
        first_break = Break(
            chain,
            expected_seq,
            "compliance_auditseal",
            None,
            f"the anchored head seq {anchor[0]} is gone: entries were cut off the end",
        )
    if first_break is None:
        unsealed = _unsealed_entry(chain)
        if unsealed is not None:
            first_break = Break(
                chain, expected_seq, unsealed[0], unsealed[1], "entry was never sealed"
            )
    return ChainReport(chain, count, expected_seq - 1, prev, first_break)


def chain_heads(chains: list[str]) -> dict[str, Anchor]:
    """(seq, hash) of each chain's newest seal, one index probe each: what manifests carry."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT c.chain, s.seq, s.hash FROM unnest(%s::text[]) AS c(chain) "
            "CROSS JOIN LATERAL (SELECT seq, hash FROM compliance_auditseal "
            "WHERE chain = c.chain ORDER BY seq DESC LIMIT 1) AS s ORDER BY c.chain",
            [chains],
        )
        return {chain: (int(seq), bytes(digest)) for chain, seq, digest in cur.fetchall()}


def chain_head(practice_id: int | None) -> Anchor:
    return chain_heads([chain_name(practice_id)]).get(chain_name(practice_id), (0, GENESIS))


def all_chains() -> list[str]:
    """Every chain there can be: one per practice, and the global one."""
    from accounts.models import Practice

    return [GLOBAL_CHAIN] + [
        chain_name(pk) for pk in Practice.objects.order_by("pk").values_list("pk", flat=True)
    ]


def parse_anchor(text: str) -> tuple[str, Anchor]:
    """ "practice:12=345:ab12..." -> ("practice:12", (345, bytes))."""
    chain, _, rest = text.partition("=")
    seq, _, digest = rest.partition(":")
    if not chain or not seq.isdigit() or len(digest) != 64:
        raise ValueError(f"anchor {text!r}: expected CHAIN=SEQ:SHA256HEX")
    return chain, (int(seq), bytes.fromhex(digest))
