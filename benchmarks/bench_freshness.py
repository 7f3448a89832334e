"""Benchmark freshness and time to confirmed, for both adapters in the same run: a staff change
in the EHR until `GET /api/v1/availability` reflects it, and a caller's booking until
`GET /api/v1/bookings/{id}` says it is confirmed.

Everything real (run by `make bench`: PORTAL_TESTING=1 inside scripts/services.py): a throwaway
PostgreSQL database, the portal under gunicorn (the API the voice agent asks, and NexHealth's
signed webhooks), both EHR sandboxes as their own processes, a real Celery worker on the sync
and bookings queues, and the beat's Nextech poll fan-out (`poll_nextech_all`) every
`NEXTECH_POLL_SECONDS`, as beat runs it.

- NexHealth (webhook path): staff book, then cancel, an appointment in the sandbox's EHR; its
  webhook reaches the portal, the worker mirrors it.
- Nextech (poll path), at a location in native mode: staff book, then cancel, in Nextech; the
  next change poll mirrors the appointment and re-reads `GET /Slot` for the near days.

Each change is made at a random moment (so its phase against the poll period is random) on a
slot the API offers, and the API is then asked every 50 ms until it stops (book) or starts again
(cancel) offering that slot. The lag is from the staff action to the first answer that reflects
it: p50 / p95 per adapter, side by side; goal: Nextech within 10 s.

Then, on the same practices, new callers are booked one at a time as the voice agent books: a
slot the API offers now, `POST /api/v1/holds`, `POST /api/v1/bookings` (with an Idempotency-Key),
then `GET /api/v1/bookings/{id}` every 50 ms until it is `confirmed` (or `failed`: counted). The
time is from the booking POST to the first answer saying confirmed: p50 / p95 per adapter, side
by side, and their ratio nextech / nexhealth.

    .venv/bin/python -m benchmarks.bench_freshness [--changes 10] [--bookings 10]

Writes benchmarks/results/freshness.json.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import threading
import time as clock
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from benchmarks.harness import Gunicorn, Results, setup_django, summary, throwaway_database

QUEUE = f"bench-fresh-{uuid.uuid4().hex[:8]}"
os.environ["BOOKINGS_QUEUE"] = QUEUE  # this process, gunicorn and the worker use one queue
# One gunicorn process (its six threads): the lag measured is the EHR's and the worker's, and a
# shared two-core box starts one Django process well within the harness's minute.
os.environ.setdefault("WEB_CONCURRENCY", "1")
setup_django()

import httpx  # noqa: E402
from django.conf import settings  # noqa: E402

from tests.receptionist_api.factories import api_client, token_for  # noqa: E402

KEY = "bench-freshness-key"
GOAL_NEXTECH_P95_S = 10.0
ASK_EVERY_S = 0.05
GIVE_UP_S = 60.0


def next_weekday(after: int) -> date:
    day = date.today() + timedelta(days=after)
    while day.weekday() > 4:
        day += timedelta(days=1)
    return day


class Side:
    """One adapter's practice: the slot times it offers on `day`, and the staff's hands."""

    name: str
    practice: Any
    type_id: int
    day: date
    tz: ZoneInfo
    token: str

    def book(self, start: datetime) -> Any: ...

    def cancel(self, made: Any) -> None: ...

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def slots(self, http: httpx.Client) -> list[dict[str, Any]]:
        response = http.get(
            "/api/v1/availability",
            params={
                "appointment_type_id": self.type_id,
                "start_date": self.day.isoformat(),
                "days": 1,
            },
            headers=self.auth(),
        )
        if response.status_code != 200:
            raise SystemExit(f"{self.name}: availability {response.status_code}")
        return list(response.json()["slots"])

    def offered(self, http: httpx.Client) -> set[datetime]:
        return {datetime.fromisoformat(s["start"]) for s in self.slots(http)}

    def api_token(self) -> None:
        client, _ = api_client(self.practice)
        self.token, _ = token_for(client)


class NexHealthSide(Side):
    name = "nexhealth"

    def __init__(self, sandbox: Any, portal_url: str) -> None:
        from tests.ehr.conftest import build_world

        self.world = build_world(
            sandbox, api_key=KEY, public_url=portal_url, register_webhooks=True
        )
        self.world.working_hours(
            ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"], "08:00", "16:00"
        )
        self.type_id = self.world.bookable_type().pk
        self.practice = self.world.practice
        self.tz = ZoneInfo("America/Los_Angeles")
        self.day = next_weekday(2)
        self.api_token()

    def book(self, start: datetime) -> Any:
        return self.world.staff_appointment(start)["id"]

    def cancel(self, made: Any) -> None:
        self.world.admin("PATCH", f"/_admin/ehr/appointments/{made}", {"appt": {"cancelled": True}})


class NextechSide(Side):
    name = "nextech"

    def __init__(self, server: Any) -> None:
        from ehr.native_slots import refresh_horizon
        from tests.ehr.nextech.conftest import TZ, build_native, seeded_world, staff_book

        self.world = seeded_world(server)
        self.native = build_native(self.world)
        refresh_horizon(self.native.conn)  # what connecting the location does
        self.practice = self.native.practice
        self.type_id = self.native.glaucoma.pk
        self.tz = TZ
        self.day = next_weekday(2)
        self._book = staff_book
        self.api_token()

    def book(self, start: datetime) -> Any:
        return self._book(self.world, start)

    def cancel(self, made: Any) -> None:
        from tests.ehr.nextech.conftest import staff_cancel

        staff_cancel(self.world, made)


def lag_until(
    http: httpx.Client, side: Side, start: datetime, offered: bool, since: float
) -> float:
    """Seconds from `since` until the API's offer of `start` is `offered`."""
    while True:
        if (start in side.offered(http)) is offered:
            return clock.time() - since
        if clock.time() - since > GIVE_UP_S:
            raise SystemExit(f"{side.name}: not reflected after {GIVE_UP_S:.0f} s")
        clock.sleep(ASK_EVERY_S)


