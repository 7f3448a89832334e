"""Sealing moves off the request's path: writers only append, one sealer seals after commit.

Until now each audit row was sealed by deferred triggers at its transaction's COMMIT, under the
chain's advisory lock: every audited transaction serialised on its chain at commit and paid
for the head read and the hash. Now:
1. Per audit row, at INSERT (the `..._seal` triggers, same names and arguments, no longer
   deferred): the row's payload (the same frozen columns, the same text: the same hash as
   before) goes into `compliance_sealqueue` with its chain, and the sealer is notified
   (`NOTIFY compliance_audit_seal`, once per transaction). No lock, no hash.
2. `compliance_seal_pending(batch, wait)` (called by the sealer, `compliance.sealer`): under
   one advisory lock per database (only one sealer at a time: chains can never fork), the
   committed queue rows in id order, each appended to its chain (head read by index, SHA-256
   as before), the queue rows deleted. Returns how many it sealed and the chains it touched;
   -1 when another sealer holds the lock and `wait` is false.

Unsealed rows are append-only like sealed ones: the statement triggers of 0003 refuse UPDATE,
DELETE and TRUNCATE of the entry tables whatever their seal state.
"""

import importlib

import django.db.models.functions.datetime
from django.db import migrations, models

V1 = importlib.import_module("compliance.migrations.0003_audit_trail")
V7 = importlib.import_module("compliance.migrations.0007_cheaper_sealing")

DROP_COMMIT_SEALING = """
DROP TRIGGER compliance_accessevent_seal ON compliance_accessevent;
DROP TRIGGER compliance_changeentry_seal ON compliance_changeentry;
DROP TRIGGER compliance_sealqueue_seal ON compliance_sealqueue;
DROP FUNCTION compliance_accessevent_enqueue();
DROP FUNCTION compliance_changeentry_enqueue();
DROP FUNCTION compliance_audit_seal_entry();
DROP TABLE compliance_sealqueue;
"""

ENQUEUE = r"""
CREATE FUNCTION compliance_{table}_enqueue() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    zone text := current_setting('TimeZone');
    payload text;
BEGIN
    IF zone <> 'UTC' THEN
        PERFORM set_config('TimeZone', 'UTC', true);
    END IF;
    payload := jsonb_build_object({pairs})::text;
    IF zone <> 'UTC' THEN
        PERFORM set_config('TimeZone', zone, true);
    END IF;
    INSERT INTO compliance_sealqueue (chain, entry_table, entry_id, version, payload, queued_at)
    VALUES (CASE WHEN NEW.practice_id IS NULL THEN 'global' ELSE 'practice:' || NEW.practice_id END,
            TG_TABLE_NAME, NEW.id, TG_ARGV[0], payload, clock_timestamp());
    PERFORM pg_notify('compliance_audit_seal', '');
    RETURN NULL;
END
$$;
"""

