"""Who may change the audit trail's tables: nobody the application connects as.

The append-only triggers (migration 0003) refuse UPDATE, DELETE and TRUNCATE, but they are only a
wall for a role that cannot take them down: a table's owner may disable its triggers or swap the
sealing function, and the owner of a schema may drop any table in it. Migrations run as the
application's role, so out of the box that role owns the audit tables, their sealing and
append-only functions, and (as the database's owner, through `pg_database_owner`) the schema.

`protect_audit_tables` (as a superuser, after migrating; `manage.py protect_audit_tables`, which
`make run` runs, as the test suite and the benchmarks do for their databases) hands all of that to
a role nobody logs in as (`settings.AUDIT_OWNER_ROLE`). The application keeps exactly what writing
and reading the trail needs: SELECT and INSERT on the entries, SELECT on the seals and the seal
queue, the id sequences, and CREATE on the schema for its other migrations. UPDATE, DELETE and
TRUNCATE are then refused by privilege before any trigger runs; the triggers stay as the second
wall (and against a misgrant).

Seals are written by nobody but the owner: the sealing trigger functions become SECURITY DEFINER
(they run as the owner, with a fixed search_path so no object of the caller's can stand in for
ours) and they compute the payloads and hashes themselves from the row PostgreSQL hands them, so
the application can neither insert a seal or a queue row nor choose a hash. The sealer
(`compliance_seal_pending`) is the owner's and SECURITY DEFINER likewise; the application may
call it (when to seal is its choice, what a seal says is not). Nobody else may
EXECUTE them either: attaching them to a table of one's own (a temporary
`compliance_sealqueue`, say) would otherwise seal whatever that table is fed. It is idempotent.

It also hands over the tenancy proofs' objects (core.tenancy, migration portal 0004): the
tenancy secret and session-key tables become the owner's, unreadable by the application, the
three functions SECURITY DEFINER under the owner, the secret is installed again from this
process's SECRET_KEY, and any policy still trusting the bare settings is rewritten. The tenant
tables stay the application's (its migrations alter them), so an event trigger refuses any DDL
that leaves one of them unforced or with another policy than its tenant_isolation: a migration
that means to change a tenant policy is then applied as a superuser with the trigger disabled.

Afterwards a migration that alters an audit table is applied as a superuser (then run the
command again); migrations of every other table go on as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from django.conf import settings
from django.db import connection
from psycopg import sql

AUDIT_TABLES = (
    "compliance_accessevent",
    "compliance_changeentry",
    "compliance_auditseal",
    "compliance_sealqueue",
    "compliance_auditcheckpoint",
    "compliance_auditsigningkey",
)
TENANCY_TABLES = ("portal_tenancy_secret", "portal_tenancy_session")
TENANCY_FUNCTIONS = (
    "portal_tenancy_register()",
    "portal_tenant_practice()",
    "portal_tenant_cross()",
)
# What the application may do to each: append entries; seals and the queue are the owner's (its
# sealing functions write them).
_APP_PRIVILEGES = {
    "compliance_accessevent": ("SELECT", "INSERT"),
    "compliance_changeentry": ("SELECT", "INSERT"),
    "compliance_auditseal": ("SELECT",),
    "compliance_sealqueue": ("SELECT",),
    # the sealer's process signs (the key is the application's), the owner keeps them
    "compliance_auditcheckpoint": ("SELECT", "INSERT"),
    "compliance_auditsigningkey": ("SELECT", "INSERT"),
}
SCHEMA = "public"
# The trigger functions that write the queue (compliance migration 0011).
SEALING_FUNCTIONS = (
    "compliance_accessevent_enqueue()",
    "compliance_changeentry_enqueue()",
)
# The sealer (migration 0011): the owner's too, but the application calls it (it computes every
# hash itself from the queue, so calling it chooses nothing).
SEALER_FUNCTION = "compliance_seal_pending(integer,boolean)"
# What the owner's functions resolve names in: the catalog first, then our schema, never the
# caller's temporary schema.
DEFINER_SEARCH_PATH = "pg_catalog, public, pg_temp"


@dataclass(frozen=True)
class Protection:
    database: str
    app_role: str
    owner_role: str
    tables: tuple[str, ...]
    sequences: tuple[str, ...]
    functions: tuple[str, ...]


_FUNCTIONS = """
SELECT DISTINCT t.tgfoid::regprocedure::text FROM pg_trigger t
 WHERE t.tgrelid = ANY(%s::regclass[]) AND NOT t.tgisinternal ORDER BY 1
