"""Sealing at COMMIT with less work per audit row: the same two rounds, the same hashes.

0005's sealing cost about a third of a millisecond of PostgreSQL time for a request's two audit
rows, most of it in the two trigger functions: the payload filtered key by key out of
`to_jsonb(NEW)` through `jsonb_each` and re-aggregated; a `SET timezone` on every call; and in
round 2 a sequential scan (locks), a DELETE ... RETURNING and a sort of `compliance_sealqueue`,
whose deleted rows pile up between vacuums and made every later scan longer.

Now:
1. Round 1, per audit row (the `..._seal` triggers, same names and arguments): one function per
   table builds the payload with `jsonb_build_object` over the version's columns, generated into
   the function from the same frozen list (the same keys and values as before, so the same text
   and the same hash; the verifier recomputes it its own way); the time zone is set
   only when the session's is not UTC (Django's sessions are). The row goes into the queue, and
   out of it again at once (by its ctid): PostgreSQL fires the queue row's deferred trigger with
   the row version it inserted whatever happened to it later, so the queue holds no live rows and
   is never scanned. The row's chain is added to a transaction-local list.
2. Round 2, per queue row (fired after every round-1 trigger, as before): the first firing takes
   every chain lock on the list, in sorted order; each firing then reads its chain's head (index),
   hashes, and appends its seal. Seals come in the order the audit rows were written, as before.

The lock order argument of 0005 is unchanged: chain locks are taken in round 2 only, all of them
at its first firing, in one global order.
"""

import importlib

from django.db import migrations

# The v1 column lists, frozen in 0003; the 0005 functions, restored on reverse.
V1 = importlib.import_module("compliance.migrations.0003_audit_trail")
V5 = importlib.import_module("compliance.migrations.0005_seal_lock_order")

ENQUEUE = r"""
CREATE FUNCTION compliance_{table}_enqueue() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    chain text := CASE WHEN NEW.practice_id IS NULL THEN 'global'
                       ELSE 'practice:' || NEW.practice_id END;
    chains text := coalesce(current_setting('compliance.seal_chains', true), '');
    zone text := current_setting('TimeZone');
    payload text;
    queued tid;
BEGIN
    IF zone <> 'UTC' THEN
        PERFORM set_config('TimeZone', 'UTC', true);
    END IF;
    payload := jsonb_build_object({pairs})::text;
    IF zone <> 'UTC' THEN
        PERFORM set_config('TimeZone', zone, true);
    END IF;
    INSERT INTO compliance_sealqueue (pos, chain, entry_table, entry_id, version, payload)
    VALUES (0, chain, TG_TABLE_NAME, NEW.id, TG_ARGV[0], payload)
    RETURNING ctid INTO queued;
    DELETE FROM compliance_sealqueue WHERE ctid = queued;
    IF position(',' || chain || ',' IN ',' || chains || ',') = 0 THEN
        PERFORM set_config('compliance.seal_chains', chains || ',' || chain, true);
    END IF;
    RETURN NULL;
END
$$;
"""

SEAL_SQL = r"""
DROP TRIGGER compliance_accessevent_seal ON compliance_accessevent;
DROP TRIGGER compliance_changeentry_seal ON compliance_changeentry;
DROP TRIGGER compliance_sealqueue_seal ON compliance_sealqueue;
DROP FUNCTION compliance_audit_enqueue();
DROP FUNCTION compliance_audit_seal_queue();
{enqueue_access}{enqueue_change}
-- Round 2, per queue row: chain locks at the first firing (sorted), then this row's seal.
CREATE FUNCTION compliance_audit_seal_entry() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    chains text := coalesce(current_setting('compliance.seal_chains', true), '');
    head_seq bigint;
    head_hash bytea;
BEGIN
    IF chains <> '' THEN
        PERFORM set_config('compliance.seal_chains', '', true);
        PERFORM pg_advisory_xact_lock(hashtextextended('compliance.audit/' || c.chain, 0))
           FROM (SELECT DISTINCT chain FROM unnest(string_to_array(chains, ',')) AS u(chain)
                  WHERE chain <> '' ORDER BY chain) AS c;
    END IF;
    SELECT s.seq, s.hash INTO head_seq, head_hash
      FROM compliance_auditseal s WHERE s.chain = NEW.chain ORDER BY s.seq DESC LIMIT 1;
    IF NOT FOUND THEN
        head_seq := 0;
        head_hash := '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea;
    END IF;
    INSERT INTO compliance_auditseal
           (chain, seq, entry_table, entry_id, prev_hash, hash, version, sealed_at)
    VALUES (NEW.chain, head_seq + 1, NEW.entry_table, NEW.entry_id, head_hash,
            sha256(convert_to(concat_ws('|', NEW.version, NEW.chain, (head_seq + 1)::text,
                                        NEW.entry_table, NEW.entry_id::text,
                                        encode(head_hash, 'hex'), NEW.payload), 'UTF8')),
            NEW.version, clock_timestamp());
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER compliance_accessevent_seal
    AFTER INSERT ON compliance_accessevent DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION compliance_accessevent_enqueue('v1', '{access_columns}');
CREATE CONSTRAINT TRIGGER compliance_changeentry_seal
    AFTER INSERT ON compliance_changeentry DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION compliance_changeentry_enqueue('v1', '{change_columns}');
CREATE CONSTRAINT TRIGGER compliance_sealqueue_seal
    AFTER INSERT ON compliance_sealqueue DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION compliance_audit_seal_entry();
"""


def _pairs(columns: str) -> str:
    return ", ".join(f"'{c}', NEW.\"{c}\"" for c in columns.split(","))


def seal_sql() -> str:
    return SEAL_SQL.format(
        enqueue_access=ENQUEUE.format(table="accessevent", pairs=_pairs(V1.ACCESS_COLUMNS_V1)),
        enqueue_change=ENQUEUE.format(table="changeentry", pairs=_pairs(V1.CHANGE_COLUMNS_V1)),
        access_columns=V1.ACCESS_COLUMNS_V1,
        change_columns=V1.CHANGE_COLUMNS_V1,
    )


REVERSE_SQL = """
DROP TRIGGER compliance_accessevent_seal ON compliance_accessevent;
DROP TRIGGER compliance_changeentry_seal ON compliance_changeentry;
DROP TRIGGER compliance_sealqueue_seal ON compliance_sealqueue;
DROP FUNCTION compliance_accessevent_enqueue();
DROP FUNCTION compliance_changeentry_enqueue();
DROP FUNCTION compliance_audit_seal_entry();
DROP TABLE compliance_sealqueue;
""" + V5.SEAL_SQL.replace("{access}", V1.ACCESS_COLUMNS_V1).replace(
    "{change}", V1.CHANGE_COLUMNS_V1
).replace(
    """DROP TRIGGER compliance_accessevent_seal ON compliance_accessevent;
DROP TRIGGER compliance_changeentry_seal ON compliance_changeentry;
DROP FUNCTION compliance_audit_seal();
""",
    "",
)


class Migration(migrations.Migration):
    dependencies = [("compliance", "0006_audit_browser_indexes")]

    operations = [migrations.RunSQL(seal_sql(), REVERSE_SQL)]