SEALER = r"""
CREATE FUNCTION compliance_seal_pending(batch integer, wait boolean)
RETURNS TABLE (sealed integer, chains text[])
LANGUAGE plpgsql
AS $$
DECLARE
    q record;
    head_seq bigint;
    head_hash bytea;
    done bigint[] := '{}';
    touched text[] := '{}';
BEGIN
    IF wait THEN
        PERFORM pg_advisory_xact_lock(hashtextextended('compliance.audit/sealer', 0));
    ELSIF NOT pg_try_advisory_xact_lock(hashtextextended('compliance.audit/sealer', 0)) THEN
        sealed := -1;
        chains := '{}';
        RETURN NEXT;
        RETURN;
    END IF;
    FOR q IN SELECT * FROM compliance_sealqueue ORDER BY id LIMIT batch LOOP
        SELECT s.seq, s.hash INTO head_seq, head_hash
          FROM compliance_auditseal s WHERE s.chain = q.chain ORDER BY s.seq DESC LIMIT 1;
        IF NOT FOUND THEN
            head_seq := 0;
            head_hash := '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea;
        END IF;
        INSERT INTO compliance_auditseal
               (chain, seq, entry_table, entry_id, prev_hash, hash, version, sealed_at)
        VALUES (q.chain, head_seq + 1, q.entry_table, q.entry_id, head_hash,
                sha256(convert_to(concat_ws('|', q.version, q.chain, (head_seq + 1)::text,
                                            q.entry_table, q.entry_id::text,
                                            encode(head_hash, 'hex'), q.payload), 'UTF8')),
                q.version, clock_timestamp());
        done := done || q.id;
        IF NOT (q.chain = ANY(touched)) THEN
            touched := touched || q.chain;
        END IF;
    END LOOP;
    DELETE FROM compliance_sealqueue WHERE id = ANY(done);
    sealed := coalesce(array_length(done, 1), 0);
    chains := touched;
    RETURN NEXT;
END
$$;

CREATE TRIGGER compliance_accessevent_seal
    AFTER INSERT ON compliance_accessevent
    FOR EACH ROW EXECUTE FUNCTION compliance_accessevent_enqueue('v1', '{access_columns}');
CREATE TRIGGER compliance_changeentry_seal
    AFTER INSERT ON compliance_changeentry
    FOR EACH ROW EXECUTE FUNCTION compliance_changeentry_enqueue('v1', '{change_columns}');
"""


def forward_sql() -> str:
    return (
        ENQUEUE.format(table="accessevent", pairs=V7._pairs(V1.ACCESS_COLUMNS_V1))
        + ENQUEUE.format(table="changeentry", pairs=V7._pairs(V1.CHANGE_COLUMNS_V1))
        + SEALER.replace("{access_columns}", V1.ACCESS_COLUMNS_V1).replace(
            "{change_columns}", V1.CHANGE_COLUMNS_V1
        )
    )


REVERSE_SQL = """
DROP TRIGGER compliance_accessevent_seal ON compliance_accessevent;
DROP TRIGGER compliance_changeentry_seal ON compliance_changeentry;
DROP FUNCTION compliance_accessevent_enqueue();
DROP FUNCTION compliance_changeentry_enqueue();
DROP FUNCTION compliance_seal_pending(integer, boolean);
"""

# 0005's queue table, which 0007's functions expect, on the way back.
RESTORE_QUEUE_SQL = """
CREATE UNLOGGED TABLE compliance_sealqueue (
    pos integer NOT NULL,
    chain text NOT NULL,
    entry_table text NOT NULL,
    entry_id bigint NOT NULL,
    version text NOT NULL,
    payload text NOT NULL
);
""" + V7.seal_sql().replace(
    """DROP TRIGGER compliance_accessevent_seal ON compliance_accessevent;
DROP TRIGGER compliance_changeentry_seal ON compliance_changeentry;
DROP TRIGGER compliance_sealqueue_seal ON compliance_sealqueue;
DROP FUNCTION compliance_audit_enqueue();
DROP FUNCTION compliance_audit_seal_queue();
""",
    "",
)


class Migration(migrations.Migration):
    dependencies = [("compliance", "0010_capture_changes")]

    operations = [
        migrations.RunSQL(DROP_COMMIT_SEALING, RESTORE_QUEUE_SQL),
        migrations.CreateModel(
            name="SealQueue",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("chain", models.CharField(max_length=64)),
                ("entry_table", models.CharField(max_length=64)),
                ("entry_id", models.BigIntegerField()),
                ("version", models.CharField(max_length=8)),
                ("payload", models.TextField()),
                (
                    "queued_at",
                    models.DateTimeField(db_default=django.db.models.functions.datetime.Now()),
                ),
            ],
            options={
                "indexes": [
                    models.Index(fields=["entry_table", "entry_id"], name="sealqueue_entry")
                ],
            },
        ),
        migrations.RunSQL(forward_sql(), REVERSE_SQL),
    ]