"""
_SEQUENCES = """
SELECT DISTINCT s.oid::regclass::text FROM pg_class s
  JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid
                  AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
 WHERE s.relkind = 'S' AND d.refobjid = ANY(%s::regclass[]) ORDER BY 1
"""


def protect_audit_tables(
    superuser_url: str,
    *,
    database: str,
    app_role: str,
    owner_role: str,
    test_truncate: bool = False,
) -> Protection:
    """Give the audit tables, their sequences and trigger functions, and the schema to
    `owner_role` (created NOLOGIN if missing), and grant `app_role` only what it needs.

    `test_truncate` also grants TRUNCATE, for a test database's flush between tests (the
    append-only trigger still refuses it unless the session carries the test flag)."""
    if app_role == owner_role:
        raise ValueError("the audit owner must be a role other than the application's")
    conninfo = psycopg.conninfo.make_conninfo(superuser_url, dbname=database)
    with psycopg.connect(conninfo) as conn, conn.transaction():
        cur = conn.cursor()
        cur.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        if not cur.fetchone()[0]:  # type: ignore[index]
            raise PermissionError("protect_audit_tables needs a superuser connection")
        owner, app = sql.Identifier(owner_role), sql.Identifier(app_role)
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [owner_role])
        if cur.fetchone() is None:
            # Roles are the cluster's: another database being protected at the same moment (a
            # parallel test run) may create it first.
            cur.execute(
                sql.SQL(
                    "DO $$ BEGIN CREATE ROLE {} NOLOGIN; "
                    "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
                ).format(owner)
            )
        # A member of the owner role could act as it.
        cur.execute("SELECT pg_has_role(%s, %s, 'MEMBER')", [app_role, owner_role])
        if cur.fetchone()[0]:  # type: ignore[index]
            cur.execute(sql.SQL("REVOKE {} FROM {}").format(owner, app))
        # Off while ownership moves (it runs as the owner of the moment); back on at the end.
        cur.execute("DROP EVENT TRIGGER IF EXISTS portal_tenancy_guard")
        tables = list(AUDIT_TABLES)
        cur.execute(_FUNCTIONS, [tables])
        functions = tuple(row[0] for row in cur.fetchall())
        cur.execute(_SEQUENCES, [tables])
        sequences = tuple(row[0] for row in cur.fetchall())

        cur.execute(sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(sql.Identifier(SCHEMA), owner))
        cur.execute(
            sql.SQL("GRANT USAGE, CREATE ON SCHEMA {} TO {}").format(sql.Identifier(SCHEMA), app)
        )
        for table in AUDIT_TABLES:
            name = sql.Identifier(table)
            cur.execute(sql.SQL("ALTER TABLE {} OWNER TO {}").format(name, owner))
            cur.execute(sql.SQL("REVOKE ALL ON TABLE {} FROM PUBLIC, {}").format(name, app))
            privileges = _APP_PRIVILEGES[table] + (("TRUNCATE",) if test_truncate else ())
            cur.execute(
                sql.SQL("GRANT {} ON TABLE {} TO {}").format(
                    sql.SQL(", ").join(sql.SQL(p) for p in privileges), name, app
                )
            )
        for sequence in sequences:  # owned by their tables: they moved with them
            seq = sql.SQL(sequence)  # a regclass text: already quoted where needed
            cur.execute(sql.SQL("REVOKE ALL ON SEQUENCE {} FROM PUBLIC, {}").format(seq, app))
            cur.execute(sql.SQL("GRANT USAGE, SELECT ON SEQUENCE {} TO {}").format(seq, app))
        for function in functions:
            fn = sql.SQL(function)  # a regprocedure text: already quoted where needed
            cur.execute(sql.SQL("ALTER FUNCTION {} OWNER TO {}").format(fn, owner))
            if function in SEALING_FUNCTIONS:
                cur.execute(
                    sql.SQL("ALTER FUNCTION {} SECURITY DEFINER SET search_path = {}").format(
                        fn, sql.SQL(DEFINER_SEARCH_PATH)
                    )
                )
            cur.execute(sql.SQL("REVOKE ALL ON FUNCTION {} FROM PUBLIC, {}").format(fn, app))
        _callable_by_app_as_owner(cur, sql.SQL(SEALER_FUNCTION), owner, app)
        functions = (*functions, SEALER_FUNCTION)
        _protect_tenancy(cur, owner, app)
        left = audit_objects_owned_by(cur, app_role)
        if left:  # a superuser, or a member of the owner role by some indirect grant
            raise PermissionError(f"{app_role} can still act as the owner of: {', '.join(left)}")
        weak = sealing_weaknesses(cur, app_role)
        if weak:
            raise PermissionError(f"sealing is still open to {app_role}: {', '.join(weak)}")
        weak = tenancy_weaknesses(cur, app_role)
        if weak:
            raise PermissionError(f"tenancy proofs are still open to {app_role}: {', '.join(weak)}")
    return Protection(database, app_role, owner_role, AUDIT_TABLES, sequences, functions)


def _callable_by_app_as_owner(
    cur: Any, fn: sql.Composable, owner: sql.Composable, app: sql.Composable
) -> None:
    """`fn` (a regprocedure text) runs with its owner's rights and a fixed search_path, and the
    application role is the only one that may call it."""
    cur.execute(sql.SQL("ALTER FUNCTION {} OWNER TO {}").format(fn, owner))
    cur.execute(
        sql.SQL("ALTER FUNCTION {} SECURITY DEFINER SET search_path = {}").format(
            fn, sql.SQL(DEFINER_SEARCH_PATH)
        )
    )
    cur.execute(sql.SQL("REVOKE ALL ON FUNCTION {} FROM PUBLIC").format(fn))
    cur.execute(sql.SQL("GRANT EXECUTE ON FUNCTION {} TO {}").format(fn, app))


def _protect_tenancy(cur: Any, owner: sql.Composable, app: sql.Composable) -> None:
    from core.tenancy import CONDITION, hmac_pads, rewrite_policies_sql, tenancy_secret

    cur.execute("SELECT to_regclass('portal_tenancy_secret') IS NOT NULL")
    if not cur.fetchone()[0]:
        raise PermissionError("migrate first: the tenancy proofs (portal 0004) are not installed")
    inner, outer = hmac_pads(tenancy_secret())
    cur.execute(
        "INSERT INTO portal_tenancy_secret (id, inner_pad, outer_pad) VALUES (1, %s, %s) "
        "ON CONFLICT (id) DO UPDATE SET inner_pad = EXCLUDED.inner_pad, "
        "outer_pad = EXCLUDED.outer_pad",
        [inner, outer],
    )
    for table in TENANCY_TABLES:
        name = sql.Identifier(table)
        cur.execute(sql.SQL("ALTER TABLE {} OWNER TO {}").format(name, owner))
        cur.execute(sql.SQL("REVOKE ALL ON TABLE {} FROM PUBLIC, {}").format(name, app))
    for function in TENANCY_FUNCTIONS:
        _callable_by_app_as_owner(cur, sql.SQL(function), owner, app)
    # A superuser may alter every policy: the audit tables' too, which migrations could not.
    cur.execute(rewrite_policies_sql("app.cross_tenant", CONDITION))
    _guard_tenant_policies(cur, owner, app)


# The application's role owns the tenant tables (its migrations create them), and an owner may
# take row-level security off its table or add a policy that shows everything. This event
# trigger (creating one needs a superuser) refuses any DDL statement that leaves a tenant table
# weaker than it was: not forced, or with a policy other than its tenant_isolation as installed.
# Tables enter its list when they first carry that policy, forced (a new tenant table's
# migration); a dropped table leaves it. It runs for every role, superusers included.
_GUARD_SQL = """
CREATE TABLE IF NOT EXISTS portal_tenancy_walled (relid oid PRIMARY KEY);
CREATE OR REPLACE FUNCTION portal_tenancy_guard() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $guard$
DECLARE
    canonical text := {canonical};
    weakened text;
