"""Benchmark the audit trail: write overhead, export of 1M entries, the audit browser at 10M.

Run by `make bench` (PORTAL_TESTING=1, inside scripts/services.py); `python -m benchmarks audit`
runs it alone. It works in a throwaway database of its own (created, migrated, dropped).

1. Write overhead per request, in CPU and as a ratio to one `SELECT 1` round trip measured in the
   same run: a request-like transaction that changes a configuration row, with and without its
   audit (one access event via `record()` and the auditlog change entry, both queued for the
   sealer; none is sealed on the request's path). The sealing lag (seal time minus write time)
   is measured under the concurrent writers with one `seal_audit --follow` loop (goal p95 < 5 s).
   Measured pairwise (audited minus unaudited, back to back), sequentially and with concurrent
   writers on the same chain; plus the SQL statements each adds. Also each kind of audited
   request alone, with one audit row: a PHI read (its access event) and a configuration change
   (its change entry).
2. Export of 1,000,000 entries (targets: first byte < 1 s, all < 10 s, peak RSS < 100 MB): the
   entries are written through the real sealing triggers (the chain verifies), then a separate
   process streams the CSV and JSON Lines exports to /dev/null; its own peak RSS is reported.
   Beside them, JSON Lines filtered to one action in five (the rest as stubs), as a ratio.
3. The audit browser at 10,000,000 entries (target < 200 ms): rows bulk-inserted with
   generate_series as the superuser (indexes dropped and rebuilt around the load; the sealing
   triggers are off, so these rows are unsealed: the page reads them all the same), then
   `GET /p/<slug>/compliance/audit/` through Django's test Client (warm) for each filter.

    .venv/bin/python benchmarks/bench_audit.py [--runs 300] [--export-rows 1000000]
                                               [--browser-rows 10000000] [--skip export,browser]

Writes benchmarks/results/audit.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time as clock
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("PORTAL_TESTING", "1")

import django  # noqa: E402

django.setup()

CHILD_FLAG = "--export-child"


def export_child(practice_id: int, fmt: str, action: str = "") -> None:
    """In its own process, as lean as a worker serving it (Django set up, nothing of the
    benchmark's own imports): stream the export to /dev/null, report timings and peak RSS."""
    from django.db import connection as db

    from compliance import export
    from core.tenancy import tenant_context

    def vm_hwm_mb() -> float:
        """Peak RSS of this process image (VmHWM; ru_maxrss would carry the parent's peak
        across fork and exec)."""
        with open("/proc/self/status") as f:
            line = next(x for x in f if x.startswith("VmHWM:"))
        return round(int(line.split()[1]) / 1024, 1)

    def backend_ns() -> int:
        with db.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            pid = cur.fetchone()[0]
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[0])

    start_rss = vm_hwm_mb()
    filters = export.AuditFilters(practice_id=practice_id, action=action)
    fields = {"exported_by": "bench", "request_id": "bench-export"}
    backend0, cpu0 = backend_ns(), clock.process_time()
    t0 = clock.perf_counter()
    first = first_row = None
    size = 0
    with open(os.devnull, "wb") as sink, tenant_context(practice_id):
        for chunk in export.stream(filters, fmt, fields):
            if first is None:
                first = clock.perf_counter() - t0
            if first_row is None and not chunk.startswith(b'{"manifest"'):
                first_row = clock.perf_counter() - t0  # JSON Lines' first chunk is its manifest
            size += len(chunk)
            sink.write(chunk)
    total = clock.perf_counter() - t0
    cpu = clock.process_time() - cpu0
    backend = (backend_ns() - backend0) / 1e9
    print(
        json.dumps(
            {
                "first_byte_s": round(first or total, 3),
                "first_row_s": round(first_row or total, 3),  # breakdown: first exported row
                "total_s": round(total, 3),
                "cpu_s": {"exporter": round(cpu, 2), "postgres_backend": round(backend, 2)},
                "bytes": size,
                "rss_after_django_setup_mb": start_rss,
                "peak_rss_mb": vm_hwm_mb(),
            }
        )
    )


