"""Benchmark the practice manager's scheduling pages (under 150 ms server time with a
practice holding 50,000 appointments).

Run by `make bench` (PORTAL_TESTING=1, inside scripts/services.py). It works in a throwaway
database of its own (created, migrated, dropped), in a dedicated practice: 40 providers, 80
rooms, 300 appointment types with 5 caller phrases, 2 EHR codes and 3 eligible providers each,
weekday working hours, 1,000 blocks and 50,000 appointments over a year around today.

Each page is requested through Django's test Client in this process with a warm connection
(the whole middleware stack: session, second factor, tenant scoping, auditlog), signed in as a
practice manager; server-side time, p50/p95 over --runs requests, and the SQL query count.

    .venv/bin/python -m benchmarks.bench_scheduling_pages [--runs 60]

Writes benchmarks/results/scheduling_pages.json.
"""

from __future__ import annotations

import os
import random
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from benchmarks import harness

harness.setup_django()

from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

TZ = ZoneInfo("America/Chicago")
PROVIDERS = 40
ROOMS = 80
TYPES = 300
APPOINTMENTS = 50_000
BLOCKS = 1_000
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]


def build(seed: int = 8) -> dict[str, Any]:

    from accounts.models import Location, Role
    from core.tenancy import cross_tenant
    from scheduling.models import (
        Appointment,
        AppointmentDescriptor,
        AppointmentType,
        Block,
        CallerPhrase,
        Operatory,
        Provider,
        WorkingHour,
    )

    rnd = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    practice, user = harness.practice_with_staff(
        f"bench-pages-{os.getpid()}", "Bench Pages", TZ.key, [Role.PRACTICE_MANAGER]
    )
    now = timezone.now()
    with cross_tenant("benchmark data setup"):
        location = Location.objects.create(practice=practice, key="main", name="Main")
        providers = Provider.objects.bulk_create(
            Provider(practice=practice, key=f"p{i}", name=f"Dr. {i:03d}") for i in range(PROVIDERS)
        )
        rooms = Operatory.objects.bulk_create(
            Operatory(practice=practice, location=location, key=f"o{i}", name=f"Room {i:03d}")
            for i in range(ROOMS)
        )
        codes = AppointmentDescriptor.objects.bulk_create(
            AppointmentDescriptor(practice=practice, location=location, code=f"D{1000 + i}")
            for i in range(60)
        )
        types = AppointmentType.objects.bulk_create(
            AppointmentType(practice=practice, key=f"t{i}", name=f"Visit type {i:03d}", minutes=30)
            for i in range(TYPES)
        )
        types[0].name = "Cleaning"
        types[0].save()
        CallerPhrase.objects.bulk_create(
            CallerPhrase(practice=practice, appointment_type=t, text=f"phrase {i} of {t.key}")
            for t in types
            for i in range(5)
        )
        CallerPhrase.objects.create(
            practice=practice, appointment_type=types[0], text="teeth cleaned"
        )
        through_p = AppointmentType.providers.through
        through_p.objects.bulk_create(
            through_p(appointmenttype_id=t.pk, provider_id=p.pk)
            for t in types
            for p in rnd.sample(providers, 3)
        )
        through_d = AppointmentType.descriptors.through
        through_d.objects.bulk_create(
            through_d(appointmenttype_id=t.pk, appointmentdescriptor_id=d.pk)
            for t in types
            for d in rnd.sample(codes, 2)
        )
        hours = WorkingHour.objects.bulk_create(
            WorkingHour(
                practice=practice,
                provider=p,
                operatory=rooms[i * 2],
                days=WEEKDAYS,
                begin=time(8),
                end=time(17),
            )
            for i, p in enumerate(providers)
        )
        through_h = WorkingHour.appointment_types.through
        through_h.objects.bulk_create(
            through_h(workinghour_id=h.pk, appointmenttype_id=t.pk)
            for h in hours
            for t in types[:20]
        )
        start = now - timedelta(days=182)

        def when() -> datetime:
            return start + timedelta(minutes=15 * rnd.randrange(365 * 96))  # UTC arithmetic

        appts = []
        for _ in range(APPOINTMENTS):
            i = rnd.randrange(PROVIDERS)
            s = when()
            appts.append(
                Appointment(
                    practice=practice,
                    location=location,
                    provider=providers[i],
                    operatory=rooms[i * 2],
                    appointment_type=types[rnd.randrange(20)],
                    start=s,
                    end=s + timedelta(minutes=30),
                )
            )
        Appointment.objects.bulk_create(appts, batch_size=5000)
        Block.objects.bulk_create(
            Block(
                practice=practice,
                location=location,
                provider=providers[rnd.randrange(PROVIDERS)],
                start=(s := when()),
                end=s + timedelta(hours=1),
                reason="Meeting",
            )
            for _ in range(BLOCKS)
        )
    with connection.cursor() as cur:
        cur.execute("ANALYZE")
    return {"practice": practice, "user": user, "types": types, "providers": providers}


def main() -> None:
    runs = harness.runs_argument(default=60)
    with harness.page_run("scheduling_pages", build) as run:
        world = run.world
        base = f"{run.base}/scheduling"
        provider = world["providers"][0]
        week = (timezone.now() + timedelta(days=7)).date().isoformat()
        pages = {
            "type_list": ("get", f"{base}/types/", {}),
            "type_list_page_7_filtered": ("get", f"{base}/types/?q=visit&bookable=yes&page=7", {}),
            "type_detail": ("get", f"{base}/types/{world['types'][0].pk}/", {}),
            "provider_list": ("get", f"{base}/providers/", {}),
            "provider_detail": ("get", f"{base}/providers/{provider.pk}/", {}),
            "week_grid": ("get", f"{base}/schedule/?show=provider-{provider.pk}&week={week}", {}),
            "console_htmx": (
                "post",
                f"{base}/console/",
                {
                    "data": {"utterance": "I need my teeth cleaned", "patient_status": "existing"},
                    "HTTP_HX_REQUEST": "true",
                },
            ),
        }
        results = harness.measure_pages(run.http, pages, runs)
    scenario = {
        "providers": PROVIDERS,
        "operatories": ROOMS,
        "appointment_types": TYPES,
        "appointments": APPOINTMENTS,
        "blocks": BLOCKS,
    }
    run.write(scenario, pages=results)


if __name__ == "__main__":
    main()
