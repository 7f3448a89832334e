"""The booking fault storm: 200 bookings, a real Celery worker, the real outbox relay (run
as beat would) and the sandbox as its own process, receiving webhooks on the live portal.

1. 100 bookings through the real API while the sandbox answers 30% of requests with a 5xx and
   hangs 5% for a second before a 504, after the write landed (the ambiguous failure).
2. The 429 storm: 100 more bookings accepted at once (by `create_booking`, what the API calls)
   while the practice's other EHR traffic is offered at three times its rate limit, all through
   the one shared limiter.

Every booking must end confirmed or failed with a reason (none pending, none lost), the EHR must
hold each patient once and each booked slot once, and the EHR must never have seen more calls in
any window than its limit (the sandbox counts every attempt, refused or not).

The limits are lowered from NexHealth's (100/s) so the storm is a storm on a 2-core machine and
the test stays short; our connection knows the same limits, as a real practice's would.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as clock
from typing import Any

import httpx
import pytest
from django.db import connection
from django.utils import timezone

from booking import services as bookings
from core.tenancy import tenant_context
from ehr import services as integration_services
from ehr.errors import EHRRateLimited
from ehr.nexhealth.client import ConnectionConfig, NexHealthClient
from ehr.nexhealth.ratelimit import DEFAULT_LIMITS
from ehr.ratelimit import Limit, RateLimiter
from ehr_sandbox.testing import SandboxServer, wait_until
from scheduling.models import AppointmentType, Booking, BookingStatus, Hold, HoldStatus, Patient
from scheduling.services import place_hold
from tests.booking.test_bookings import LA, SANDBOX_ARGS
from tests.ehr.conftest import API_KEY, World, build_world
from tests.receptionist_api.factories import api_client, token_for
from tests.workers import celery_worker

pytestmark = [pytest.mark.worker]

# The practice's EHR rate (the sandbox enforces it, our connection knows it).
LIMIT_PER_SECOND = 30
LIMITS = {
    "overall": {"limit": LIMIT_PER_SECOND, "window_seconds": 1},
    "patients_appointments": {"limit": LIMIT_PER_SECOND, "window_seconds": 1},
    "appointments_get": {"limit": 10, "window_seconds": 1},
}
PER_PHASE = 100
STORM_FACTOR = 3
STORM_SECONDS = 4
PEOPLE = 60  # 200 bookings by 60 callers: the same person books several times, concurrently
FIRST = ["Ana", "Bo", "Cy", "Dee", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jo"]
LAST = ["Lopez", "Nguyen", "Okafor", "Smith", "Tanaka", "Weiss"]
TERMINAL = {BookingStatus.CONFIRMED, BookingStatus.FAILED}


@pytest.fixture(autouse=True)
def fast_secret_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@dataclass(frozen=True)
class Caller:
    first_name: str
    last_name: str
    date_of_birth: str
    phone: str


def callers() -> list[Caller]:
    people = []
    for i in range(PEOPLE):
        people.append(
            Caller(
                FIRST[i % len(FIRST)],
                LAST[i // len(FIRST)],
                (date(1950, 1, 1) + timedelta(days=97 * i)).isoformat(),
                f"+1213555{i:04d}",
            )
        )
    return people


def weekdays_ahead(first: int, count: int) -> list[date]:
    day = timezone.now().astimezone(LA).date() + timedelta(days=first)
    out: list[date] = []
    while len(out) < count:
        if day.weekday() < 5:
            out.append(day)
        day += timedelta(days=1)
    return out


def slot_starts(days: list[date]) -> list[datetime]:
    """Every half hour 08:00-18:00 on each day: 20 a day."""
    return [
        datetime.combine(day, clock(8), LA) + timedelta(minutes=30 * i)
        for day in days
        for i in range(20)
    ]


def sandbox_state(world: World) -> dict[str, list[dict[str, Any]]]:
    return world.admin("GET", "/_admin/state")


def post_all(url: str, token: str, bodies: list[tuple[str, dict[str, Any]]]) -> list[int]:
    """POST every booking through the API (8 at a time); every one must be accepted (202)."""

    def post(item: tuple[str, dict[str, Any]]) -> int:
        key, body = item
        response = httpx.post(
            f"{url}/api/v1/bookings",
            json=body,
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
            timeout=60,
        )
        assert response.status_code == 202, response.text
        return int(response.json()["id"])

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(post, bodies))


def accept_all(practice: Any, bodies: list[tuple[str, dict[str, Any]]]) -> list[int]:
    """`create_booking` (what the API calls) from 4 threads: the outbox and the fast hand-over
    after commit are the real ones."""

    def accept(item: tuple[str, dict[str, Any]]) -> int:
        key, body = item
        try:
            with tenant_context(practice):
                booking, created = bookings.create_booking(practice, idempotency_key=key, body=body)
            assert created
            return booking.pk
        finally:
            connection.close()

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(accept, bodies))


def offer_reads(config: ConnectionConfig, rate: float, seconds: float) -> dict[str, Any]:
    """Open-loop load: `rate` reads a second for `seconds`, each through our client (the shared
    Redis limiter), each willing to wait 1 s for admission (a caller is on the line) before it
    is deferred (`EHRRateLimited`)."""
    client = NexHealthClient(config, rate_wait=1.0, max_attempts=3)
    result: dict[str, Any] = {"offered": 0, "ok": 0, "deferred": 0, "errors": []}
    lock = threading.Lock()

    def read() -> None:
        try:
            client.providers()
            outcome = "ok"
        except EHRRateLimited:
            outcome = "deferred"
        except Exception as exc:
            with lock:
                result["errors"].append(repr(exc))
            return
        with lock:
            result[outcome] += 1

    pace = threading.Event()  # never set: waits are pacing of the load, not for a condition
    began = time.monotonic()
    try:
        with ThreadPoolExecutor(int(rate * 1.5)) as pool:
            for i in range(int(rate * seconds)):
                pace.wait(max(0.0, began + i / rate - time.monotonic()))
                pool.submit(read)
                result["offered"] += 1
    finally:
        client.close()
    return result


def wait_terminal(practice: Any, ids: list[int], timeout: float) -> dict[int, Booking]:
    """Run the outbox relay as beat would, until every booking is confirmed or failed."""

    def settled() -> dict[int, Booking] | None:
        bookings.relay_outbox()
        with tenant_context(practice):
            rows = {b.pk: b for b in Booking.objects.filter(pk__in=ids)}
        if len(rows) == len(ids) and all(b.status in TERMINAL for b in rows.values()):
            return rows
        return None

    try:
        return wait_until(settled, timeout=timeout, interval=0.25, message="every booking settles")
    except TimeoutError:
        with tenant_context(practice):
            left = Counter(Booking.objects.filter(pk__in=ids).values_list("status", flat=True))
        raise TimeoutError(f"bookings not settled: {dict(left)}") from None


def test_200_bookings_through_a_fault_storm_and_a_429_storm(
    transactional_db, live_server, settings
):
    queue = f"storm-{uuid.uuid4().hex[:8]}"
    env = {"BOOKINGS_QUEUE": queue, "BOOKING_POLL_SECONDS": "2"}
    started = time.monotonic()
    with (
        SandboxServer(api_keys=[API_KEY], extra_args=SANDBOX_ARGS) as ehr,
        celery_worker(queues=queue, concurrency=4, extra_env=env),
    ):
        settings.INTEGRATIONS_QUEUES = {"bookings": queue, "sync": queue}
        ehr.admin("PUT", "/_admin/rate_limits", {"api_key": API_KEY, "limits": LIMITS})
        world = build_world(
            ehr, public_url=live_server.url, register_webhooks=True, rate_limits=LIMITS
        )
        days = weekdays_ahead(2, 10)
        world.ok(
            "POST",
            "/working_hours",
            {
                "working_hour": {
                    "provider_id": world.provider_id,
                    "operatory_id": world.operatory_id,
                    "begin_time": "08:00",
                    "end_time": "18:00",
                    "days": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"],
                    "appointment_type_ids": [world.type_id],
                }
            },
            location_id=world.lid,
        )
        people = callers()
        for person in people[:10]:  # some callers are already patients of the practice
            world.admin(
                "POST",
                "/_admin/ehr/patients",
                {
                    "location_id": world.lid,
                    "patient": {
                        "first_name": person.first_name.upper(),
                        "last_name": person.last_name,
                        "bio": {
                            "date_of_birth": person.date_of_birth,
                            "phone_number": person.phone,
                        },
                    },
                },
            )
        integration_services.sync_connection(world.conn)
        with tenant_context(world.practice):
            cleaning = AppointmentType.objects.get(ehr_id=world.type_id)
            cleaning.bookable = True
            cleaning.save(update_fields=["bookable"])
            provider = cleaning.working_hours.get().provider
            operatory = cleaning.working_hours.get().operatory
        client, _ = api_client(world.practice)
        token, _ = token_for(client)

        def bodies(starts: list[datetime], offset: int) -> list[tuple[str, dict[str, Any]]]:
            out = []
            with tenant_context(world.practice):
                for i, start in enumerate(starts):
                    hold = place_hold(
                        world.practice,
                        appointment_type_id=cleaning.pk,
                        provider_id=provider.pk,
                        operatory_id=operatory.pk,
                        start=start,
                    )
                    person = people[(offset + i) % PEOPLE]
                    patient = {k: v for k, v in person.__dict__.items()}
                    body = {"hold_id": hold.pk, "patient": patient, "reason": "cleaning"}
                    out.append((f"storm-{offset + i}", {**body, "call_id": f"call-{offset + i}"}))
            return out

        starts = slot_starts(days)
        assert len(starts) >= 2 * PER_PHASE
        setup_s = time.monotonic() - started

        # Phase 1: 30% of requests answered 5xx (nothing done), 5% hang 1 s and answer 504 after
        # the write landed (the answer is lost: a retry must look before it writes again).
        ehr.admin(
            "PATCH",
            "/_admin/faults",
            {
                "error_share": 0.3,
                "timeout_share": 0.05,
                "timeout_seconds": 1.0,
                "timeout_mode": "after",
            },
        )
        first = post_all(live_server.url, token, bodies(starts[:PER_PHASE], 0))
        phase1 = wait_terminal(world.practice, first, timeout=240)
        faults = ehr.admin("GET", "/_admin/stats").json()["faults_injected"]
        ehr.admin("DELETE", "/_admin/faults")
        phase1_s = time.monotonic() - started - setup_s

        # Phase 2: the 429 storm. The practice's other EHR traffic (the voice agent's reads in
        # a surge of calls) is offered at three times the rate while 100 bookings arrive at
        # once (accepted by the API's service, as fast as PostgreSQL takes them). Everything
        # goes through the practice's one limiter: the excess is queued or deferred, never
        # sent, and the bookings queued behind it still complete.
        second_bodies = bodies(starts[PER_PHASE : 2 * PER_PHASE], PER_PHASE)
        phase2_at = time.monotonic()
        with ThreadPoolExecutor(1) as background:
            storm = background.submit(
                offer_reads,
                ConnectionConfig.from_connection(world.reload()),
                STORM_FACTOR * LIMIT_PER_SECOND,
                STORM_SECONDS,
            )
            second = accept_all(world.practice, second_bodies)
            reads = storm.result(timeout=120)
        phase2 = wait_terminal(world.practice, second, timeout=240)
        phase2_s = time.monotonic() - phase2_at
        state = sandbox_state(world)
        stats = ehr.admin("GET", "/_admin/stats").json()

    everything = {**phase1, **phase2}
    print(  # the figures, for the closing note (pytest -s)
        f"setup {setup_s:.1f}s, phase 1 {phase1_s:.1f}s, phase 2 {phase2_s:.1f}s;"
        f" faults {faults}; storm reads {reads};"
        f" outcome {dict(Counter(b.status for b in everything.values()))}"
    )
    assert len(everything) == 2 * PER_PHASE

    # The storms were storms: the faults fired; 3x the rate was offered and the excess deferred.
    assert faults.get("error_5xx", 0) > 20 and faults.get("timeout", 0) > 0, faults
    assert reads["errors"] == [], reads["errors"][:3]
    assert reads["offered"] == STORM_FACTOR * LIMIT_PER_SECOND * STORM_SECONDS
    assert reads["deferred"] > 0 and reads["ok"] > 0, reads

    # Every booking settled: confirmed, or failed with a reason a person can act on.
    outcome = Counter(b.status for b in everything.values())
    failed = [b for b in everything.values() if b.status == BookingStatus.FAILED]
    assert all(b.failure_reason.strip() for b in failed), [b.failure_reason for b in failed]
    assert outcome[BookingStatus.CONFIRMED] >= 0.95 * len(everything), (
        outcome,
        [b.failure_reason for b in failed][:5],
    )
    with tenant_context(world.practice):
        assert {b.pk for b in bookings.needs_attention(world.practice)} == {b.pk for b in failed}
        holds = dict(
            Hold.objects.filter(pk__in=[b.hold_id for b in everything.values()]).values_list(
                "pk", "status"
            )
        )
        for b in everything.values():
            wanted = (
                HoldStatus.BOOKED if b.status == BookingStatus.CONFIRMED else HoldStatus.RELEASED
            )
            assert holds[b.hold_id] == wanted, (b.pk, b.status, holds[b.hold_id])
        local_patients = list(Patient.objects.values_list("ehr_id", flat=True))

    # No duplicate patients: one EHR record per caller, one local row per EHR record.
    person_of = Counter(
        (p["first_name"].lower(), p["last_name"].lower(), p["bio"].get("date_of_birth"))
        for p in state["patients"]
    )
    assert [k for k, n in person_of.items() if n > 1] == []
    assert len(person_of) == PEOPLE
    assert len(local_patients) == len(set(local_patients))
    assert stats["duplicates_detected"]["patients"] == 0

    # No duplicate appointments: each confirmed booking's appointment exists once, written, for
    # its patient and slot; nothing else is live in the EHR (no orphans of failed bookings).
    live = [
        a
        for a in state["appointments"]
        if not a["cancelled"] and a.get("insertion_status") not in ("failed", "cancelled")
    ]
    by_id = {a["id"]: a for a in live}
    assert len(by_id) == len(live)
    by_slot = Counter((a["provider_id"], a["start_time"]) for a in live)
    assert [k for k, n in by_slot.items() if n > 1] == []
    by_patient_slot = Counter((a["patient_id"], a["start_time"]) for a in live)
    assert [k for k, n in by_patient_slot.items() if n > 1] == []
    confirmed = [b for b in everything.values() if b.status == BookingStatus.CONFIRMED]
    with tenant_context(world.practice):
        patient_ehr = dict(Patient.objects.values_list("pk", "ehr_id"))
    for b in confirmed:
        appt = by_id.get(b.ehr_appointment_id)
        assert appt is not None, b.pk
        assert appt["insertion_status"] == "complete"
        assert appt["patient_id"] == patient_ehr[b.patient_id]
        assert datetime.fromisoformat(appt["start_time"]) == b.start
    assert len(live) == len(confirmed)
    assert stats["duplicates_detected"]["appointments"] == 0

    # The EHR's rate was never exceeded, in any bucket, in any window.
    observed = stats["rate_limits"]["observed"][API_KEY]
    for bucket, seen in observed.items():
        assert seen["max_observed"] <= seen["limit"], (bucket, seen)
    assert stats["rate_limited_total"] == 0


def test_an_attempt_still_in_flight_keeps_its_place_in_the_window():
    """What the storm found: admission time is not arrival time. An attempt admitted 1.2 s ago
    whose answer has not come back may reach the EHR only now, so it still counts; once its
    answer is in, it counts one more window, like any attempt."""
    limiter = RateLimiter(
        f"test-{uuid.uuid4().hex}",
        {**DEFAULT_LIMITS, "overall": Limit(2, 1.0)},
        safety_ratio=0.0,
        safety_seconds=0.0,
    )
    try:
        admitted = time.monotonic()
        assert limiter.try_acquire(["overall"], member="slow", in_flight=30) == 0
        assert limiter.try_acquire(["overall"], member="fast", in_flight=30) == 0
        limiter.complete(["overall"], "fast")
        assert limiter.try_acquire(["overall"]) > 0.5  # both count for now
        wait_until(lambda: time.monotonic() > admitted + 1.2, timeout=5, message="a window to pass")
        # "fast" has aged out; "slow" is still travelling: one slot, not two.
        assert limiter.try_acquire(["overall"]) == 0
        assert limiter.try_acquire(["overall"]) > 0.5
        limiter.complete(["overall"], "slow")  # its answer is in: it counts a window from now
        assert limiter.try_acquire(["overall"]) > 0.5
    finally:
        limiter.reset()
