"""Change entries written by PostgreSQL for the changes the ORM's signals never see.

`compliance_capture_change()` is attached (by `compliance.capture.install_triggers`, after every
migrate) to the table of each model registered with auditlog, as a deferred row trigger: at
COMMIT it writes a change entry for every INSERT, UPDATE or DELETE of the transaction, unless
the ORM path (auditlog's receivers) wrote one for that row and action in the same transaction.
Those are counted in the transaction-local setting `compliance.orm_logged` by a trigger on the
change entries themselves, so telling them apart costs no statement. Who acted comes from the
transaction-local settings `compliance.*` that `compliance.capture` adds to the writing
statement's round trip (see there).
"""

from django.db import migrations

CAPTURE_SQL = r"""
CREATE FUNCTION compliance_capture_change() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    cfg jsonb := TG_ARGV[0]::jsonb;
    old_row jsonb := CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END;
    new_row jsonb := CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END;
    row_data jsonb := coalesce(new_row, old_row);
    verb smallint := CASE TG_OP WHEN 'INSERT' THEN 0 WHEN 'UPDATE' THEN 1 ELSE 2 END;
    pk text := row_data ->> (cfg ->> 'pk');
    logged text := coalesce(current_setting('compliance.orm_logged', true), '');
    ct_id integer;
    mark text;
    at integer;
    diff jsonb := '{}'::jsonb;
    col text;
    field text;
    o text;
    n text;
BEGIN
    SELECT id INTO ct_id FROM django_content_type
     WHERE app_label = cfg -> 'ct' ->> 0 AND model = cfg -> 'ct' ->> 1;
    mark := ',' || ct_id || ':' || pk || ':' || verb || ',';
    at := position(mark IN logged);
    IF at > 0 THEN  -- auditlog wrote this one: consume its mark
        PERFORM set_config('compliance.orm_logged',
                           overlay(logged PLACING ',' FROM at FOR length(mark)), true);
        RETURN NULL;
    END IF;
    FOR col, field IN SELECT key, value #>> '{}' FROM jsonb_each(cfg -> 'fields') LOOP
        o := old_row ->> col;
        n := new_row ->> col;
        IF TG_OP = 'UPDATE' AND o IS NOT DISTINCT FROM n THEN
            CONTINUE;
        END IF;
        IF cfg -> 'masked' ? col THEN
            o := CASE WHEN o IS NULL THEN NULL ELSE '[encrypted]' END;
            n := CASE WHEN n IS NULL THEN NULL ELSE '[encrypted]' END;
        END IF;
        diff := diff || jsonb_build_object(field, jsonb_build_array(o, n));
    END LOOP;
    IF TG_OP = 'UPDATE' AND diff = '{}'::jsonb THEN
        RETURN NULL;  -- nothing audited changed (as auditlog would find)
    END IF;
    INSERT INTO compliance_changeentry
           (content_type_id, object_pk, object_id, object_repr, serialized_data, action,
            changes_text, changes, actor_id, cid, remote_addr, remote_port, "timestamp",
            additional_data, actor_email, practice_id, api_client_id, impersonation_session_id)
    VALUES (ct_id, pk, CASE WHEN pk ~ '^-?[0-9]{1,18}$' THEN pk::bigint END,
            (cfg ->> 'label') || ' #' || pk, NULL, verb, '', diff,
            nullif(current_setting('compliance.actor_id', true), '')::bigint,
            nullif(current_setting('compliance.request_id', true), ''),
            nullif(current_setting('compliance.ip', true), '')::inet, NULL, clock_timestamp(),
            jsonb_build_object(
                'captured_by', 'database',
                'via', coalesce(nullif(current_setting('compliance.via', true), ''), 'sql'),
                'db_role', session_user::text,
                'application_name', current_setting('application_name')),
            nullif(current_setting('compliance.actor_label', true), ''),
            CASE WHEN cfg ->> 'practice' IS NOT NULL
                 THEN (row_data ->> (cfg ->> 'practice'))::bigint END,
            coalesce(current_setting('compliance.api_client_id', true), ''),
            nullif(current_setting('compliance.impersonation_session_id', true), '')::bigint);
    RETURN NULL;
END
$$;

-- Counts what the ORM path logged in this transaction (entries the database wrote itself are
-- not counted: they are the capture's own).
CREATE FUNCTION compliance_changeentry_logged() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    logged text := coalesce(current_setting('compliance.orm_logged', true), '');
BEGIN
    PERFORM set_config('compliance.orm_logged',
                       CASE WHEN logged = '' THEN ',' ELSE logged END
                       || NEW.content_type_id || ':' || NEW.object_pk || ':' || NEW.action || ',',
                       true);
    RETURN NULL;
END
$$;
CREATE TRIGGER compliance_changeentry_logged
    AFTER INSERT ON compliance_changeentry
    FOR EACH ROW
    WHEN (NEW.additional_data IS NULL OR NOT (NEW.additional_data ? 'captured_by'))
    EXECUTE FUNCTION compliance_changeentry_logged();
"""

REVERSE_SQL = """
DO $$
DECLARE t record;
BEGIN
    FOR t IN SELECT tgrelid::regclass AS rel FROM pg_trigger WHERE tgname = 'compliance_capture'
    LOOP
        EXECUTE format('DROP TRIGGER compliance_capture ON %s', t.rel);
    END LOOP;
END
$$;
DROP TRIGGER compliance_changeentry_logged ON compliance_changeentry;
DROP FUNCTION compliance_changeentry_logged();
DROP FUNCTION compliance_capture_change();
"""


class Migration(migrations.Migration):
    dependencies = [("compliance", "0009_audit_export_failed")]

    operations = [migrations.RunSQL(CAPTURE_SQL, REVERSE_SQL)]