def measure(
    side: Side, portal_url: str, changes: int, rnd: random.Random
) -> dict[str, list[float]]:
    """`changes` staff bookings, each cancelled again, on slots the API offers."""
    booked, cancelled = [], []
    with httpx.Client(base_url=portal_url, timeout=30) as http:
        times = sorted(side.offered(http))
        if len(times) < changes:
            raise SystemExit(f"{side.name}: only {len(times)} slots offered on {side.day}")
        for start in rnd.sample(times, changes):
            clock.sleep(rnd.uniform(0, 2.0))  # a random phase against the poll period
            began = clock.time()
            made = side.book(start)
            booked.append(lag_until(http, side, start, False, began))
            clock.sleep(rnd.uniform(0, 2.0))
            began = clock.time()
            side.cancel(made)
            cancelled.append(lag_until(http, side, start, True, began))
    return {"book": booked, "cancel": cancelled}


def caller(side: Side, n: int) -> dict[str, str]:
    """A new caller each booking (found-or-created in the EHR), distinct across the adapters;
    with an email, which Nextech needs to create a patient."""
    k = n + (500 if side.name == "nextech" else 0)
    return {
        "first_name": "Caller",
        "last_name": f"Fresh{k:04d}",
        "date_of_birth": (date(1960, 1, 1) + timedelta(days=41 * k)).isoformat(),
        "phone": f"+1213555{k:04d}",
        "email": f"caller{k:04d}@example.test",
    }


def booking_when_done(
    http: httpx.Client, side: Side, booking_id: int, since: float
) -> dict[str, Any]:
    """Ask for the booking every 50 ms until it is confirmed or failed (still `pending` if
    neither within the give-up time)."""
    while True:
        response = http.get(f"/api/v1/bookings/{booking_id}", headers=side.auth())
        if response.status_code != 200:
            raise SystemExit(f"{side.name}: booking {booking_id} {response.status_code}")
        booking = dict(response.json())
        if booking["status"] in ("confirmed", "failed") or clock.time() - since > GIVE_UP_S:
            return booking
        clock.sleep(ASK_EVERY_S)


def time_to_confirmed(
    side: Side, portal_url: str, bookings: int, rnd: random.Random
) -> dict[str, Any]:
    """`bookings` new callers booked one at a time, each on a slot the API offers at that moment:
    seconds from the booking POST to the first answer saying confirmed, and the other ends."""
    confirmed: list[float] = []
    ends = {"failed": 0, "pending": 0, "hold_refused": 0}
    reasons: Counter[str] = Counter()
    with httpx.Client(base_url=portal_url, timeout=30) as http:
        for n in range(bookings):
            offer = side.slots(http)
            if not offer:
                raise SystemExit(f"{side.name}: no slot left on {side.day}")
            slot = rnd.choice(offer)
            hold = http.post(
                "/api/v1/holds",
                json={
                    "appointment_type_id": side.type_id,
                    "provider_id": slot["provider_id"],
                    "operatory_id": slot["operatory_id"],
                    "start": slot["start"],
                },
                headers=side.auth(),
            )
            if hold.status_code == 409:  # the offer was stale: the voice agent asks again
                ends["hold_refused"] += 1
                continue
            if hold.status_code != 201:
                raise SystemExit(f"{side.name}: hold {hold.status_code} {hold.text[:300]}")
            body = {"hold_id": hold.json()["id"], "patient": caller(side, n), "reason": "bench"}
            began = clock.time()
            posted = http.post(
                "/api/v1/bookings",
                json=body,
                headers={**side.auth(), "Idempotency-Key": f"bench-{uuid.uuid4().hex}"},
            )
            if posted.status_code != 202:
                raise SystemExit(f"{side.name}: booking {posted.status_code} {posted.text[:300]}")
            booking = booking_when_done(http, side, int(posted.json()["id"]), began)
            if booking["status"] == "confirmed":
                confirmed.append(clock.time() - began)
                continue
            ends[booking["status"]] = ends.get(booking["status"], 0) + 1
            if booking["failure_reason"]:
                reasons[booking["failure_reason"]] += 1
    return {
        "post_to_confirmed_s": summary(confirmed, "s") if confirmed else None,
        **ends,
        "failure_reasons": dict(reasons),
    }


