"""Benchmark the Nextech adapter against the Nextech sandbox (needs Redis: run via `make bench`).

1. Staff change to detection: a poll loop (one ``_lastUpdated`` search every ``--poll`` seconds,
   as the beat runs it) while the practice's staff book and cancel in Nextech at random moments;
   the lag is from the staff action to the poll that returns it (p50/p95, and its ratio to the
   poll period: about half a period plus one request is the floor of polling).
2. Time to a booked appointment through the adapter (patient search, live slot re-check, POST),
   one caller at a time, and the same with 30% 5xx and 20% lost answers switched on.
3. The rate governor under a burst: 8 threads x 25 reads of one endpoint; the most requests the
   sandbox saw in any second (must stay <= 20) and its 429s (must be 0).

    .venv/bin/python -m benchmarks.bench_nextech [--poll 2] [--changes 20] [--bookings 20]

Writes the figures to benchmarks/results/nextech.json.
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from benchmarks.harness import Results, environment, pct

environment()

from ehr.errors import EHRTransientError  # noqa: E402
from ehr.nextech.adapter import NextechAdapter  # noqa: E402
from ehr.nextech.client import NextechClient  # noqa: E402
from ehr.nextech.config import NextechConfig  # noqa: E402
from ehr.nextech.resources import BookingRequest, NewPatient  # noqa: E402
from ehr_sandbox.nextech.demo import DEMO_PRACTICE_ID, demo_practice  # noqa: E402
from ehr_sandbox.nextech.testing import NextechServer  # noqa: E402

TZ = ZoneInfo("America/Chicago")
PASSWORD = "bench-password"


def weekday_after(days: int) -> date:
    day = date.today() + timedelta(days=days)
    while day.weekday() > 4:
        day += timedelta(days=1)
    return day


def weekdays_from(days: int, count: int) -> list[date]:
    """``count`` distinct weekdays, the first at least ``days`` from today."""
    out = [weekday_after(days)]
    while len(out) < count:
        out.append(weekday_after((out[-1] - date.today()).days + 1))
    return out


def new_user(server: NextechServer) -> NextechConfig:
    username = f"bench-{uuid.uuid4().hex[:10]}@practice.example"
    server.admin(
        "POST",
        "/_admin/users",
        {"username": username, "password": PASSWORD, "practices": [DEMO_PRACTICE_ID]},
    )
    return NextechConfig(
        practice_id=DEMO_PRACTICE_ID,
        client_id=server.client_id,
        client_secret=server.client_secret,
        username=username,
        password=PASSWORD,
        api_base_url=server.api_url,
        token_url=server.token_url,
        health_key=f"bench-{uuid.uuid4().hex[:8]}",
    )


def staff_lag(server: NextechServer, poll: float, changes: int) -> tuple[list[float], int, int]:
    """Seconds from each staff action to the poll that saw it."""
    client = NextechClient(new_user(server))
    adapter = NextechAdapter(client)
    done_at: dict[str, float] = {}
    seen_at: dict[str, float] = {}
    stop = threading.Event()

    def poller() -> None:
        batch = adapter.changes_since(location_ids=["1"], cursor=None)
        cursor, seen = batch.cursor, batch.seen_at_cursor
        while not stop.is_set():
            began = time.monotonic()
            batch = adapter.changes_since(location_ids=["1"], cursor=cursor, seen_at_cursor=seen)
            now = time.monotonic()
            for appt in batch.appointments:
                seen_at.setdefault(f"{appt.id}:{appt.status}", now)
            cursor, seen = batch.cursor or cursor, batch.seen_at_cursor
            stop.wait(max(0.0, poll - (time.monotonic() - began)))

    thread = threading.Thread(target=poller, daemon=True)
    thread.start()
    day = weekday_after(3)
    rng = random.Random(7)  # noqa: S311 - timing dice
    for n in range(changes):
        time.sleep(rng.uniform(0, poll))
        start = datetime(day.year, day.month, day.day, 9, 0, tzinfo=TZ) + timedelta(minutes=15 * n)
        made = server.admin(
            "POST",
            f"/_admin/practices/{DEMO_PRACTICE_ID}/appointments",
            {"practitioner": "9325", "location": "1", "start": start.isoformat(), "force": True},
        ).json()
        done_at[f"{made['id']}:booked"] = time.monotonic()
        if n % 2:
            time.sleep(rng.uniform(0, poll))
            server.admin(
                "POST", f"/_admin/practices/{DEMO_PRACTICE_ID}/appointments/{made['id']}/cancel"
            )
            done_at[f"{made['id']}:cancelled"] = time.monotonic()
    deadline = time.monotonic() + 5 * poll
    while time.monotonic() < deadline and not set(done_at) <= set(seen_at):
        time.sleep(0.05)
    stop.set()
    thread.join(timeout=10)
    client.close()
    # A booking cancelled before the next poll is seen once, cancelled: overtaken, not lost.
    overtaken = [
        k for k in done_at if k not in seen_at and k.replace(":booked", ":cancelled") in seen_at
    ]
    lost = [k for k in done_at if k not in seen_at and k not in overtaken]
    return [seen_at[k] - done_at[k] for k in done_at if k in seen_at], len(overtaken), len(lost)


def bookings(server: NextechServer, count: int, *, faults: bool) -> tuple[list[float], int]:
    if faults:
        server.admin(
            "POST",
            "/_admin/faults",
            {
                "error_share": 0.3,
                "timeout_share": 0.2,
                "timeout_mode": "after",
                "timeout_seconds": 0.2,
            },
        )
    client = NextechClient(new_user(server), backoff_base=0.05, backoff_cap=0.5)
    adapter = NextechAdapter(client)
    times: list[float] = []
    days = weekdays_from(12 if faults else 5, count // 16 + 1)
    for n in range(count):
        day = days[n // 16]
        start = datetime(day.year, day.month, day.day, 8, 0, tzinfo=TZ) + timedelta(
            minutes=30 * (n % 16)
        )
        person = NewPatient(
            family=f"Bench{n}{'f' if faults else ''}",
            given="Pat",
            phone=f"312-555-{3000 + n}",
            email=f"b{n}@example.com",
        )
        request = BookingRequest(
            location_id="1",
            practitioner_id="9323",
            start=start,
            end=start + timedelta(minutes=30),
            appointment_type_id="32",
            new_patient=person,
        )
        began = time.monotonic()
        checked = False
        while True:  # as the booking task would retry: re-calling is safe
            try:
                if not checked:
                    checked = adapter.slot_is_free(request) or True
                adapter.create_appointment(request)
                break
            except EHRTransientError:
                continue
        times.append(time.monotonic() - began)
    server.admin("DELETE", "/_admin/faults")
    client.close()
    active = [
        a
        for a in server.admin("GET", f"/_admin/practices/{DEMO_PRACTICE_ID}/appointments").json()
        if any(p["actor"]["reference"].startswith("Patient/") for p in a["participant"])
        and a["status"] != "cancelled"
    ]
    return times, len(active)


def governor(server: NextechServer) -> dict[str, int]:
    config = new_user(server)
    client = NextechClient(config)
    adapter = NextechAdapter(client)
    adapter.locations()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: [adapter.locations() for _ in range(25)], range(8)))
    client.close()
    seen = server.admin("GET", "/_admin/rate_limits").json()["observed"][config.username]
    return dict(seen["GET /Location"])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--poll", type=float, default=2.0)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--bookings", type=int, default=20)
    args = parser.parse_args()
    record = Results("nextech")
    with NextechServer() as server:
        server.admin("POST", "/_admin/practices", demo_practice())
        lags, overtaken, lost = staff_lag(server, args.poll, args.changes)
        clean, clean_made = bookings(server, args.bookings, faults=False)
        stormy, storm_made = bookings(server, args.bookings, faults=True)
        burst = governor(server)
    result = {
        "poll_seconds": args.poll,
        "staff_change_to_detection_s": {
            "p50": pct(lags, 0.5),
            "p95": pct(lags, 0.95),
            "p95_over_poll_period": round(pct(lags, 0.95) / args.poll, 2),
            "changes_seen": len(lags),
            "overtaken_before_a_poll": overtaken,
            "lost": lost,
        },
        "booking_s": {"p50": pct(clean, 0.5), "p95": pct(clean, 0.95), "made": clean_made},
        "booking_under_faults_s": {
            "p50": pct(stormy, 0.5),
            "p95": pct(stormy, 0.95),
            "made": storm_made - clean_made,
            "asked": args.bookings,
        },
        "governor_burst": burst,
    }
    record.write(result, echo=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