if __name__ == "__main__" and len(sys.argv) in (4, 5) and sys.argv[1] == CHILD_FLAG:
    export_child(int(sys.argv[2]), sys.argv[3], *sys.argv[4:])
    sys.exit(0)

from django.conf import settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from benchmarks.harness import as_a_worker_once_loaded, throwaway_database  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "audit.json"
FILTERED_ACTION = "phi.export"  # one entry in five of the export's fill


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": round(statistics.median(values), 3),
        "p95_ms": pct(values, 0.95),
        "max_ms": round(max(values), 3),
    }


def superuser() -> Any:
    import psycopg

    url = settings.DATABASE_SUPERUSER_URL
    if not url:
        raise SystemExit("DATABASE_SUPERUSER_URL is needed (run inside scripts/services.py)")
    conninfo = psycopg.conninfo.make_conninfo(url, dbname=connection.settings_dict["NAME"])
    return psycopg.connect(conninfo, autocommit=True)


# --- 1. write overhead -----------------------------------------------------------------------


def backend_cpu_ns() -> int:
    """CPU time of this connection's PostgreSQL backend so far (same machine: /proc)."""
    pid = getattr(connection, "_bench_backend_pid", None)
    if pid is None or connection.connection is None:
        with connection.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            pid = cur.fetchone()[0]
        connection._bench_backend_pid = pid  # type: ignore[attr-defined]
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0])


