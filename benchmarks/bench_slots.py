"""Benchmark the slot engine on a busy practice month.

20 providers x 3 operatories (Mon-Fri 08:00-12:00 and 13:00-17:00), 31 days, 5,000 appointments
and 500 blocks (provider, operatory and location-wide), seeded so runs are comparable.
Target: p95 under 20 ms per `find_slots` call.

Two input forms are timed, interleaved so both see the same machine load:

* `p50_ms`/`p95_ms`: busy time as the API hands it over, integer rows from the database grouped
  into a `BusyTimes` inside the timed call (the production path, `scheduling.selectors`);
* `busy_values`: busy time as `Busy` values with aware datetimes (converted inside the call).

    .venv/bin/python -m benchmarks.bench_slots [--runs 200]

Writes p50/p95/max (ms) to benchmarks/results/slots.json.
"""

from __future__ import annotations

import argparse
import math
import random
import time as clock
import timeit
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from benchmarks.harness import Results, summary
from scheduling.slots import (
    Busy,
    BusyRow,
    BusyTimes,
    ProviderRule,
    Slot,
    SlotQuery,
    TypeSpec,
    WorkingHour,
    find_slots,
)

TZ = ZoneInfo("America/Los_Angeles")
START = date(2026, 5, 4)  # a Monday
DAYS = 31
LOCATION = 1
PROVIDERS = 20
OPS_PER_PROVIDER = 3
CLEANING = 10


Scenario = tuple[
    SlotQuery, list[WorkingHour], list[Busy], list[ProviderRule], dict[int, frozenset[str]]
]


def build_scenario(seed: int = 20260504) -> Scenario:
    rnd = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    weekdays = frozenset({"Monday", "Tuesday", "Wednesday", "Thursday", "Friday"})
    ops_of = {
        p: [p * OPS_PER_PROVIDER + i for i in range(OPS_PER_PROVIDER)] for p in range(PROVIDERS)
    }
    working_hours: list[WorkingHour] = []
    for p, ops in ops_of.items():
        for o in ops:
            for begin, end in ((time(8), time(12)), (time(13), time(17))):
                working_hours.append(
                    WorkingHour(
                        id=len(working_hours) + 1,
                        provider_id=p,
                        operatory_id=o,
                        location_id=LOCATION,
                        begin=begin,
                        end=end,
                        days=weekdays,
                        specific_date=None,
                        appointment_type_ids=frozenset({CLEANING, CLEANING + 1}),
                    )
                )
    capabilities = {o: frozenset({"procedure"} if o % 3 == 0 else set()) for o in range(60)}

    def local(day_offset: int, minute: int) -> datetime:
        # In UTC, as the ORM hands them over (USE_TZ); the engine accepts any aware datetime.
        day = START + timedelta(days=day_offset)
        wall = datetime.combine(day, time(0)) + timedelta(minutes=minute)
        return wall.replace(tzinfo=TZ).astimezone(UTC)

    busy: list[Busy] = []
    for _ in range(5_000):
        p = rnd.randrange(PROVIDERS)
        starts_at = local(rnd.randrange(DAYS), rnd.randrange(8 * 60, 17 * 60, 15))
        ends_at = starts_at + timedelta(minutes=rnd.choice((15, 30, 45, 60, 90)))
        busy.append(Busy(starts_at, ends_at, p, rnd.choice(ops_of[p]), LOCATION))
    for _ in range(500):
        starts_at = local(rnd.randrange(DAYS), rnd.randrange(8 * 60, 17 * 60, 30))
        ends_at = starts_at + timedelta(minutes=rnd.choice((30, 60, 120)))
        kind = rnd.random()
        if kind < 0.6:
            busy.append(Busy(starts_at, ends_at, rnd.randrange(PROVIDERS), None, LOCATION))
        elif kind < 0.95:
            busy.append(Busy(starts_at, ends_at, None, rnd.randrange(60), LOCATION))
        else:
            busy.append(Busy(starts_at, ends_at, None, None, LOCATION))
    rules = [
        ProviderRule(p, frozenset({CLEANING}), "new", frozenset({"Tuesday"}), time(12), time(17))
        for p in range(0, PROVIDERS, 4)
    ]
    spec = TypeSpec(
        id=CLEANING,
        minutes=30,
        eligible_provider_ids=frozenset(),
        required_capabilities=frozenset(),
        lead_time=timedelta(hours=2),
        horizon=timedelta(days=90),
        new_patients=True,
        existing_patients=True,
    )
    query = SlotQuery(
        type=spec,
        start_date=START,
        days=DAYS,
        tz=TZ,
        now=datetime.combine(START, time(7), tzinfo=TZ),
        patient_status="existing",
    )
    return query, working_hours, busy, rules, capabilities


def as_rows(busy: list[Busy]) -> list[BusyRow]:
    """What `scheduling.selectors` reads from PostgreSQL: whole seconds, start down, end up."""
    return [
        (
            math.floor(b.start.timestamp()),
            math.ceil(b.end.timestamp()),
            b.provider_id,
            b.operatory_id,
            b.location_id,
        )
        for b in busy
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    query, working_hours, busy, rules, capabilities = build_scenario()
    rows = as_rows(busy)

    def from_rows() -> list[Slot]:
        return find_slots(query, working_hours, BusyTimes(rows), rules, capabilities)

    def from_values() -> list[Slot]:
        return find_slots(query, working_hours, busy, rules, capabilities)

    slots = from_rows()
    assert slots == from_values()
    for _ in range(5):  # warm caches
        from_rows()
        from_values()
    timings: dict[str, list[float]] = {"rows": [], "values": []}
    record = Results("slots")
    for i in range(args.runs):
        order = (("rows", from_rows), ("values", from_values))
        for name, call in order if i % 2 else order[::-1]:
            t0 = clock.perf_counter()
            call()
            timings[name].append((clock.perf_counter() - t0) * 1000)
    result = {
        "scenario": {
            "providers": PROVIDERS,
            "operatories": PROVIDERS * OPS_PER_PROVIDER,
            "days": DAYS,
            "working_hours": len(working_hours),
            "busy_intervals": len(busy),
            "slots_returned": len(slots),
        },
        "runs": args.runs,
        # How fast this machine runs plain CPython, to compare results across machines.
        "calibration_ms_sum_range_1000_x1000": round(
            min(timeit.repeat("sum(range(1000))", number=1000, repeat=5)) * 1000, 2
        ),
        "path": "busy time as integer rows (the API's path), grouped inside the timed call",
        **summary(timings["rows"]),
        "target_p95_ms": 20,
        "busy_values": {
            "path": "busy time as Busy values with aware datetimes, converted inside the call",
            **summary(timings["values"]),
        },
    }
    record.write(result, echo=True)


if __name__ == "__main__":
    main()
