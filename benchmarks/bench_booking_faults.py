"""Benchmark bookings confirmed while the caller is on the line, fault-free and in a fault storm.

One run, everything real (as `bench_bookings.py`): a throwaway database, the portal under
gunicorn receiving the EHR's signed webhooks, the sandbox as its own process, the booking
worker started exactly as `make run` starts it (pool and concurrency from the settings
BOOKING_WORKER_POOL / BOOKING_WORKER_CONCURRENCY, or --pool / --concurrency), and the outbox
relay running as beat would.

The same burst twice: fault-free, then while the sandbox answers 30% of calls with a 5xx and 8%
with a 16-second hang after the write landed (the lost answer), and drops, duplicates and
reorders webhooks. Reported: time from POST to `confirmed` (p50 / p95) for each, and the ratio
of the two p95s. Goals: under faults p95 <= 30 s and <= 60x the fault-free p95.

    .venv/bin/python -m benchmarks.bench_booking_faults [--burst 25] [--pool threads]

Writes benchmarks/results/booking_faults.json.
"""

from __future__ import annotations

import argparse
from typing import Any

from benchmarks.harness import Results, setup_django, summary

setup_django()

from django.conf import settings  # noqa: E402

# Importing it names the bookings queue (BOOKINGS_QUEUE) for this process and its servers.
from benchmarks.bench_bookings import (  # noqa: E402
    Desk,
    running_desk,
)

GOAL_P95_S = 30.0
GOAL_RATIO = 60.0
STORM = {
    "error_share": 0.30,
    "error_status": 503,
    "timeout_share": 0.08,
    "timeout_seconds": 16.0,
    "timeout_mode": "after",
    "webhook_drop_share": 0.25,
    "webhook_duplicate_share": 0.25,
    "webhook_reorder_window_ms": 500,
}


def burst(desk: Desk, count: int) -> dict[str, Any]:
    _, posted_s, sent, rows = desk.post_together(count, timeout=900)
    confirmed = [r for r in rows.values() if r.status == "confirmed"]
    failed = [r for r in rows.values() if r.status != "confirmed"]
    return {
        "bookings": count,
        "posted_in_s": round(posted_s, 2),
        "confirmed": len(confirmed),
        "failed": len(failed),
        "failure_reasons": sorted({(r.failure_reason or "")[:120] for r in failed}),
        "post_to_confirmed_s": summary(
            [r.confirmed_at.timestamp() - sent[r.pk] for r in confirmed], "s"
        ),
    }


def appointments_per_patient(desk: Desk) -> dict[str, int]:
    """The EHR's own count: every booking must be in it once."""
    data = desk.world.admin("GET", "/_admin/stats")
    return data.get("duplicates_detected", {})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--burst", type=int, default=25)
    parser.add_argument("--pool", default=settings.BOOKING_WORKER_POOL)
    parser.add_argument("--concurrency", type=int, default=settings.BOOKING_WORKER_CONCURRENCY)
    args = parser.parse_args()

    record = Results("booking_faults")
    with running_desk(args.concurrency, args.pool) as desk:
        burst(desk, 3)  # warm gunicorn, the worker and the EHR token
        calm = burst(desk, args.burst)
        print(f"fault-free: {calm['post_to_confirmed_s']}", flush=True)
        desk.world.admin("PATCH", "/_admin/faults", STORM)
        storm = burst(desk, args.burst)
        desk.world.admin("DELETE", "/_admin/faults")
        print(f"under faults: {storm['post_to_confirmed_s']}", flush=True)
        duplicates = appointments_per_patient(desk)
    calm_p95 = calm["post_to_confirmed_s"]["p95_s"]
    storm_p95 = storm["post_to_confirmed_s"]["p95_s"]
    ratio = storm_p95 / calm_p95 if calm_p95 else None
    result = {
        "scenario": {
            "booking_worker": f"pool {args.pool}, concurrency {args.concurrency}",
            "faults": STORM,
            "ehr_timeouts": settings.EHR_TIMEOUTS,
            "ehr_read_timeouts": settings.EHR_READ_TIMEOUTS,
        },
        "fault_free": calm,
        "under_faults": storm,
        "p95_ratio_faults_to_fault_free": round(ratio, 1) if ratio else None,
        "goals": {
            "p95_under_faults_s": GOAL_P95_S,
            "p95_ratio": GOAL_RATIO,
            "met": storm_p95 <= GOAL_P95_S and (ratio or 0) <= GOAL_RATIO,
        },
        "ehr_duplicates_detected": duplicates,
    }
    print(f"p95 ratio {result['p95_ratio_faults_to_fault_free']}; goals met: {result['goals']}")
    record.write(result)


if __name__ == "__main__":
    main()