def bench_writes(runs: int, writers: int) -> dict[str, Any]:
    """Wall time on a shared, busy box mostly measures the queue for its two cores, so each
    request is also measured in CPU time: this thread's (time.thread_time_ns) plus its
    PostgreSQL backend's (/proc/<pid>/schedstat), i.e. the work the audit adds."""
    import cProfile
    import io
    import pstats

    from auditlog.context import disable_auditlog

    from accounts.models import Location, Practice
    from compliance import audit
    from compliance.context import audit_context
    from compliance.models import AuditAction
    from core.tenancy import tenant_context

    practice = Practice.objects.create(slug="bench-writes", name="Bench writes")
    with tenant_context(practice):
        Location.objects.create(practice=practice, key="main", name="Main")

    phases: dict[str, list[float]] = {}

    backend_marks: list[int] = []

    def cpu_now() -> int:
        backend = backend_cpu_ns()
        backend_marks.append(backend)
        return clock.thread_time_ns() + backend

    def request(n: int, audited: bool, trace: str = "", kind: str = "both") -> tuple[float, float]:
        """One request's transaction: read a row, change it; audited or not. (wall, cpu) ms.
        With `trace`, the CPU of each phase goes to phases[<phase>] under that prefix.
        `kind`: "both" (an access event and a change entry: the headline), "read" (the row
        read and an access event recorded, nothing changed) or "change" (the row changed, so
        its change entry alone)."""
        backend_marks.clear()
        marks = [cpu_now()]
        t0 = clock.perf_counter()
        with tenant_context(practice):
            with transaction.atomic():
                location = Location.objects.get(practice=practice, key="main")
                # Each request really changes the row: the audited one of a pair follows the
                # unaudited one with the same n, and a name equal to the stored one would be no
                # change, so no change entry (auditlog writes none), only its read.
                location.name = f"Main {n}" + (" (audited)" if audited else "")
                marks.append(cpu_now())
                if audited and kind != "change":
                    audit.record(
                        AuditAction.PHI_READ,
                        practice=practice,
                        object_type="calls.transcript",
                        object_ids=[n, n + 1],
                        reason="bench",
                    )
                marks.append(cpu_now())
                if kind == "read":
                    pass
                elif audited:
                    location.save()
                else:
                    with disable_auditlog():
                        location.save()
                marks.append(cpu_now())
            marks.append(cpu_now())  # after COMMIT (sealing included)
        wall = (clock.perf_counter() - t0) * 1000
        cpu = (cpu_now() - marks[0]) / 1e6
        if trace:
            for k, a in (("record", 1), ("save", 2), ("commit", 3)):
                phases.setdefault(f"{trace}_{k}", []).append((marks[a + 1] - marks[a]) / 1e6)
                phases.setdefault(f"{trace}_{k}_backend", []).append(
                    (backend_marks[a + 1] - backend_marks[a]) / 1e6
                )
        return wall, cpu

    def pairs(count: int, offset: int, kind: str = "both") -> dict[str, list[float]]:
        out: dict[str, list[float]] = {k: [] for k in ("wall", "cpu", "base_wall", "base_cpu")}
        with audit_context(
            request_id="bench-req-0001", actor_user_id=1, actor_label="bench", ip="127.0.0.1"
        ):
            for i in range(count):
                bw, bc = request(offset + i, False, kind=kind)
                fw, fc = request(offset + i, True, kind=kind)
                out["base_wall"].append(bw)
                out["base_cpu"].append(bc)
                out["wall"].append(fw - bw)
                out["cpu"].append(fc - bc)
        return out

    pairs(30, 0)  # warm: connections, content types, id blocks, plans
    as_a_worker_once_loaded()
    with CaptureQueriesContext(connection) as plain:
        request(1, False)
    with CaptureQueriesContext(connection) as traced:
        request(2, True)
    plain_sql = [q["sql"][:100] for q in plain.captured_queries]
    audited_sql = [q["sql"][:100] for q in traced.captured_queries]

    # Calibration: what one trivial round trip costs on this box right now (CPU, wall), to
    # read the overhead in round trips when the machine is shared.
    trip_cpu, trip_wall = [], []
    for _ in range(runs):
        c0, t0 = cpu_now(), clock.perf_counter()
        with connection.cursor() as cur:
            cur.execute("SELECT 1")
            cur.fetchone()
        trip_wall.append((clock.perf_counter() - t0) * 1000)
        trip_cpu.append((cpu_now() - c0) / 1e6)

    sequential = pairs(runs, 100)
    # The two kinds of audited request alone, one audit row each: a PHI read (its access
    # event) and a configuration change (its change entry).
    single = {
        kind: pairs(runs, 40_000 + 1_000 * k, kind) for k, kind in enumerate(("read", "change"))
    }
    for i in range(runs):  # where the audit's CPU goes, phase by phase
        request(20_000 + i, False, trace="plain")
        request(20_000 + i, True, trace="audited")
    breakdown = {
        phase: round(
            statistics.median(phases[f"audited_{phase}"])
            - statistics.median(phases[f"plain_{phase}"]),
            3,
        )
        for phase in (
            "record",
            "save",
            "commit",
            "record_backend",
            "save_backend",
            "commit_backend",
        )
    }

    profiler = cProfile.Profile()
    with audit_context(request_id="bench-req-0002", actor_user_id=1, actor_label="bench"):
        profiler.enable()
        for i in range(100):
            request(10_000 + i, True)
        profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(20)
    print(text.getvalue()[:5000], flush=True)

    concurrent: dict[str, list[float]] = {"wall": [], "cpu": []}
    lock = threading.Lock()
    barrier = threading.Barrier(writers)

    def writer(k: int) -> None:
        try:
            barrier.wait(60)
            mine = pairs(max(20, runs // writers), 100_000 * (k + 1))
            with lock:
                concurrent["wall"].extend(mine["wall"])
                concurrent["cpu"].extend(mine["cpu"])
        finally:
            connection.close()

    # The sealer as a deployment runs it (`manage.py seal_audit --follow`, woken by NOTIFY),
    # beside the concurrent writers: how long an entry waits for its seal under that load.
    from compliance import sealer

    audit.seal_now()  # what the sequential phases queued (no sealer ran then)
    stop_sealer = threading.Event()

    def seal_loop() -> None:
        try:
            sealer.follow(stop=stop_sealer.is_set, idle_seconds=0.5)
        finally:
            connection.close()

    sealing = threading.Thread(target=seal_loop)
    sealing.start()
    lag_since = datetime.now(UTC)
    threads = [threading.Thread(target=writer, args=(k,)) for k in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    deadline = clock.monotonic() + 60
    while sealer.awaiting() and clock.monotonic() < deadline:
        clock.sleep(0.05)  # a benchmark's wait: the loop drains what the writers left
    stop_sealer.set()
    with tenant_context(practice):
        audit.record(AuditAction.PHI_READ, practice=practice, reason="wakes the sealer to stop")
    sealing.join(timeout=60)
    with superuser() as su:
        lags = [
            float(lag)
            for (lag,) in su.execute(
                "SELECT extract(epoch FROM s.sealed_at - e.occurred_at) * 1000 "
                "FROM compliance_accessevent e JOIN compliance_auditseal s "
                "ON s.entry_table = 'compliance_accessevent' AND s.entry_id = e.id "
                "WHERE e.practice_id = %s AND e.occurred_at >= %s",
                [practice.pk, lag_since],
            ).fetchall()
        ]
    with tenant_context(practice):
        report = audit.verify_chain(audit.chain_name(practice.pk))
    assert report.ok, report.first_break
    return {
        "what": "one request transaction (read + change a Location) with its access event and "
        "change entry (queued for the sealer, which seals after commit), minus the same "
        "transaction unaudited; pairwise, back to back. cpu = this thread + its PostgreSQL "
        "backend",
        "sequential": {
            "overhead_cpu_ms": summary(sequential["cpu"]),
            "overhead_wall_ms": summary(sequential["wall"]),
            "unaudited_request_cpu_ms": summary(sequential["base_cpu"]),
            "unaudited_request_wall_ms": summary(sequential["base_wall"]),
        },
        "one_audit_row_per_request": {
            "what": "the same transaction with one audit row: a read that records its access "
            "event (nothing changed), or a change with its change entry (no access event)",
            "phi_read_access_event": {
                "overhead_cpu_ms": summary(single["read"]["cpu"]),
                "overhead_wall_ms": summary(single["read"]["wall"]),
            },
            "configuration_change_entry": {
                "overhead_cpu_ms": summary(single["change"]["cpu"]),
                "overhead_wall_ms": summary(single["change"]["wall"]),
            },
        },
        f"concurrent_{writers}_writers_one_chain": {
            "overhead_cpu_ms": summary(concurrent["cpu"]),
            "overhead_wall_ms": summary(concurrent["wall"]),
        },
        "overhead_cpu_ms_by_phase_p50": {
            "record_access_event": breakdown["record"],
            "auditlog_change_entry_in_save": breakdown["save"],
            "commit": breakdown["commit"],
            "of_which_postgres_backend": {
                "record_access_event": breakdown["record_backend"],
                "auditlog_change_entry_in_save": breakdown["save_backend"],
                "commit": breakdown["commit_backend"],
            },
        },
        "calibration_select_1_round_trip": {
            "cpu_ms": summary(trip_cpu),
            "wall_ms": summary(trip_wall),
        },
        "overhead_in_round_trips_p50": round(
            statistics.median(sequential["cpu"]) / statistics.median(trip_cpu), 1
        ),
        "overhead_in_round_trips_p95": round(
            pct(sequential["cpu"], 0.95) / statistics.median(trip_cpu), 1
        ),
        "overhead_wall_in_select_1_round_trips_p50": round(
            statistics.median(sequential["wall"]) / statistics.median(trip_wall), 1
        ),
        "statements_added_by_audit": len(audited_sql) - len(plain_sql),
        "sealing_lag_ms_under_concurrent_writers": {
            "what": "sealed_at minus occurred_at of each access event written by the "
            f"{writers} concurrent writers, sealed by one `seal_audit --follow` loop",
            **summary(lags),
            "entries": len(lags),
            "goal_p95_ms": 5000,
        },
        "statements_unaudited": plain_sql,
        "statements_audited": audited_sql,
        "chain_entries_verified": report.entries,
        "goal_statements_added_at_most": 2,
    }


# --- 2. export of 1M entries -----------------------------------------------------------------


def fill_sealed(practice_id: int, rows: int) -> float:
    """`rows` access events bulk-inserted as the superuser (sealing triggers off), then sealed
    onto the practice's chain exactly as the trigger would have: payloads read back as
    PostgreSQL's jsonb text (as the verifier reads them), hashes chained in Python, seals
    COPied in. `verify_chain` checks the result. Returns seconds."""
    from compliance import audit

    chain = audit.chain_name(practice_id)
    columns = list(audit.SEALED_COLUMNS["v1"]["compliance_accessevent"])
    t0 = clock.perf_counter()
    with superuser() as su, superuser() as writer:
        su.execute("SET session_replication_role = replica")
        su.execute(
            """
            INSERT INTO compliance_accessevent
                (occurred_at, practice_id, action, actor_user_id, actor_label, api_client_id,
                 object_type, object_ids, request_id, ip, user_agent, reason, details)
            SELECT now() - make_interval(secs => (%(n)s - g) * 7), %(p)s,
                   (ARRAY['phi.read','phi.read','phi.read','phi.export','login'])[1 + g %% 5],
                   1 + g %% 40, 'user' || (1 + g %% 40) || '@bench.test', '',
                   'calls.transcript', ARRAY[(g * 3)::text, (g * 3 + 1)::text],
                   'req-' || lpad(to_hex(g), 12, '0'), '10.0.0.1', 'bench/1.0',
                   CASE WHEN g %% 9 = 0 THEN 'callback, "quoted", line' ELSE '' END,
                   jsonb_build_object('n', g)
            FROM generate_series(1, %(n)s) AS g
            """,
            {"n": rows, "p": practice_id},
        )
        su.execute("ANALYZE compliance_accessevent")
        head = su.execute(
            "SELECT seq, hash FROM compliance_auditseal WHERE chain = %s ORDER BY seq DESC LIMIT 1",
            [chain],
        ).fetchone()
        seq, prev = (int(head[0]), bytes(head[1])) if head else (0, audit.GENESIS)
        su.execute("SET timezone = 'UTC'")
        su.autocommit = False
        with (
            su.cursor(name="bench_payloads") as read,
            writer.cursor().copy(
                "COPY compliance_auditseal (chain, seq, entry_table, entry_id, prev_hash, hash, "
                "version, sealed_at) FROM STDIN"
            ) as copy,
        ):
            read.itersize = 20_000
            read.execute(
                "SELECT e.id, (SELECT jsonb_object_agg(key, value) FROM jsonb_each(to_jsonb(e)) "
                "WHERE key = ANY(%s))::text FROM compliance_accessevent e "
                "WHERE e.practice_id = %s AND e.actor_label LIKE 'user%%@bench.test' "
                "ORDER BY e.id",
                [columns, practice_id],
            )
            sealed_at = datetime.now(UTC)
            for entry_id, payload in read:
                seq += 1
                digest = audit._digest(
                    "v1", chain, seq, "compliance_accessevent", entry_id, prev, payload
                )
                copy.write_row(
                    (chain, seq, "compliance_accessevent", entry_id, prev, digest, "v1", sealed_at)
                )
                prev = digest
        su.commit()
    return clock.perf_counter() - t0


def child_env() -> dict[str, str]:
    db = settings.DATABASES["default"]
    user, password = quote(db["USER"], safe=""), quote(db["PASSWORD"] or "", safe="")
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://{user}:{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
    }


def bench_export(rows: int) -> dict[str, Any]:
    from accounts.models import Practice
    from compliance import audit
    from core.tenancy import tenant_context

    practice = Practice.objects.create(slug="bench-export", name="Bench export")
    fill_s = fill_sealed(practice.pk, rows)
    print(f"export: {rows} entries written and sealed in {fill_s:.1f}s", flush=True)
    with superuser() as su:
        su.execute("VACUUM ANALYZE compliance_accessevent")
        su.execute("VACUUM ANALYZE compliance_auditseal")
    seq, _ = audit.chain_head(practice.pk)
    from compliance import export

    sql, values = export.projection(export.AuditFilters(practice_id=practice.pk))
    with tenant_context(practice), connection.cursor() as cur:
        cur.execute(f"EXPLAIN SELECT * FROM ({sql}) AS audit", values)  # noqa: S608
        plan = [row[0] for row in cur.fetchall()]
    result: dict[str, Any] = {
        "entries": rows,
        "chain_head_seq": seq,
        "bulk_written_and_sealed_s": round(fill_s, 1),
        "targets": {"first_byte_s": 1, "total_s": 10, "peak_rss_mb": 100},
        "plan": plan,
    }
    connection.close()

    def child(fmt: str, *action: str) -> dict[str, Any]:
        out = subprocess.run(  # noqa: S603 - this very script, fixed arguments
            [sys.executable, __file__, CHILD_FLAG, str(practice.pk), fmt, *action],
            env=child_env(),
            capture_output=True,
            text=True,
            check=True,
        )
        measured: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"export {fmt} {' '.join(action)}: {measured}", flush=True)
        return measured

    for fmt in ("csv", "jsonl"):
        result[fmt] = child(fmt)
    # Filtered to one action in five: the rest go out as stubs (chain position and hash) so
    # the file still proves its chain whole. Its cost as a ratio to the unfiltered export.
    filtered = child("jsonl", FILTERED_ACTION)
    result["jsonl_filtered"] = {
        "action": FILTERED_ACTION,
        **filtered,
        "ratio_to_unfiltered": {
            key: round(filtered[key] / result["jsonl"][key], 2) for key in ("bytes", "total_s")
        }
        | {
            f"{side}_cpu_s": round(filtered["cpu_s"][side] / result["jsonl"]["cpu_s"][side], 2)
            for side in ("exporter", "postgres_backend")
        },
    }
    t0 = clock.perf_counter()
    with tenant_context(practice):
        report = audit.verify_chain(audit.chain_name(practice.pk))
    result["verify_chain_s"] = round(clock.perf_counter() - t0, 1)
    result["chain_verifies"] = report.ok
    result["chain_entries_verified"] = report.entries  # the practice's set-up entries + rows
    result["first_break"] = str(report.first_break or "")
    return result


# --- 3. the audit browser at 10M rows --------------------------------------------------------

AUDIT_TABLES = ("compliance_accessevent", "compliance_changeentry")


def fill_bulk(practice_id: int, rows: int, content_types: list[int]) -> float:
    """`rows` entries (1 in 10 a change entry) as the superuser, sealing triggers off, with the
    secondary indexes dropped during the load and rebuilt after (as a restore would)."""
    t0 = clock.perf_counter()
    changes = rows // 10
    access = rows - changes
    with superuser() as su:
        defs = su.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s) "
            "AND indexname NOT LIKE '%%pkey'",
            [list(AUDIT_TABLES)],
        ).fetchall()
        su.execute("SET session_replication_role = replica")  # no sealing triggers
        su.execute("SET maintenance_work_mem = '512MB'")
        for name, _ in defs:
            su.execute(f'DROP INDEX "{name}"')
        step = 1_000_000
        for lo in range(1, access + 1, step):
            hi = min(access, lo + step - 1)
            su.execute(
                """
                INSERT INTO compliance_accessevent
                    (occurred_at, practice_id, action, actor_user_id, actor_label, api_client_id,
                     object_type, object_ids, request_id, ip, user_agent, reason, details)
                SELECT now() - make_interval(secs => (%(n)s - g) * 6),
                       %(p)s,
                       (ARRAY['phi.read','phi.read','phi.read','phi.read','phi.export',
                              'login','2fa.verified','2fa.failed','audit.export',
                              'impersonation.start'])[1 + g %% 10],
                       CASE WHEN g %% 4 = 0 THEN NULL ELSE 1 + g %% 200 END,
                       CASE WHEN g %% 4 = 0 THEN '' ELSE 'user' || (1 + g %% 200) || '@bench.test'
                       END,
                       CASE WHEN g %% 4 = 0 THEN 'voice-agent-' || (g %% 3) ELSE '' END,
                       (ARRAY['calls.transcript','scheduling.patient','calls.call',
                              'scheduling.booking'])[1 + (g / 10) %% 4],
                       ARRAY[g::text], 'req-' || lpad(to_hex(g), 12, '0'), '10.0.0.1',
                       'bench/1.0', '', '{}'::jsonb
                FROM generate_series(%(lo)s, %(hi)s) AS g
                """,
                {"n": access, "p": practice_id, "lo": lo, "hi": hi},
            )
        su.execute(
            """
            INSERT INTO compliance_changeentry
                (content_type_id, object_pk, object_id, object_repr, action, changes_text,
                 changes, actor_id, cid, timestamp, actor_email, practice_id, api_client_id)
            SELECT (%(cts)s::int[])[1 + g %% cardinality(%(cts)s::int[])], g::text, g,
                   'row ' || g, g %% 3, '', jsonb_build_object('name', jsonb_build_array('a','b')),
                   1 + g %% 200, 'req-' || lpad(to_hex(g), 12, '0'),
                   now() - make_interval(secs => (%(n)s - g) * 60),
                   'user' || (1 + g %% 200) || '@bench.test', %(p)s, ''
            FROM generate_series(1, %(n)s) AS g
            """,
            {"n": changes, "p": practice_id, "cts": content_types},
        )
        for _, definition in defs:
            su.execute(definition)
        for table in AUDIT_TABLES:
            su.execute(f"VACUUM ANALYZE {table}")
    return clock.perf_counter() - t0


