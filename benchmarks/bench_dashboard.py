"""Benchmark the dashboard (charts + go-live checklist) and the manager's set-up pages (under
150 ms server time with a practice holding 50,000 appointments).

Run by `make bench` (PORTAL_TESTING=1, inside scripts/services.py). A throwaway database of its
own (created, migrated, dropped), one practice: 300 appointment types with phrases and EHR codes,
50,000 mirrored appointments, 50,000 agent bookings over 120 days (so ~12,500 in the dashboard's
30-day window, with confirmed / failed / pending mixes and 20 failure reasons), 5 EHR
connections with live health windows in Redis, 5,000 outbox rows, 40 API clients and 100 go-live
test scenarios.

Each page is requested through Django's test Client in this process with a warm connection (the
whole middleware stack), signed in as a practice manager; server-side time p50/p95 over --runs
requests and the SQL query count. "Run all" (100 scenarios through the intent resolver against
300 types) is measured separately with fewer runs: it is the one long action on these pages.

    .venv/bin/python -m benchmarks.bench_dashboard [--runs 40]

Writes benchmarks/results/dashboard.json.
"""

from __future__ import annotations

import os
import random
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from benchmarks import harness

harness.setup_django()

from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

TZ = ZoneInfo("America/Chicago")
TYPES = 300
PROVIDERS = 40
APPOINTMENTS = 50_000
BOOKINGS = 50_000
BOOKING_DAYS = 120
CONNECTIONS = 5
OUTBOX = 5_000
CLIENTS = 40
SCENARIOS = 100