def beat_forever(stop: threading.Event, period: float) -> None:
    """What celery beat does for the Nextech poll: fan out one poll per connection."""
    from django.db import connections

    from ehr.tasks import poll_nextech_all

    try:
        while not stop.wait(period):
            try:
                poll_nextech_all()
            except Exception as exc:
                print(f"beat tick failed: {type(exc).__name__}", file=sys.stderr)
    finally:
        connections.close_all()  # this thread's: the throwaway database is dropped after


@contextmanager
def running(period: float) -> Iterator[tuple[str, Callable[[], Any], Callable[[], Any]]]:
    """The portal, both sandboxes, the worker and the beat; yields (portal url, and the two
    practices' builders, to call once all is up)."""
    from ehr_sandbox.nextech.testing import NextechServer
    from ehr_sandbox.testing import SandboxServer
    from tests.workers import celery_worker

    queues = f"{settings.INTEGRATIONS_QUEUES['sync']},{QUEUE}"
    env = {"BOOKINGS_QUEUE": QUEUE, "NEXTECH_POLL_SECONDS": str(period)}
    with (
        throwaway_database("bench_freshness"),
        SandboxServer(api_keys=[KEY]) as sandbox,
        NextechServer() as nextech,
    ):
        server = Gunicorn()
        stop = threading.Event()
        beat = threading.Thread(target=beat_forever, args=(stop, period), daemon=True)
        try:
            with celery_worker(queues=queues, concurrency=2, extra_env=env):
                beat.start()
                yield (
                    server.url,
                    lambda: NexHealthSide(sandbox, server.url),
                    lambda: NextechSide(nextech),
                )
        finally:
            stop.set()
            if beat.is_alive():
                beat.join(timeout=30)
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--changes", type=int, default=10)
    parser.add_argument("--bookings", type=int, default=10, help="bookings per adapter")
    parser.add_argument("--seed", type=int, default=20)
    args = parser.parse_args()
    record = Results("freshness")
    period = float(settings.NEXTECH_POLL_SECONDS)
    rnd = random.Random(args.seed)  # noqa: S311 - when staff act, not a secret
    # Its own stream: the staff changes' moments stay those of a run without bookings.
    callers = random.Random(args.seed + 1)  # noqa: S311 - which slot a caller takes
    lags: dict[str, dict[str, list[float]]] = {}
    booked: dict[str, dict[str, Any]] = {}
    with running(period) as (url, nexhealth, nextech):
        sides = [nexhealth(), nextech()]
        for side in sides:
            lags[side.name] = measure(side, url, args.changes, rnd)
            booked[side.name] = time_to_confirmed(side, url, args.bookings, callers)
    figures = {
        name: {
            "book_to_gone_s": summary(by["book"], "s"),
            "cancel_to_offered_s": summary(by["cancel"], "s"),
            "all_s": summary(by["book"] + by["cancel"], "s"),
        }
        for name, by in lags.items()
    }
    nextech_p95 = figures["nextech"]["all_s"]["p95_s"]
    to_confirmed = {name: by["post_to_confirmed_s"] for name, by in booked.items()}
    both = all(to_confirmed.values())
    record.write(
        {
            "what": "staff change in the EHR -> GET /api/v1/availability reflects it",
            "changes_per_adapter": args.changes * 2,
            "nextech_poll_seconds": period,
            "nextech_slot_near_days": 14,
            "api_asked_every_s": ASK_EVERY_S,
            "portal": f"gunicorn, {os.environ['WEB_CONCURRENCY']} process(es)",
            "celery_worker": "prefork, concurrency 2, sync and bookings queues",
            "nexhealth": figures["nexhealth"],
            "nextech": figures["nextech"],
            "p95_side_by_side_s": {
                "nexhealth": figures["nexhealth"]["all_s"]["p95_s"],
                "nextech": nextech_p95,
            },
            "goal_nextech_p95_s": GOAL_NEXTECH_P95_S,
            "nextech_within_goal": nextech_p95 <= GOAL_NEXTECH_P95_S,
            "time_to_confirmed": {
                "what": "POST /api/v1/bookings -> GET /api/v1/bookings/{id} says confirmed",
                "bookings_per_adapter": args.bookings,
                "one_at_a_time": True,
                "nexhealth": booked["nexhealth"],
                "nextech": booked["nextech"],
                "side_by_side_s": {
                    q: {name: t[f"{q}_s"] if t else None for name, t in to_confirmed.items()}
                    for q in ("p50", "p95")
                },
                "ratio_nextech_to_nexhealth": {
                    q: round(
                        to_confirmed["nextech"][f"{q}_s"] / to_confirmed["nexhealth"][f"{q}_s"], 2
                    )
                    for q in ("p50", "p95")
                }
                if both
                else None,
            },
        },
        echo=True,
    )


if __name__ == "__main__":
    main()
