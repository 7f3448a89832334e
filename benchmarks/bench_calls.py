"""Benchmark the calls pages and API: the staff list of a practice with 20,000 calls
(plain, filtered by outcome and day, by caller phone through the blind index, a deep page), a
call, a reveal, and the voice agent's PUT of a 40-turn transcript. Target: p95 under 150 ms of
server time per page, the list's query count independent of its size.

Run by `make bench` (PORTAL_TESTING=1, inside scripts/services.py). It works in a throwaway
database of its own (created, migrated, dropped). Requests go through Django's test Client in
this process with a warm connection (the whole middleware stack), signed in as front desk.

    .venv/bin/python benchmarks/bench_calls.py [--runs 60]

Writes benchmarks/results/calls.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time as clock
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("PORTAL_TESTING", "1")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from benchmarks.pages import measure, signed_in, throwaway_database  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "calls.json"
CALLS = 20_000
WITH_TRANSCRIPT = 5_000
TARGET_MS = 150
TURNS = [
    {
        "speaker": "caller" if i % 2 else "agent",
        "text": f"turn {i}: I would like to book a cleaning next week if possible, thanks.",
        "at": "2026-05-04T10:00:00-07:00",
    }
    for i in range(40)
]


def build(seed: int = 7) -> dict[str, Any]:
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from accounts.models import Membership, Practice, Role, User
    from calls.models import Call, CallOutcome
    from core.tenancy import cross_tenant
    from scheduling.services import create_api_client
    from tests.factories import sign_baa

    rnd = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    practice = Practice.objects.create(
        slug=f"bench-calls-{os.getpid()}", name="Bench Calls", timezone="America/Chicago"
    )
    sign_baa(practice)
    user = User.objects.create_user(username=f"bench-{os.getpid()}@example.test", password="x")
    TOTPDevice.objects.create(user=user, name="bench", confirmed=True)
    Membership.objects.create(user=user, practice=practice, role=Role.FRONT_DESK)
    outcomes = [o for o in CallOutcome.values if o != CallOutcome.IN_PROGRESS]
    now = timezone.now()
    with cross_tenant("benchmark data setup"):
        rows = [
            Call(
                practice=practice,
                external_id=f"bench-{i}",
                started_at=now - timedelta(minutes=13 * i),
                caller_phone=f"+1555{rnd.randrange(10**7):07d}",
                outcome=rnd.choice(outcomes),
                transcript=TURNS if i < WITH_TRANSCRIPT else None,
                transcript_turns=len(TURNS) if i < WITH_TRANSCRIPT else 0,
                transcript_received_at=now if i < WITH_TRANSCRIPT else None,
            )
            for i in range(CALLS)
        ]
        Call.objects.bulk_create(rows, batch_size=2000)
        client, _secret = create_api_client(practice, "bench agent", ["calls:write"])
    with connection.cursor() as cur:
        cur.execute("ANALYZE")
    return {"practice": practice, "user": user, "calls": rows, "client": client}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=60)
    args = parser.parse_args([a for a in sys.argv[1:] if a.startswith("--")])

    import logging

    logging.getLogger("core.tenancy").setLevel(logging.WARNING)
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    load_at_start = os.getloadavg()
    with throwaway_database("bench_calls"):
        from tests.receptionist_api.factories import token_for

        t0 = clock.perf_counter()
        world = build()
        setup_s = clock.perf_counter() - t0
        http = signed_in(world["user"])
        base = f"/p/{world['practice'].slug}/calls"
        call = world["calls"][3]
        day = timezone.localtime(call.started_at, world["practice"].tz).date()
        raw_token, _ = token_for(world["client"])
        pages = {
            "list": ("get", f"{base}/", {}),
            "list_outcome_and_day": (
                "get",
                f"{base}/?outcome={call.outcome}&since={day}&until={day}",
                {},
            ),
            "list_by_phone_blind_index": ("get", f"{base}/?phone={call.caller_phone}", {}),
            "list_page_400": ("get", f"{base}/?page=400", {}),
            "detail": ("get", f"{base}/{call.pk}/", {}),
            "reveal_htmx": (
                "post",
                f"{base}/{call.pk}/reveal/",
                {"data": {"reason": "benchmark: read back"}, "HTTP_HX_REQUEST": "true"},
            ),
            "api_put_transcript_40_turns": (
                "put",
                f"/api/v1/calls/{world['calls'][WITH_TRANSCRIPT + 1].pk}/transcript",
                {
                    "data": json.dumps({"turns": TURNS}),
                    "content_type": "application/json",
                    "HTTP_AUTHORIZATION": f"Bearer {raw_token}",
                },
            ),
        }
        results = {}
        for name, (method, path, kwargs) in pages.items():
            results[name] = measure(http, method, path, args.runs, **kwargs)
            print(f"{name}: {results[name]}", flush=True)
    result = {
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_at_start": [round(x, 2) for x in load_at_start],
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "scenario": {
            "calls": CALLS,
            "calls_with_transcript": WITH_TRANSCRIPT,
            "turns_per_transcript": len(TURNS),
            "data_setup_s": round(setup_s, 1),
            "measured_on": date.today().isoformat(),
        },
        "python": platform.python_version(),
        "pages": results,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
