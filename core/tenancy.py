"""Row-level tenancy: the application filter and PostgreSQL row-level security as a second wall.

Every tenant-owned table carries `practice_id` and a policy that shows a row only when it belongs to
the practice named in the session setting `app.practice_id`. Requests set it from the URL's
practice (see `portal.middleware.TenantMiddleware`), tasks from the ids they are given. Work that
legitimately spans practices says so with `cross_tenant(reason)`, which is logged; with neither,
a connection sees no tenant rows at all.

A setting alone proves nothing: any statement may call `set_config`, an injected one included.
So each of the two settings travels with a proof (`app.practice_proof`, `app.cross_proof`): an
HMAC of the setting under a key of this database session, which the policies check through
SECURITY DEFINER functions (`portal_tenant_practice()`, `portal_tenant_cross()`, evaluated once
per statement). The session key is HMAC(tenancy secret, nonce): the database draws the nonce
when the session registers (`portal_tenancy_register()`, at connect) and keeps the key in a table
only the audit owner role reads; the tenancy secret is derived from SECRET_KEY, so it lives in
the application's processes and in that owner-only table, and never in a statement. A statement
can read its session's current proofs but not forge one for another value, and a proof from
another session (pg_stat_activity shows others' statements) does not verify in its own.
Previous proofs are restored verbatim, never recomputed, so leaving a block cannot launder a
setting some statement made. Migration portal 0004 installs it; `protect_audit_tables` hands it
to the owner role.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from django.db import DatabaseError, connection, models
from django.db.backends.signals import connection_created
from django.db.migrations.operations.base import Operation
from django.dispatch import receiver
from django.utils.crypto import salted_hmac

from core.statements import Batch, CompiledQuery, run_batch

log = logging.getLogger("core.tenancy")

PRACTICE_SETTING = "app.practice_id"
CROSS_TENANT_SETTING = "app.cross_tenant"
POLICY_NAME = "tenant_isolation"
PROOF_SETTINGS = {PRACTICE_SETTING: "app.practice_proof", CROSS_TENANT_SETTING: "app.cross_proof"}

# The policies' condition. The functions verify the proofs; `(SELECT ...)` makes each an init
# plan, run once per statement rather than once per row.
CONDITION = "practice_id = (SELECT portal_tenant_practice()) OR (SELECT portal_tenant_cross())"
# Before migration portal 0004 (the settings alone): what earlier migrations still create on a
# new database, rewritten by that migration.
LEGACY_CONDITION = (
    f"practice_id = NULLIF(current_setting('{PRACTICE_SETTING}', true), '')::bigint "
    f"OR current_setting('{CROSS_TENANT_SETTING}', true) = 'on'"
)

# psycopg connection -> its session's key. A new connection is a new session and a new key.
_KEYS: weakref.WeakKeyDictionary[Any, bytes] = weakref.WeakKeyDictionary()


def tenancy_secret() -> bytes:
    """The secret the session keys derive from: SECRET_KEY's, for this purpose only."""
    return salted_hmac("core.tenancy", "row-level security proofs", algorithm="sha256").digest()


def hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """HMAC-SHA256's inner and outer padded keys, as the database stores them."""
    block = (hashlib.sha256(key).digest() if len(key) > 64 else key).ljust(64, b"\0")
    return bytes(b ^ 0x36 for b in block), bytes(b ^ 0x5C for b in block)


def register_session(raw: Any) -> bytes:
    """Register a database session (a psycopg connection, outside a transaction or in one that
    commits) and return its key. Registering again replaces the key: proofs made before stop
    verifying."""
    cur = raw.execute("SELECT portal_tenancy_register()")
    nonce = bytes(cur.fetchone()[0])
    key = hmac.new(tenancy_secret(), nonce, hashlib.sha256).digest()
    _KEYS[raw] = key
    return key


def proof(key: bytes | None, setting: str, value: str) -> str:
    """What the policy functions accept alongside `setting = value` in that key's session."""
    if not value or key is None:
        return ""
    return hmac.new(key, f"{setting}={value}".encode(), hashlib.sha256).hexdigest()