BEGIN
    INSERT INTO portal_tenancy_walled (relid)
    SELECT c.oid FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
     WHERE p.polname = 'tenant_isolation' AND c.relrowsecurity AND c.relforcerowsecurity
       AND pg_get_expr(p.polqual, p.polrelid) = canonical
       AND pg_get_expr(p.polwithcheck, p.polrelid) = canonical
    ON CONFLICT (relid) DO NOTHING;
    SELECT string_agg(c.relname, ', ' ORDER BY c.relname) INTO weakened
      FROM portal_tenancy_walled w JOIN pg_class c ON c.oid = w.relid
     WHERE NOT (c.relrowsecurity AND c.relforcerowsecurity)
        OR NOT EXISTS (SELECT 1 FROM pg_policy p
                        WHERE p.polrelid = c.oid AND p.polname = 'tenant_isolation'
                          AND p.polpermissive AND p.polcmd = '*' AND p.polroles = '{{0}}'
                          AND pg_get_expr(p.polqual, p.polrelid) = canonical
                          AND pg_get_expr(p.polwithcheck, p.polrelid) = canonical)
        OR EXISTS (SELECT 1 FROM pg_policy p
                    WHERE p.polrelid = c.oid AND p.polname <> 'tenant_isolation');
    IF weakened IS NOT NULL THEN
        RAISE EXCEPTION 'row-level security of tenant tables cannot be weakened (%)', weakened
            USING ERRCODE = 'insufficient_privilege';
    END IF;
