"""Row-level security trusts a setting only with its proof (see core.tenancy).

Before: every policy read `app.practice_id` and `app.cross_tenant` as they stood, and any
statement of the application's role may set them, so one injected `set_config` showed every
practice's rows. Now the policies ask two SECURITY DEFINER functions, which accept a setting only
with an HMAC of it under the session's key. The session key is derived from the tenancy secret
(installed here from SECRET_KEY, again by `protect_audit_tables`) and a nonce drawn at
registration; both tables are the audit owner role's once protected, so the application's role
cannot read them.

Every existing policy that reads the settings is rewritten in place (tenant_isolation on the
tenant tables, audit_read on the two audit tables), where this role may: on a protected database
the audit tables are the owner's, and `protect_audit_tables` rewrites those.
"""

from django.db import migrations

from core.tenancy import (
    CONDITION,
    LEGACY_CONDITION,
    hmac_pads,
    register_session,
    rewrite_policies_sql,
    tenancy_secret,
)

DEFINER = "SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp"

FUNCTIONS_SQL = rf"""
CREATE TABLE portal_tenancy_secret (
    id smallint PRIMARY KEY CHECK (id = 1),
    inner_pad bytea NOT NULL,
    outer_pad bytea NOT NULL
);
CREATE TABLE portal_tenancy_session (
    pid integer PRIMARY KEY,
    inner_pad bytea NOT NULL,
    outer_pad bytea NOT NULL
);
REVOKE ALL ON portal_tenancy_secret, portal_tenancy_session FROM PUBLIC;

-- A new session key, HMAC(secret, nonce), kept for this backend; the nonce goes back to the
-- caller, who derives the same key with the secret it holds. Rows of backends gone are dropped.
CREATE FUNCTION portal_tenancy_register() RETURNS bytea
LANGUAGE plpgsql VOLATILE {DEFINER}
AS $$
DECLARE
    s record;
    nonce bytea := decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''),
                          'hex');
    k bytea;
    ipad bytea;
    opad bytea;
BEGIN
    SELECT t.inner_pad, t.outer_pad INTO s FROM portal_tenancy_secret t WHERE t.id = 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no tenancy secret is installed'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    k := sha256(s.outer_pad || sha256(s.inner_pad || nonce)) || decode(repeat('00', 32), 'hex');
    ipad := k;
    opad := k;
    FOR i IN 0..63 LOOP
        ipad := set_byte(ipad, i, get_byte(k, i) # 54);
        opad := set_byte(opad, i, get_byte(k, i) # 92);
    END LOOP;
    DELETE FROM portal_tenancy_session t
     WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = t.pid);
    INSERT INTO portal_tenancy_session (pid, inner_pad, outer_pad)
    VALUES (pg_backend_pid(), ipad, opad)
    ON CONFLICT (pid) DO UPDATE SET inner_pad = EXCLUDED.inner_pad,
                                    outer_pad = EXCLUDED.outer_pad;
    RETURN nonce;
END
$$;

-- The practice this session is proven to act for, or NULL.
CREATE FUNCTION portal_tenant_practice() RETURNS bigint
LANGUAGE plpgsql STABLE {DEFINER}
AS $$
DECLARE
    claimed text := current_setting('app.practice_id', true);
    given text := current_setting('app.practice_proof', true);
    k record;
BEGIN
    IF claimed IS NULL OR claimed = '' OR given IS NULL OR given = '' THEN
        RETURN NULL;
    END IF;
    SELECT t.inner_pad, t.outer_pad INTO k FROM portal_tenancy_session t
     WHERE t.pid = pg_backend_pid();
    IF NOT FOUND OR encode(sha256(k.outer_pad || sha256(k.inner_pad
           || convert_to('app.practice_id=' || claimed, 'UTF8'))), 'hex') <> given THEN
        RETURN NULL;
    END IF;
    RETURN claimed::bigint;
END
$$;

-- Whether this session is proven to work across practices.
CREATE FUNCTION portal_tenant_cross() RETURNS boolean
LANGUAGE plpgsql STABLE {DEFINER}
AS $$
DECLARE
    given text;
    k record;
BEGIN
    IF current_setting('app.cross_tenant', true) IS DISTINCT FROM 'on' THEN
        RETURN false;
    END IF;
    given := current_setting('app.cross_proof', true);
    IF given IS NULL OR given = '' THEN
        RETURN false;
    END IF;
    SELECT t.inner_pad, t.outer_pad INTO k FROM portal_tenancy_session t
     WHERE t.pid = pg_backend_pid();
    RETURN FOUND AND encode(sha256(k.outer_pad || sha256(k.inner_pad
           || convert_to('app.cross_tenant=on', 'UTF8'))), 'hex') = given;
END
$$;
"""  # noqa: S608 - fixed text, no input


def install_secret(apps, schema_editor) -> None:
    inner, outer = hmac_pads(tenancy_secret())
    with schema_editor.connection.cursor() as cur:
        cur.execute(
            "INSERT INTO portal_tenancy_secret (id, inner_pad, outer_pad) VALUES (1, %s, %s) "
            "ON CONFLICT (id) DO UPDATE SET inner_pad = EXCLUDED.inner_pad, "
            "outer_pad = EXCLUDED.outer_pad",
            [inner, outer],
        )
    # This session opened before the functions existed: register it (committed with the
    # migration), so whatever this process does next is scoped like any other session.
    register_session(schema_editor.connection.connection)


class Migration(migrations.Migration):
    # After every migration that creates a tenant policy, so that all are rewritten.
    dependencies = [
        ("portal", "0003_username_ci_unique"),
        ("scheduling", "0005_list_and_busy_time_indexes"),
        ("calls", "0003_transcripts"),
        ("integrations", "0001_initial"),
        ("compliance", "0008_audit_action_labels"),
    ]

    operations = [
        migrations.RunSQL(
            FUNCTIONS_SQL,
            "DROP FUNCTION portal_tenant_cross(); DROP FUNCTION portal_tenant_practice(); "
            "DROP FUNCTION portal_tenancy_register(); "
            "DROP TABLE portal_tenancy_session; DROP TABLE portal_tenancy_secret;",
        ),
        migrations.RunPython(install_secret, migrations.RunPython.noop),
        migrations.RunSQL(
            rewrite_policies_sql("app.cross_tenant", CONDITION),
            rewrite_policies_sql("portal_tenant_cross", LEGACY_CONDITION),
        ),
    ]