def officer_client(practice: Any) -> Any:
    from django.test import Client
    from django_otp.oath import totp
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from accounts.models import Membership, Role, User

    user = User.objects.create_user(username="officer@bench.test", password="x" * 20)
    Membership.objects.create(user=user, practice=practice, role=Role.COMPLIANCE_OFFICER)
    device = TOTPDevice.objects.create(user=user, name="bench", confirmed=True)
    client = Client()
    client.force_login(user)
    token = f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"
    response = client.post("/accounts/2fa/verify/", {"token": token})
    assert response.status_code == 302, response.content[:300]
    return client


def plan_of(practice: Any, params: dict[str, str]) -> dict[str, Any]:
    """EXPLAIN ANALYZE of the page's query: its execution time and the scans it uses."""
    from compliance import export
    from compliance.forms import AuditFilterForm
    from core.tenancy import tenant_context

    filters = AuditFilterForm(params or None).filters(practice.pk, practice.tz)
    sql, values = export.page_query(filters, params.get("before", ""))
    with tenant_context(practice), connection.cursor() as cur:
        cur.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", values)
        plan = cur.fetchone()[0]
    plan = plan[0] if isinstance(plan, list) else json.loads(plan)[0]
    scans: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        if "Scan" in node["Node Type"]:
            scans.append(f"{node['Node Type']} {node.get('Index Name', node.get('Relation Name'))}")
        for child in node.get("Plans", []):
            walk(child)

    walk(plan["Plan"])
    return {"sql_execution_ms": round(plan["Execution Time"], 3), "scans": sorted(set(scans))}


