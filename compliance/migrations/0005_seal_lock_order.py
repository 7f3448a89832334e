"""Sealing takes the chain locks last: after every other deferred check of the transaction.

Before: one deferred trigger per audit row took the chain's advisory lock when it fired at
COMMIT, in the order the rows were written, so a transaction could hold a chain lock while its
later deferred foreign-key checks still waited for row locks of another transaction that in
turn waited for that chain lock (a booking against a configuration import holding the practice
row: a deadlock), and two transactions appending to two chains in opposite orders could deadlock
on the chain locks themselves.

Now, at COMMIT, in two rounds of PostgreSQL's deferred-trigger queue:
1. per audit row (the `..._seal` constraint triggers, same names and arguments as v1): compute
   the row's canonical payload and queue it in `compliance_sealqueue` (unlogged, transaction
   private: rows are deleted before the transaction ends). No lock. Foreign-key checks and every
   other deferred constraint of the transaction fire in this round too.
2. the queue rows' own deferred trigger was queued during round 1, so PostgreSQL fires it only
   after round 1 has finished: it takes every chain lock the transaction needs in sorted order,
   reads each chain's head once, hashes the entries in order and appends all seals with one
   INSERT. A chain-lock holder then waits for nothing but another chain lock taken in the same
   global order: no cycle is possible.

Hashes are computed exactly as in v1 (same payload, same digest): existing chains verify.
"""

import importlib

from django.db import migrations

# The v1 column lists and the v1 sealing trigger, frozen in 0003.
V1 = importlib.import_module("compliance.migrations.0003_audit_trail")

SEAL_SQL = r"""
CREATE UNLOGGED TABLE compliance_sealqueue (
    pos integer NOT NULL,
    chain text NOT NULL,
    entry_table text NOT NULL,
    entry_id bigint NOT NULL,
    version text NOT NULL,
    payload text NOT NULL
);

DROP TRIGGER compliance_accessevent_seal ON compliance_accessevent;
DROP TRIGGER compliance_changeentry_seal ON compliance_changeentry;
DROP FUNCTION compliance_audit_seal();

-- Round 1 (per audit row, at COMMIT): no lock, only the payload into the queue.
CREATE FUNCTION compliance_audit_enqueue() RETURNS trigger
LANGUAGE plpgsql
SET timezone = 'UTC'
AS $$
DECLARE
    n integer := coalesce(nullif(current_setting('compliance.sealqueue', true), ''), '0')::int + 1;
BEGIN
    PERFORM set_config('compliance.sealqueue', n::text, true);
    INSERT INTO compliance_sealqueue (pos, chain, entry_table, entry_id, version, payload)
    SELECT n,
           CASE WHEN NEW.practice_id IS NULL THEN 'global' ELSE 'practice:' || NEW.practice_id END,
           TG_TABLE_NAME, NEW.id, TG_ARGV[0],
           (SELECT jsonb_object_agg(key, value)::text FROM jsonb_each(to_jsonb(NEW))
             WHERE key = ANY(string_to_array(TG_ARGV[1], ',')));
    RETURN NULL;
END
$$;

-- Round 2 (fired after round 1 because round 1 queued it): chain locks in sorted order, one
-- head read per chain, one INSERT of every seal. Later firings for the same queue find it empty.
CREATE FUNCTION compliance_audit_seal_queue() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    q record;
    cur_chain text := NULL;
    head_seq bigint;
    head_hash bytea;
    digest bytea;
    chains text[] := '{}';
    seqs bigint[] := '{}';
    tables text[] := '{}';
    ids bigint[] := '{}';
    prevs bytea[] := '{}';
    hashes bytea[] := '{}';
    versions text[] := '{}';
BEGIN
    IF coalesce(current_setting('compliance.sealqueue', true), '') = '' THEN
        RETURN NULL;
    END IF;
    PERFORM set_config('compliance.sealqueue', '', true);
    PERFORM pg_advisory_xact_lock(hashtextextended('compliance.audit/' || c.chain, 0))
       FROM (SELECT DISTINCT chain FROM compliance_sealqueue ORDER BY chain) AS c;
    FOR q IN
        WITH taken AS (DELETE FROM compliance_sealqueue RETURNING *)
        SELECT * FROM taken ORDER BY chain, pos
    LOOP
        IF cur_chain IS DISTINCT FROM q.chain THEN
            cur_chain := q.chain;
            SELECT s.seq, s.hash INTO head_seq, head_hash
              FROM compliance_auditseal s WHERE s.chain = cur_chain ORDER BY s.seq DESC LIMIT 1;
            IF NOT FOUND THEN
                head_seq := 0;
                head_hash := '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea;
            END IF;
        END IF;
        head_seq := head_seq + 1;
        digest := sha256(convert_to(concat_ws('|', q.version, q.chain, head_seq::text,
                                              q.entry_table, q.entry_id::text,
                                              encode(head_hash, 'hex'), q.payload), 'UTF8'));
        chains := chains || q.chain;
        seqs := seqs || head_seq;
        tables := tables || q.entry_table;
        ids := ids || q.entry_id;
        prevs := prevs || head_hash;
        hashes := hashes || digest;
        versions := versions || q.version;
        head_hash := digest;
    END LOOP;
    INSERT INTO compliance_auditseal
           (chain, seq, entry_table, entry_id, prev_hash, hash, version, sealed_at)
    SELECT c, s, t, i, p, h, v, clock_timestamp()
      FROM unnest(chains, seqs, tables, ids, prevs, hashes, versions) AS u(c, s, t, i, p, h, v);
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER compliance_accessevent_seal
    AFTER INSERT ON compliance_accessevent DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION compliance_audit_enqueue('v1', '{access}');
CREATE CONSTRAINT TRIGGER compliance_changeentry_seal
    AFTER INSERT ON compliance_changeentry DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION compliance_audit_enqueue('v1', '{change}');
CREATE CONSTRAINT TRIGGER compliance_sealqueue_seal
    AFTER INSERT ON compliance_sealqueue DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION compliance_audit_seal_queue();
"""

REVERSE_SQL = """
DROP TRIGGER compliance_accessevent_seal ON compliance_accessevent;
DROP TRIGGER compliance_changeentry_seal ON compliance_changeentry;
DROP TABLE compliance_sealqueue;
DROP FUNCTION compliance_audit_seal_queue();
DROP FUNCTION compliance_audit_enqueue();
""" + V1.AUDIT_SQL[V1.AUDIT_SQL.index("CREATE OR REPLACE FUNCTION compliance_audit_seal()") :]


class Migration(migrations.Migration):
    dependencies = [("compliance", "0004_support_impersonation")]

    operations = [
        migrations.RunSQL(
            SEAL_SQL.replace("{access}", V1.ACCESS_COLUMNS_V1).replace(
                "{change}", V1.CHANGE_COLUMNS_V1
            ),
            REVERSE_SQL,
        )
    ]