END
$guard$;
"""


def _guard_tenant_policies(cur: Any, owner: sql.Composable, app: sql.Composable) -> None:
    cur.execute(
        "SELECT pg_get_expr(polqual, polrelid) FROM pg_policy "
        "WHERE polrelid = 'portal_location'::regclass AND polname = 'tenant_isolation'"
    )
    canonical = cur.fetchone()[0]  # as this server prints the condition just installed
    cur.execute(sql.SQL(_GUARD_SQL).format(canonical=sql.Literal(canonical)))
    cur.execute(sql.SQL("ALTER TABLE portal_tenancy_walled OWNER TO {}").format(owner))
    cur.execute(sql.SQL("REVOKE ALL ON TABLE portal_tenancy_walled FROM PUBLIC, {}").format(app))
    cur.execute(sql.SQL("ALTER FUNCTION portal_tenancy_guard() OWNER TO {}").format(owner))
    cur.execute(
        sql.SQL("REVOKE ALL ON FUNCTION portal_tenancy_guard() FROM PUBLIC, {}").format(app)
    )
    cur.execute(
        "CREATE EVENT TRIGGER portal_tenancy_guard ON ddl_command_end"
        " EXECUTE FUNCTION portal_tenancy_guard()"
    )
    # The tables walled already (an event trigger does not fire for its own creation).
    cur.execute(
        "INSERT INTO portal_tenancy_walled (relid) SELECT polrelid FROM pg_policy"
        " WHERE polname = 'tenant_isolation' AND pg_get_expr(polqual, polrelid) = %s"
        " ON CONFLICT (relid) DO NOTHING",
        [canonical],
    )


def tenancy_weaknesses(cur: Any, role: str) -> list[str]:
    """How a statement of `role` could pass row-level security without the proofs: reading
    the secret or the session keys, owning or replacing the functions that check them, a
    policy that still trusts the bare settings, or no guard against an owner's DDL. Empty once
    `protect_audit_tables` has run."""
    cur.execute(
        """
        SELECT CASE WHEN to_regclass(t.name) IS NULL THEN 'table ' || t.name || ' is missing'
                    ELSE 'may ' || lower(p.kind) || ' ' || t.name END
          FROM unnest(%(tables)s::text[]) AS t(name)
         CROSS JOIN unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) AS p(kind)
         WHERE CASE WHEN to_regclass(t.name) IS NULL THEN p.kind = 'SELECT'
                    ELSE has_table_privilege(%(role)s, t.name, p.kind) END
        UNION ALL
        SELECT 'function ' || f.sig || CASE
                 WHEN p.oid IS NULL THEN ' is missing'
                 WHEN pg_has_role(%(role)s, p.proowner, 'MEMBER') THEN ' is its own'
                 WHEN NOT p.prosecdef THEN ' is not SECURITY DEFINER'
                 ELSE ' has no fixed search_path' END
          FROM unnest(%(functions)s::text[]) AS f(sig)
          LEFT JOIN pg_proc p ON p.oid = to_regprocedure(f.sig)
         WHERE p.oid IS NULL OR pg_has_role(%(role)s, p.proowner, 'MEMBER') OR NOT p.prosecdef
            OR NOT coalesce(%(path)s = ANY(p.proconfig), false)
        UNION ALL
        SELECT 'event trigger portal_tenancy_guard is missing or disabled'
         WHERE NOT EXISTS (SELECT 1 FROM pg_event_trigger
                            WHERE evtname = 'portal_tenancy_guard' AND evtenabled <> 'D')
        UNION ALL
        SELECT 'policy ' || pol.polname || ' on ' || pol.polrelid::regclass::text
               || ' trusts the bare settings'
          FROM pg_policy pol
         WHERE pg_get_expr(pol.polqual, pol.polrelid) LIKE '%%current_setting(''app.%%'
            OR pg_get_expr(pol.polwithcheck, pol.polrelid) LIKE '%%current_setting(''app.%%'
         ORDER BY 1
        """,
        {
            "tables": list(TENANCY_TABLES),
            "role": role,
            "functions": list(TENANCY_FUNCTIONS),
            "path": f"search_path={DEFINER_SEARCH_PATH}",
        },
    )
    return [row[0] for row in cur.fetchall()]


def protect_connected_database(superuser_url: str, *, test_truncate: bool = False) -> Protection:
    """`protect_audit_tables` for the database and role Django's connection uses, with
    `settings.AUDIT_OWNER_ROLE` as the owner."""
    with connection.cursor() as cur:
        cur.execute("SELECT current_user, current_database()")
        app_role, database = cur.fetchone()
    return protect_audit_tables(
        superuser_url,
        database=database,
        app_role=app_role,
        owner_role=settings.AUDIT_OWNER_ROLE,
        test_truncate=test_truncate,
    )


def audit_objects_owned_by(cur: Any, role: str) -> list[str]:
    """What of the audit trail's defences `role` owns or may act as the owner of (a superuser:
    all): the audit tables, their trigger functions, the schema. Empty once
    `protect_audit_tables` has run. `cur`: a psycopg or Django cursor."""
    tables = list(AUDIT_TABLES)
    cur.execute(
        """
        SELECT 'table ' || c.relname FROM pg_class c
         WHERE c.oid = ANY(%(tables)s::regclass[]) AND pg_has_role(%(role)s, c.relowner, 'MEMBER')
        UNION ALL
        SELECT 'function ' || p.oid::regprocedure::text FROM pg_proc p
         WHERE p.oid IN (SELECT t.tgfoid FROM pg_trigger t
                          WHERE t.tgrelid = ANY(%(tables)s::regclass[]) AND NOT t.tgisinternal)
           AND pg_has_role(%(role)s, p.proowner, 'MEMBER')
        UNION ALL
        SELECT 'schema ' || n.nspname FROM pg_namespace n
         WHERE n.nspname = %(schema)s AND pg_has_role(%(role)s, n.nspowner, 'MEMBER')
        ORDER BY 1
        """,
        {"tables": tables, "role": role, "schema": SCHEMA},
    )
    return [row[0] for row in cur.fetchall()]


def sealing_weaknesses(cur: Any, role: str) -> list[str]:
    """How `role` could still write a seal or a queue row, or choose a hash: a write privilege
    on either table, a sealing function missing, not SECURITY DEFINER, without the fixed
    search_path, or executable by it. Empty once `protect_audit_tables` has run."""
    cur.execute(
        """
        SELECT 'may ' || lower(p.kind) || ' ' || t.name
          FROM unnest(%(tables)s::text[]) AS t(name)
         CROSS JOIN unnest(ARRAY['INSERT', 'UPDATE', 'DELETE']) AS p(kind)
         WHERE has_table_privilege(%(role)s, t.name, p.kind)
        UNION ALL
        SELECT 'function ' || f.sig || CASE
                 WHEN p.oid IS NULL THEN ' is missing'
                 WHEN NOT p.prosecdef THEN ' is not SECURITY DEFINER'
                 WHEN NOT coalesce(%(path)s = ANY(p.proconfig), false)
                     THEN ' has no fixed search_path'
                 ELSE ' is executable by it' END
          FROM unnest(%(functions)s::text[]) AS f(sig)
          LEFT JOIN pg_proc p ON p.oid = to_regprocedure(f.sig)
         WHERE p.oid IS NULL OR NOT p.prosecdef
            OR NOT coalesce(%(path)s = ANY(p.proconfig), false)
            OR has_function_privilege(%(role)s, p.oid, 'EXECUTE')
        UNION ALL
        SELECT 'function ' || %(sealer)s || CASE
                 WHEN p.oid IS NULL THEN ' is missing'
                 WHEN NOT p.prosecdef THEN ' is not SECURITY DEFINER'
                 WHEN NOT coalesce(%(path)s = ANY(p.proconfig), false)
                     THEN ' has no fixed search_path'
                 ELSE ' is owned by it' END
          FROM (SELECT 1) AS one
          LEFT JOIN pg_proc p ON p.oid = to_regprocedure(%(sealer)s)
         WHERE p.oid IS NULL OR NOT p.prosecdef
            OR NOT coalesce(%(path)s = ANY(p.proconfig), false)
            OR pg_has_role(%(role)s, p.proowner, 'MEMBER')
         ORDER BY 1
        """,
        {
            "tables": ["compliance_auditseal", "compliance_sealqueue"],
            "role": role,
            "functions": list(SEALING_FUNCTIONS),
            "sealer": SEALER_FUNCTION,
            "path": f"search_path={DEFINER_SEARCH_PATH}",
        },
    )
    return [row[0] for row in cur.fetchall()]