def scope_raw_connection(raw: psycopg.Connection, practice_id: int) -> None:
    """Register a psycopg connection of the application's role and scope it to one practice
    (session-level, as `tenant_context` does): for work outside Django's connection."""
    key = register_session(raw)
    raw.execute(
        "SELECT set_config(%s, %s, false), set_config(%s, %s, false)",
        [
            PRACTICE_SETTING,
            str(practice_id),
            PROOF_SETTINGS[PRACTICE_SETTING],
            proof(key, PRACTICE_SETTING, str(practice_id)),
        ],
    )


@receiver(connection_created)
def _register_new_session(sender: Any, connection: Any, **kwargs: Any) -> None:
    """Register each new session first thing, in autocommit: outside any transaction that
    could roll the registration back, before any statement of a request or task runs."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return
    try:
        register_session(connection.connection)
    except psycopg.errors.UndefinedFunction:
        pass  # not migrated yet: this session sees no tenant rows until it registers
    except psycopg.Error as exc:
        log.warning("tenancy: the session could not register (%s)", type(exc).__name__)


def _session_key() -> bytes | None:
    connection.ensure_connection()
    raw = connection.connection
    key = _KEYS.get(raw)
    if key is None and not connection.in_atomic_block:
        try:  # opened before migration portal 0004 ran
            key = register_session(raw)
        except psycopg.Error:
            key = None
    return key


def _with_proofs(values: dict[str, str]) -> dict[str, str]:
    key = _session_key()
    proved = dict(values)
    for name, value in values.items():
        if name in PROOF_SETTINGS:
            proved[PROOF_SETTINGS[name]] = proof(key, name, value)
    return proved


def _get(name: str) -> str:
    with connection.cursor() as cur:
        cur.execute("SELECT coalesce(current_setting(%s, true), '')", [name])
        return str(cur.fetchone()[0])


def _swap_sql(values: dict[str, str]) -> tuple[str, list[str]]:
    """The statement that sets session settings and answers their previous values."""
    names = list(values)
    reads = ", ".join(f"coalesce(current_setting(%s, true), '') AS p{i}" for i in range(len(names)))
    writes = ", ".join("set_config(%s, %s, false)" for _ in names)
    params: list[str] = [*names]
    for name in names:
        params += [name, values[name]]
    # The materialised CTE reads the old values before the outer query overwrites them.
    sql = f"WITH prev AS MATERIALIZED (SELECT {reads}) SELECT prev.*, {writes} FROM prev"  # noqa: S608 - placeholders only
    return sql, params


def _previous(values: dict[str, str], row: Any) -> dict[str, str]:
    return dict(zip(values, (str(v) for v in row[: len(values)]), strict=True))


def _swap(values: dict[str, str]) -> dict[str, str]:
    """Set session settings and return their previous values, in one round trip: this runs
    twice per request and per task. Proofs are set and returned like any other setting."""
    sql, params = _swap_sql(values)
    with connection.cursor() as cur:
        cur.execute(sql, params)
        row = cur.fetchone()
    return _previous(values, row)


def _restore(previous: dict[str, str]) -> None:
    try:
        _swap(previous)
    except DatabaseError:
        # An aborted transaction cannot run set_config; a fresh connection starts clean.
        connection.close()


@contextmanager
def _settings(values: dict[str, str]) -> Iterator[None]:
    previous = _swap(_with_proofs(values))
    try:
        yield
    finally:
        _restore(previous)


def current_practice_id() -> int | None:
    value = _get(PRACTICE_SETTING)
    return int(value) if value else None


@contextmanager
def tenant_context(practice: models.Model | int) -> Iterator[None]:
    """Scope this connection to one practice (a request or a task working for it)."""
    practice_id = practice if isinstance(practice, int) else practice.pk
    with _settings({PRACTICE_SETTING: str(practice_id), CROSS_TENANT_SETTING: ""}):
        yield


@contextmanager
def tenant_context_reading(
    practice: models.Model | int, statements: Batch
) -> Iterator[list[list[tuple[Any, ...]]]]:
    """`tenant_context(practice)` entered in the same round trip as `statements`, which run
    right after the scope is set, under its row-level security; yields their rows. A request
    that must read before it can do anything (the API's token and client) saves a wait. If a
    statement fails, its implicit transaction takes the new scope back with it."""
    practice_id = practice if isinstance(practice, int) else practice.pk
    values = _with_proofs({PRACTICE_SETTING: str(practice_id), CROSS_TENANT_SETTING: ""})
    sql, params = _swap_sql(values)
    swap = CompiledQuery(sql, tuple((False, p) for p in params))
    swapped, *rows = run_batch([(swap, {}), *statements])
    previous = _previous(values, swapped[0])
    try:
        yield rows
    finally:
        _restore(previous)


@contextmanager
def cross_tenant(reason: str) -> Iterator[None]:
    """Opt in, visibly, to work across practices (vendor exports, migrations, sweeps)."""
    if not reason.strip():
        raise ValueError("cross-tenant access needs a reason")
    log.info("cross-tenant access: %s", reason)
    with _settings({CROSS_TENANT_SETTING: "on"}):
        yield


class TenantQuerySet(models.QuerySet):
    def for_practice(self, practice: models.Model | int) -> TenantQuerySet:
        practice_id = practice if isinstance(practice, int) else practice.pk
        return self.filter(practice_id=practice_id)


class TenantManager(models.Manager.from_queryset(TenantQuerySet)):  # type: ignore[misc]
    pass


class TenantModel(models.Model):
    """A row owned by one practice. Read it through `objects.for_practice(practice)`."""

    practice = models.ForeignKey("portal.Practice", on_delete=models.PROTECT, related_name="+")

    objects = TenantManager()

    class Meta:
        abstract = True


def rls_sql(table: str, condition: str = CONDITION) -> list[str]:
    return [
        f'ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY',
        f'ALTER TABLE "{table}" FORCE ROW LEVEL SECURITY',
        f'DROP POLICY IF EXISTS {POLICY_NAME} ON "{table}"',
        f'CREATE POLICY {POLICY_NAME} ON "{table}" USING ({condition}) WITH CHECK ({condition})',
    ]


REWRITE_SQL = r"""
DO $rewrite$
DECLARE
    p record;
BEGIN
    FOR p IN
        SELECT pol.polname, pol.polrelid::regclass::text AS tbl,
               pol.polwithcheck IS NOT NULL AS checks
          FROM pg_policy pol JOIN pg_class c ON c.oid = pol.polrelid
         WHERE pg_get_expr(pol.polqual, pol.polrelid) LIKE '%%{marker}%%'
           AND pg_has_role(current_user, c.relowner, 'USAGE')
    LOOP
        IF p.checks THEN
            EXECUTE format('ALTER POLICY %%I ON %%s USING (%%s) WITH CHECK (%%s)',
                           p.polname, p.tbl, {new}, {new});
        ELSE
            EXECUTE format('ALTER POLICY %%I ON %%s USING (%%s)', p.polname, p.tbl, {new});
        END IF;
    END LOOP;
END
$rewrite$;
"""


def rewrite_policies_sql(marker: str, new: str) -> str:
    """SQL that rewrites every policy whose condition mentions `marker` to `new`, on the tables
    the current role may alter (a superuser: all)."""
    quoted = "'" + new.replace("'", "''") + "'"
    return REWRITE_SQL.format(marker=marker, new=quoted).replace("%%", "%")


class EnableRowLevelSecurity(Operation):
    """Migration operation: put a tenant model's table behind the isolation policy."""

    reversible = True
    reduces_to_sql = True

    def __init__(self, model_name: str) -> None:
        self.model_name = model_name

    def state_forwards(self, app_label: str, state: Any) -> None:
        pass

    def database_forwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        model = to_state.apps.get_model(app_label, self.model_name)
        with schema_editor.connection.cursor() as cur:
            cur.execute("SELECT to_regprocedure('portal_tenant_cross()') IS NOT NULL")
            proofs = cur.fetchone()[0]
        # On a new database the migrations before portal 0004 run before it exists.
        condition = CONDITION if proofs else LEGACY_CONDITION
        for sql in rls_sql(model._meta.db_table, condition):
            schema_editor.execute(sql)

    def database_backwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        model = from_state.apps.get_model(app_label, self.model_name)
        table = model._meta.db_table
        schema_editor.execute(f'DROP POLICY IF EXISTS {POLICY_NAME} ON "{table}"')
        schema_editor.execute(f'ALTER TABLE "{table}" NO FORCE ROW LEVEL SECURITY')
        schema_editor.execute(f'ALTER TABLE "{table}" DISABLE ROW LEVEL SECURITY')

    def describe(self) -> str:
        return f"Enable row-level security on {self.model_name}"

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        return (self.__class__.__qualname__, [self.model_name], {})
