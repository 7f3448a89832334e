"""Benchmark the booking pipeline end to end: POST /api/v1/bookings -> `confirmed`.

Everything real (run by `make bench`: PORTAL_TESTING=1 inside scripts/services.py): a throwaway
PostgreSQL database of its own (created, migrated, dropped), the portal under gunicorn (the API
and the EHR's signed webhooks), the EHR sandbox as its own process (fault-free, NexHealth's
published rate limits, its default insertion delay), a real Celery worker, and the outbox relay
running as beat would (every second) next to the fast after-commit hand-over.

1. Latency: bookings one at a time (the voice agent's view of one call); from sending the POST to
   the booking turning `confirmed` (the EHR reported the insertion complete, by webhook or the
   polling fallback). p50 / p95; target p95 < 1.5 s. Also the stages: accepted (202), task
   posted to the EHR, insertion webhook received, confirmed.
2. Throughput: a burst of bookings at once; bookings per minute from the first POST to the last
   confirmation, and the sandbox's count of the most EHR calls in any window per bucket, which
   must stay within the EHR's limits.

    .venv/bin/python benchmarks/bench_bookings.py [--sequential 40] [--burst 120] [--concurrency 4]

Writes benchmarks/results/bookings.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time as clock
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("PORTAL_TESTING", "1")
QUEUE = f"bench-bookings-{uuid.uuid4().hex[:8]}"
os.environ["BOOKINGS_QUEUE"] = QUEUE  # this process, gunicorn and the worker use one queue

import django  # noqa: E402

django.setup()

import httpx  # noqa: E402
from django.conf import settings  # noqa: E402
from django.utils import timezone  # noqa: E402

from benchmarks.bench_api import Gunicorn  # noqa: E402
from benchmarks.pages import throwaway_database  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "bookings.json"
TZ = ZoneInfo("America/Los_Angeles")
KEY = "bench-bookings-key"
TARGET_P95_S = 1.5


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_s": round(statistics.median(values), 3),
        "p95_s": pct(values, 0.95),
        "max_s": round(max(values), 3),
    }


def weekdays_ahead(first: int, count: int) -> list[date]:
    day = timezone.now().astimezone(TZ).date() + timedelta(days=first)
    out: list[date] = []
    while len(out) < count:
        if day.weekday() < 5:
            out.append(day)
        day += timedelta(days=1)
    return out


class Desk:
    """The practice, connected to the sandbox with webhooks to gunicorn, and its API token."""

    def __init__(self, sandbox: Any, portal_url: str) -> None:
        from core.tenancy import tenant_context
        from ehr import services
        from scheduling.models import AppointmentType
        from tests.ehr.conftest import build_world
        from tests.receptionist_api.factories import api_client, token_for

        self.world = build_world(
            sandbox, api_key=KEY, public_url=portal_url, register_webhooks=True
        )
        self.portal_url = portal_url
        self.world.ok(
            "POST",
            "/working_hours",
            {
                "working_hour": {
                    "provider_id": self.world.provider_id,
                    "operatory_id": self.world.operatory_id,
                    "begin_time": "08:00",
                    "end_time": "18:00",
                    "days": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"],
                    "appointment_type_ids": [self.world.type_id],
                }
            },
            location_id=self.world.lid,
        )
        services.sync_connection(self.world.conn)
        with tenant_context(self.world.practice):
            self.cleaning = AppointmentType.objects.get(ehr_id=self.world.type_id)
            self.cleaning.bookable = True
            self.cleaning.save(update_fields=["bookable"])
            hours = self.cleaning.working_hours.get()
            self.provider_id, self.operatory_id = hours.provider_id, hours.operatory_id
        client, _ = api_client(self.world.practice)
        self.token, _ = token_for(client)
        self.starts = [
            datetime.combine(day, time(8), TZ) + timedelta(minutes=30 * i)
            for day in weekdays_ahead(2, 15)
            for i in range(20)
        ]
        self.used = 0

    def bodies(self, count: int) -> list[tuple[str, dict[str, Any]]]:
        """Holds on the next free slots, one new caller each (find-or-create in the EHR)."""
        from core.tenancy import tenant_context
        from scheduling.services import place_hold

        out = []
        with tenant_context(self.world.practice):
            for _ in range(count):
                n = self.used
                self.used += 1
                hold = place_hold(
                    self.world.practice,
                    appointment_type_id=self.cleaning.pk,
                    provider_id=self.provider_id,
                    operatory_id=self.operatory_id,
                    start=self.starts[n],
                )
                patient = {
                    "first_name": "Caller",
                    "last_name": f"Bench{n:04d}",
                    "date_of_birth": (date(1960, 1, 1) + timedelta(days=41 * n)).isoformat(),
                    "phone": f"+1213444{n:04d}",
                }
                body = {"hold_id": hold.pk, "patient": patient, "reason": "cleaning"}
                out.append((f"bench-{uuid.uuid4().hex}", {**body, "call_id": f"call-{n}"}))
        return out

    def post(self, http: httpx.Client, key: str, body: dict[str, Any]) -> tuple[int, float]:
        """(booking id, wall-clock time the POST was sent)."""
        sent = clock.time()
        response = http.post(
            "/api/v1/bookings",
            json=body,
            headers={"Authorization": f"Bearer {self.token}", "Idempotency-Key": key},
        )
        if response.status_code != 202:
            raise SystemExit(f"booking refused: {response.status_code} {response.text[:300]}")
        return int(response.json()["id"]), sent


def wait_confirmed(practice: Any, ids: list[int], timeout: float) -> dict[int, Any]:
    """Poll the database (not the API: no load of our own) until every booking is terminal."""
    from core.tenancy import tenant_context
    from scheduling.models import Booking

    deadline = clock.monotonic() + timeout
    while True:
        with tenant_context(practice):
            rows = {b.pk: b for b in Booking.objects.filter(pk__in=ids)}
        if all(b.status != "pending" for b in rows.values()) and len(rows) == len(ids):
            return rows
        if clock.monotonic() > deadline:
            left = sum(1 for b in rows.values() if b.status == "pending")
            raise SystemExit(f"{left} booking(s) still pending after {timeout:.0f} s")
        clock.sleep(0.01)


def insertion_webhooks(practice: Any) -> dict[int, float]:
    """EHR appointment id -> when its `appointment_insertion` webhook reached the portal."""
    from core.tenancy import tenant_context
    from ehr.models import WebhookDelivery

    with tenant_context(practice):
        rows = WebhookDelivery.objects.filter(event="appointment_insertion").values_list(
            "resource_ehr_id", "received_at"
        )
        return {int(rid): at.timestamp() for rid, at in rows if rid is not None}


def bench_latency(desk: Desk, runs: int) -> dict[str, Any]:
    bodies = desk.bodies(runs + 3)
    totals, accepted, webhook, after_webhook = [], [], [], []
    sent_at: dict[int, float] = {}
    with httpx.Client(base_url=desk.portal_url, timeout=30) as http:
        for i, (key, body) in enumerate(bodies):
            booking_id, sent = desk.post(http, key, body)
            answered = clock.time()
            [row] = wait_confirmed(desk.world.practice, [booking_id], timeout=60).values()
            if row.status != "confirmed":
                raise SystemExit(f"booking {booking_id} {row.status}: {row.failure_reason}")
            if i < 3:  # the first ones warm gunicorn, the worker and the EHR token
                continue
            sent_at[booking_id] = sent
            totals.append(row.confirmed_at.timestamp() - sent)
            accepted.append(answered - sent)
    from core.tenancy import tenant_context
    from scheduling.models import Booking

    received = insertion_webhooks(desk.world.practice)
    with tenant_context(desk.world.practice):
        for b in Booking.objects.filter(pk__in=sent_at):
            if b.ehr_appointment_id in received:
                webhook.append(received[b.ehr_appointment_id] - sent_at[b.pk])
                after_webhook.append(b.confirmed_at.timestamp() - received[b.ehr_appointment_id])
    return {
        "post_to_confirmed": {**summary(totals), "target_p95_s": TARGET_P95_S},
        "stages": {
            "post_to_202": summary(accepted),
            "post_to_insertion_webhook": summary(webhook) if webhook else None,
            "insertion_webhook_to_confirmed": summary(after_webhook) if after_webhook else None,
            "confirmed_by_webhook_first": sum(1 for d in after_webhook if d >= 0),
        },
    }


def bench_burst(desk: Desk, count: int) -> dict[str, Any]:
    bodies = desk.bodies(count)
    before = desk.world.admin("GET", "/_admin/stats")["rate_limits"]["observed"].get(KEY, {})
    calls_before = before.get("overall", {}).get("accepted", 0)
    began = clock.time()
    with (
        httpx.Client(base_url=desk.portal_url, timeout=60) as http,
        ThreadPoolExecutor(8) as pool,
    ):
        posted = list(pool.map(lambda item: desk.post(http, *item), bodies))
    posted_s = clock.time() - began
    rows = wait_confirmed(desk.world.practice, [b for b, _ in posted], timeout=300)
    confirmed = [r for r in rows.values() if r.status == "confirmed"]
    last = max(r.confirmed_at.timestamp() for r in confirmed)
    elapsed = last - began
    sent = dict(posted)
    stats = desk.world.admin("GET", "/_admin/stats")
    observed = stats["rate_limits"]["observed"].get(KEY, {})
    calls = observed.get("overall", {}).get("accepted", 0) - calls_before
    return {
        "bookings": count,
        "confirmed": len(confirmed),
        "posted_in_s": round(posted_s, 2),
        "first_post_to_last_confirmed_s": round(elapsed, 2),
        "bookings_per_minute": round(len(confirmed) / elapsed * 60, 1),
        "post_to_confirmed_under_load": summary(
            [r.confirmed_at.timestamp() - sent[r.pk] for r in confirmed]
        ),
        "ehr_calls": calls,
        "ehr_calls_per_booking": round(calls / count, 2),
        "ehr_rate_within_limits": all(b["max_observed"] <= b["limit"] for b in observed.values()),
        "ehr_max_observed": {
            name: {
                "max_observed": b["max_observed"],
                "limit": b["limit"],
                "window_s": b["window_seconds"],
            }
            for name, b in observed.items()
        },
        "ehr_429": stats["rate_limited_total"],
        "duplicates_detected": stats["duplicates_detected"],
        # The sandbox's webhook deliveries over the whole run (a failed attempt is retried on
        # NexHealth's schedule; a booking whose webhook never lands is confirmed by polling).
        "webhooks": stats.get("webhooks", {}),
    }


def relay_forever(stop: threading.Event) -> None:
    """What beat does (every BOOKING_RELAY_SECONDS): hand over anything the fast path missed."""
    from django.db import connection as conn

    from booking.services import relay_outbox

    try:
        while not stop.wait(1.0):
            relay_outbox()
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sequential", type=int, default=40)
    parser.add_argument("--burst", type=int, default=120)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args([a for a in sys.argv[1:] if a.startswith("--")])

    import logging

    for name in ("core.tenancy", "httpx", "integrations", "scheduling"):
        logging.getLogger(name).setLevel(logging.WARNING)
    from ehr_sandbox.testing import SandboxServer
    from tests.workers import celery_worker

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Settings may predate this module (`python -m benchmarks` runs every bench in one process).
    settings.INTEGRATIONS_QUEUES = {**settings.INTEGRATIONS_QUEUES, "bookings": QUEUE}
    load_at_start = os.getloadavg()
    stop = threading.Event()
    try:
        with throwaway_database("bench_bookings"), SandboxServer(api_keys=[KEY]) as sandbox:
            config = sandbox.admin("GET", "/_admin/config").json()
            server = Gunicorn()  # the deployment's gunicorn.conf.py
            try:
                desk = Desk(sandbox, server.url)
                env = {"BOOKINGS_QUEUE": QUEUE, "LOG_LEVEL": "WARNING"}
                with celery_worker(queues=QUEUE, concurrency=args.concurrency, extra_env=env):
                    relay = threading.Thread(target=relay_forever, args=(stop,), daemon=True)
                    relay.start()
                    latency = bench_latency(desk, args.sequential)
                    print(f"POST -> confirmed: {latency['post_to_confirmed']}", flush=True)
                    print(f"stages: {latency['stages']}", flush=True)
                    burst = bench_burst(desk, args.burst)
                    print(
                        f"burst of {args.burst}: {burst['bookings_per_minute']} bookings/min,"
                        f" EHR within limits: {burst['ehr_rate_within_limits']}",
                        flush=True,
                    )
                    stop.set()
                    relay.join(timeout=10)
            finally:
                server.stop()
    finally:
        stop.set()
    result = {
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_at_start": [round(x, 2) for x in load_at_start],
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "scenario": {
            "portal": "gunicorn with the repository's gunicorn.conf.py (as deployed)",
            "celery_worker": f"prefork, concurrency {args.concurrency}",
            "sandbox_insertion_delay_ms": config.get("insertion_delay_ms"),
            "ehr_limits": "NexHealth's published (100/s overall, 10/s GET /appointments, "
            "1,000/min patients+appointments)",
            "callers": "a new patient per booking (search, then create, in the EHR)",
        },
        "python": platform.python_version(),
        "latency": latency,
        "throughput": burst,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