def bench_browser(rows: int, runs: int) -> dict[str, Any]:
    from django.contrib.contenttypes.models import ContentType

    from accounts.models import Practice
    from compliance import audit
    from compliance.models import AuditAction
    from core.tenancy import tenant_context

    practice = Practice.objects.create(slug="bench-browser", name="Bench browser")
    content_types = [
        ContentType.objects.get_by_natural_key(app, model).pk
        for app, model in (
            ("portal", "location"),
            ("scheduling", "appointmenttype"),
            ("scheduling", "provider"),
            ("scheduling", "hold"),
            ("scheduling", "booking"),
        )
    ]
    fill_s = fill_bulk(practice.pk, rows, content_types)
    print(f"browser: {rows} entries loaded (indexes rebuilt) in {fill_s:.0f}s", flush=True)
    audit.record(AuditAction.PHI_READ, practice=practice, reason="newest, sealed")
    client = officer_client(practice)
    base = f"/p/{practice.slug}/compliance/audit/"
    with tenant_context(practice), connection.cursor() as cur:  # a cursor mid-way down the log
        cur.execute(
            "SELECT occurred_at FROM compliance_accessevent WHERE practice_id = %s "
            "ORDER BY occurred_at DESC LIMIT 1 OFFSET %s",
            [practice.pk, rows // 2],
        )
        deep_time = cur.fetchone()[0]
    deep_cursor = f"{deep_time.isoformat()}|access|{2**62}"
    today = deep_time.date()
    cases = {
        "newest": {},
        "deep_page_middle_of_log": {"before": deep_cursor},
        "action_phi_read": {"action": "phi.read"},
        "action_rare_impersonation_start": {"action": "impersonation.start"},
        "action_prefix_2fa": {"action": "2fa."},
        "changes_only": {"action": "change."},
        "change_update": {"action": "change.update"},
        "actor_user_id": {"actor": "17"},
        "actor_label": {"actor": "user17@bench.test"},
        "actor_api_client": {"actor": "voice-agent-1"},
        "object_type_access": {"object_type": "scheduling.booking"},
        "object_type_change": {"object_type": "scheduling.hold"},
        "one_day": {"since": str(today - timedelta(days=1)), "until": str(today)},
        "one_day_actor_and_action": {
            "since": str(today - timedelta(days=1)),
            "until": str(today),
            "actor": "14",  # user 14 reads PHI (rows g = 13 mod 200)
            "action": "phi.read",
        },
    }
    out: dict[str, Any] = {}
    for name, params in cases.items():
        for _ in range(3):  # warm
            response = client.get(base, params)
            assert response.status_code == 200, (name, response.status_code)
        timings = []
        for _ in range(runs):
            t0 = clock.perf_counter()
            response = client.get(base, params)
            timings.append((clock.perf_counter() - t0) * 1000)
        shown = response.content.decode().count("<tr>") - 1
        with CaptureQueriesContext(connection) as captured:
            client.get(base, params)
        out[name] = {
            **summary(timings),
            "rows_shown": max(shown, 0),
            "queries": len(captured.captured_queries),
            **plan_of(practice, params),
        }
        print(f"browser {name}: {out[name]}", flush=True)
    return {
        "entries": rows,
        "loaded_in_s": round(fill_s),
        "target_ms": 200,
        "timing": "server side, Django test Client (whole view: session, 2FA, tenant, render)",
        "cases": out,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--export-rows", type=int, default=1_000_000)
    parser.add_argument("--browser-rows", type=int, default=10_000_000)
    parser.add_argument("--browser-runs", type=int, default=20)
    parser.add_argument("--skip", default="", help="comma-separated: writes,export,browser")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))

    import logging

    logging.getLogger("core.tenancy").setLevel(logging.WARNING)
    load_at_start = os.getloadavg()
    result: dict[str, Any] = {}
    with throwaway_database("bench_audit"):  # dropped with its rows
        if "writes" not in skip:
            result["write_overhead"] = bench_writes(args.runs, args.writers)
            print(f"writes: {json.dumps(result['write_overhead'], indent=1)}", flush=True)
        if "export" not in skip:
            result["export"] = bench_export(args.export_rows)
        if "browser" not in skip:
            result["browser"] = bench_browser(args.browser_rows, args.browser_runs)
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for part in ("write_overhead", "export", "browser"):  # a skipped part keeps its last figures
        if part not in result and part in previous:
            result[part] = previous[part]
    result = {
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_at_start": [round(x, 2) for x in load_at_start],
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "python": platform.python_version(),
        **result,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
