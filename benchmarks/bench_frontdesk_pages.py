"""Benchmark the front desk and compliance officer pages (under 150 ms server time with a
practice holding 50,000 appointments): the AI bookings list, the "needs attention" queue and
its polled status cell, and the BAA pages.

Run by `make bench` (PORTAL_TESTING=1, inside scripts/services.py). It works in a throwaway
database of its own (created, migrated, dropped), in a dedicated practice: 50,000 agent bookings
(encrypted demographics) over a year around today, 2% failed and unresolved (the queue), and
an executed BAA plus an amendment in draft.

Each page is requested through Django's test Client in this process with a warm connection
(the whole middleware stack), signed in as a member holding the front desk and compliance
officer roles; server-side time, p50/p95 over --runs requests, and the SQL query count.

    .venv/bin/python -m benchmarks.bench_frontdesk_pages [--runs 60]

Writes benchmarks/results/frontdesk_pages.json.
"""

from __future__ import annotations

import os
import random
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from benchmarks import harness

harness.setup_django()

from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

TZ = ZoneInfo("America/Denver")
BOOKINGS = 50_000
FAILED_SHARE = 0.02


def build(seed: int = 5) -> dict[str, Any]:

    from accounts.models import Location, Role
    from compliance import services as baa
    from core.tenancy import cross_tenant
    from scheduling.models import (
        AppointmentType,
        Booking,
        BookingStatus,
        Hold,
        HoldStatus,
        Operatory,
        Provider,
    )

    rnd = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    practice, user = harness.practice_with_staff(
        f"bench-desk-{os.getpid()}",
        "Bench Desk",
        TZ.key,
        [Role.FRONT_DESK, Role.COMPLIANCE_OFFICER],
    )
    first = baa.create_draft(practice, practice_signer_name="Dana Reyes")
    baa.execute(
        first,
        signed_pdf=b"%PDF-1.7\n" + b"0" * 200_000,
        executed_on=date(2026, 1, 5),
        effective_on=date(2026, 1, 5),
        practice_signer_name="Dana Reyes",
        hello_signer_name="Sam Hello",
    )
    baa.amend(first)
    now = timezone.now()
    with cross_tenant("benchmark data setup"):
        location = Location.objects.create(practice=practice, key="main", name="Main")
        providers = Provider.objects.bulk_create(
            Provider(practice=practice, key=f"p{i}", name=f"Dr. {i:03d}") for i in range(40)
        )
        rooms = Operatory.objects.bulk_create(
            Operatory(practice=practice, location=location, key=f"o{i}", name=f"Room {i:03d}")
            for i in range(40)
        )
        types = AppointmentType.objects.bulk_create(
            AppointmentType(practice=practice, key=f"t{i}", name=f"Visit type {i:03d}", minutes=30)
            for i in range(50)
        )
        start = now - timedelta(days=182)
        batch = 5000
        for offset in range(0, BOOKINGS, batch):
            holds, rows = [], []
            for _ in range(batch):
                i = rnd.randrange(40)
                s = start + timedelta(minutes=15 * rnd.randrange(365 * 96))
                holds.append(
                    Hold(
                        practice=practice,
                        appointment_type=types[rnd.randrange(50)],
                        provider=providers[i],
                        operatory=rooms[i],
                        location=location,
                        start=s,
                        end=s + timedelta(minutes=30),
                        expires_at=s,
                        status=HoldStatus.RELEASED,  # not claiming: no overlap checks needed
                    )
                )
            Hold.objects.bulk_create(holds)
            for n, hold in enumerate(holds):
                failed = rnd.random() < FAILED_SHARE
                rows.append(
                    Booking(
                        practice=practice,
                        hold=hold,
                        appointment_type_id=hold.appointment_type_id,
                        provider_id=hold.provider_id,
                        operatory_id=hold.operatory_id,
                        location=location,
                        start=hold.start,
                        end=hold.end,
                        status=BookingStatus.FAILED if failed else BookingStatus.CONFIRMED,
                        failure_reason="The slot was taken in the EHR." if failed else "",
                        idempotency_key=f"k{offset + n}",
                        request_fingerprint="0" * 64,
                        demographics={
                            "first_name": f"First{n}",
                            "last_name": f"Last{n}",
                            "date_of_birth": "1980-01-01",
                        },
                        reason="checkup",
                    )
                )
            Booking.objects.bulk_create(rows)
        failed_one = Booking.objects.filter(practice=practice, status="failed").first()
        upcoming = (
            Booking.objects.filter(practice=practice, status="confirmed", start__gt=now)
            .order_by("start")
            .first()
        )
    with connection.cursor() as cur:
        cur.execute("ANALYZE")
    return {
        "practice": practice,
        "user": user,
        "failed": failed_one,
        "upcoming": upcoming,
        "baa": first,
    }


def main() -> None:
    runs = harness.runs_argument(default=60)
    with harness.page_run("frontdesk_pages", build) as run:
        world, base = run.world, run.base
        failed = world["failed"].pk
        pages = {
            "bookings_today_and_upcoming": f"{base}/bookings/",
            "bookings_all_dates_page_40": f"{base}/bookings/?since=&page=40",
            "bookings_failed_in_a_month": (
                f"{base}/bookings/?status=failed&since={date.today()}"
                f"&until={date.today() + timedelta(days=30)}"
            ),
            "needs_attention": f"{base}/bookings/attention/",
            "needs_attention_page_20": f"{base}/bookings/attention/?page=20",
            "status_cell_htmx": f"{base}/bookings/{failed}/status/",
            "bookings_sorted_by_provider_page_40": (
                f"{base}/bookings/?since=&sort=-provider&page=40"
            ),
            "needs_attention_sorted_by_type": f"{base}/bookings/attention/?sort=type",
            "booking_detail": f"{base}/bookings/{world['upcoming'].pk}/",
            "booking_move": f"{base}/bookings/{world['upcoming'].pk}/move/",
            "booking_cancel_confirmation": f"{base}/bookings/{world['upcoming'].pk}/cancel/",
            "calls_sorted_by_outcome": f"{base}/calls/?sort=outcome",
            "dashboard": f"{base}/",
            "baa_list": f"{base}/compliance/baa/",
            "baa_detail": f"{base}/compliance/baa/{world['baa'].pk}/",
        }
        results = harness.measure_pages(
            run.http, {name: ("get", path, {}) for name, path in pages.items()}, runs
        )
        # Each page's server time as a ratio to the dashboard's in the same run: comparable
        # across machines and loads, where milliseconds are not.
        shell = results["dashboard"]["p50_ms"] or 1
        for figures in results.values():
            figures["p50_ratio_to_dashboard"] = round(figures["p50_ms"] / shell, 2)
    run.write({"bookings": BOOKINGS, "failed_unresolved": f"{FAILED_SHARE:.0%}"}, pages=results)


if __name__ == "__main__":
    main()