def build(seed: int = 8) -> dict[str, Any]:
    from oauth2_provider.models import Application

    from accounts.models import Location, Role
    from core.tenancy import cross_tenant, tenant_context
    from ehr.health import Figure, HealthRecorder
    from ehr.models import ConnectionKind, ConnectionStatus, EHRConnection
    from scheduling.models import (
        ApiClient,
        Appointment,
        AppointmentDescriptor,
        AppointmentType,
        Booking,
        CallerPhrase,
        Hold,
        Operatory,
        OutboxMessage,
        Provider,
        TestScenario,
    )

    rnd = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    practice, user = harness.practice_with_staff(
        f"bench-dash-{os.getpid()}", "Bench", TZ.key, [Role.PRACTICE_MANAGER]
    )
    now = timezone.now()
    with cross_tenant("benchmark data setup"):
        locations = Location.objects.bulk_create(
            Location(practice=practice, key=f"loc{i}", name=f"Office {i}")
            for i in range(CONNECTIONS)
        )
        location = locations[0]
        providers = Provider.objects.bulk_create(
            Provider(practice=practice, key=f"p{i}", name=f"Dr. {i:03d}") for i in range(PROVIDERS)
        )
        rooms = Operatory.objects.bulk_create(
            Operatory(practice=practice, location=location, key=f"o{i}", name=f"Room {i:03d}")
            for i in range(PROVIDERS)
        )
        codes = AppointmentDescriptor.objects.bulk_create(
            AppointmentDescriptor(practice=practice, location=location, code=f"D{1000 + i}")
            for i in range(60)
        )
        types = AppointmentType.objects.bulk_create(
            AppointmentType(practice=practice, key=f"t{i}", name=f"Visit type {i:03d}", minutes=30)
            for i in range(TYPES)
        )
        CallerPhrase.objects.bulk_create(
            CallerPhrase(practice=practice, appointment_type=t, text=f"phrase {i} of visit {t.key}")
            for t in types[10:]  # ten types without phrases: the checklist lists them
            for i in range(5)
        )
        through_d = AppointmentType.descriptors.through
        through_d.objects.bulk_create(
            through_d(appointmenttype_id=t.pk, appointmentdescriptor_id=d.pk)
            for t in types
            for d in rnd.sample(codes, 2)
        )
        start = now - timedelta(days=182)
        Appointment.objects.bulk_create(
            (
                Appointment(
                    practice=practice,
                    location=location,
                    provider=providers[(i := rnd.randrange(PROVIDERS))],
                    operatory=rooms[i],
                    appointment_type=types[rnd.randrange(TYPES)],
                    start=(s := start + timedelta(minutes=15 * rnd.randrange(365 * 96))),
                    end=s + timedelta(minutes=30),
                    ehr_id=n + 1,  # mirrored from the EHR, as in a connected practice
                )
                for n in range(APPOINTMENTS)
            ),
            batch_size=5000,
        )
        holds = Hold.objects.bulk_create(
            (
                Hold(
                    practice=practice,
                    location=location,
                    provider=providers[(i := n % PROVIDERS)],
                    operatory=rooms[i],
                    appointment_type=types[n % TYPES],
                    start=(s := now + timedelta(minutes=30 * n)),
                    end=s + timedelta(minutes=30),
                    expires_at=now,
                    status="released",
                )
                for n in range(BOOKINGS)
            ),
            batch_size=5000,
        )
        reasons = [f"EHR refused the appointment: reason {k}" for k in range(20)]
        bookings = []
        for n, hold in enumerate(holds):
            roll = rnd.random()
            status = "confirmed" if roll < 0.85 else "failed" if roll < 0.95 else "pending"
            bookings.append(
                Booking(
                    practice=practice,
                    hold=hold,
                    location=location,
                    provider_id=hold.provider_id,
                    operatory_id=hold.operatory_id,
                    appointment_type_id=hold.appointment_type_id,
                    start=hold.start,
                    end=hold.end,
                    status=status,
                    idempotency_key=f"k{n}",
                    request_fingerprint=f"{n:064x}",
                    attempts=1 if rnd.random() < 0.9 else 3,
                    confirmed_at=now if status == "confirmed" else None,
                    failure_reason=rnd.choice(reasons) if status == "failed" else "",
                )
            )
        Booking.objects.bulk_create(bookings, batch_size=5000)
        with connection.cursor() as cur:  # spread creation over BOOKING_DAYS
            cur.execute(
                "UPDATE scheduling_booking SET created_at = now() - "
                "(random() * %s) * interval '1 day' WHERE practice_id = %s",
                [BOOKING_DAYS, practice.pk],
            )
        OutboxMessage.objects.bulk_create(
            (
                OutboxMessage(
                    practice=practice,
                    kind="process_booking",
                    booking_id=bookings[n].pk,
                    dispatched_at=None if n % 50 == 0 else now,
                )
                for n in range(OUTBOX)
            ),
            batch_size=5000,
        )
        for i in range(CLIENTS):
            app = Application.objects.create(
                name=f"bench {i}",
                client_type=Application.CLIENT_CONFIDENTIAL,
                authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
                client_secret=f"secret-{i}",
                hash_client_secret=False,
            )
            ApiClient.objects.create(
                practice=practice, application=app, name=f"Agent {i}", scopes=["availability:read"]
            )
        TestScenario.objects.bulk_create(
            TestScenario(
                practice=practice,
                sentence=f"I want phrase {i % 5} of visit {types[10 + i].key} please",
                expected_type=types[10 + i],
            )
            for i in range(SCENARIOS)
        )
    with tenant_context(practice):
        for i, loc in enumerate(locations):
            conn = EHRConnection.objects.create(
                practice=practice,
                location=loc,
                kind=ConnectionKind.SANDBOX,
                base_url="http://127.0.0.1:1",
                subdomain=f"bench{i}",
                api_key="k",
                status=ConnectionStatus.CONNECTED,
                last_successful_sync_at=now,
            )
            recorder = HealthRecorder(conn.health_key)
            for _ in range(200):
                recorder.record(
                    Figure.ATTEMPT, rnd.uniform(0.05, 0.5), "5xx" if rnd.random() < 0.02 else ""
                )
                recorder.record(Figure.FRESHNESS, rnd.uniform(0.1, 5), "webhooks")
    with connection.cursor() as cur:
        cur.execute("ANALYZE")
    return {"practice": practice, "user": user}


def main() -> None:
    runs = harness.runs_argument(default=40)
    with harness.page_run("dashboard", build) as run:
        base = run.base
        pages = {
            "dashboard": ("get", f"{base}/", {}),
            "golive": ("get", f"{base}/go-live/", {}),
            "api_clients": ("get", f"{base}/api-clients/", {}),
            "configuration": ("get", f"{base}/configuration/", {}),
            "configuration_download": ("get", f"{base}/configuration/download/", {}),
        }
        results = harness.measure_pages(run.http, pages, runs)
        run_all = harness.measure(
            run.http,
            "post",
            f"{base}/go-live/scenarios/run/",
            max(3, runs // 8),
            HTTP_HX_REQUEST="true",
        )
        run_all["scenarios"] = SCENARIOS
        run_all["ms_per_scenario_p50"] = round(run_all["p50_ms"] / SCENARIOS, 3)
        print(f"run_all_scenarios: {run_all}", flush=True)
    scenario = {
        "appointment_types": TYPES,
        "appointments": APPOINTMENTS,
        "bookings": BOOKINGS,
        "booking_days": BOOKING_DAYS,
        "ehr_connections": CONNECTIONS,
        "outbox_rows": OUTBOX,
        "api_clients": CLIENTS,
        "test_scenarios": SCENARIOS,
    }
    run.write(
        scenario,
        pages=results,
        run_all_scenarios=run_all,
        note="Run All is synchronous (htmx indicator); it is not a page-render target.",
    )


if __name__ == "__main__":
    main()
