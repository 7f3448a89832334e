"""The slot engine at a location in native mode: the EHR's own free slots are the free time,
our layer (rooms, rules, lead time, horizon, busy time and holds) applies on top."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, timedelta

from hypothesis import given
from hypothesis import strategies as st

from scheduling.slots import FreeRow, Slot, find_slots, native_hours

from .test_slots import (
    CAPS,
    CLEANING,
    LA,
    MAIN,
    OP1,
    OP2,
    PATEL,
    SMITH,
    THURSDAY,
    Scenario,
    at,
    busy,
    hours,
    iso,
    properties,
    query,
    scenarios,
    spec,
    starts,
)


def free(provider: int, begin: str, end: str, location: int = MAIN, day=THURSDAY) -> FreeRow:
    return (
        provider,
        location,
        math.ceil(at(day, begin).timestamp()),
        math.floor(at(day, end).timestamp()),
    )


def windows_of(found: Iterable[Slot]) -> list[FreeRow]:
    """Free windows exactly where the engine found slots: an EHR that agrees with us."""
    return [
        (s.provider_id, s.location_id, int(s.start.timestamp()), int(s.end.timestamp()))
        for s in found
    ]


def test_only_the_ehrs_free_slots_are_offered_in_the_rooms_our_hours_name() -> None:
    q = query(spec(minutes=30))
    week = [hours(PATEL, OP1, "08:00", "12:00"), hours(SMITH, OP2, "08:00", "12:00")]
    ehr = [
        free(PATEL, "09:00", "09:30"),
        free(PATEL, "10:30", "11:00"),
        free(SMITH, "13:00", "13:30"),
    ]
    found = find_slots(q, native_hours(week, ehr, LA), [], [], CAPS)
    # Smith's EHR slot lies outside every working hour of theirs: no room to put it in.
    assert [(s.start.strftime("%H:%M"), s.provider_id, s.operatory_id) for s in found] == [
        ("09:00", PATEL, OP1),
        ("10:30", PATEL, OP1),
    ]


def test_a_live_hold_and_lead_time_still_apply_on_top_of_the_ehrs_slots() -> None:
    q = query(spec(minutes=30, lead_time=timedelta(hours=1)), now=at(THURSDAY, "08:15"))
    week = [hours(PATEL, OP1, "08:00", "12:00")]
    ehr = [
        free(PATEL, t, e) for t, e in (("08:30", "09:00"), ("09:30", "10:00"), ("10:00", "10:30"))
    ]
    held = [busy(THURSDAY, "09:30", "10:00", PATEL, OP1)]
    found = find_slots(q, native_hours(week, ehr, LA), held, [], CAPS)
    assert starts(found) == ["10:00"]  # 08:30 is inside the lead time, 09:30 is held


def test_a_window_on_another_day_than_the_working_hour_offers_nothing() -> None:
    q = query(spec(minutes=30), days=2)
    week = [hours(PATEL, OP1, "08:00", "12:00", days={"Thursday"})]
    friday = THURSDAY + timedelta(days=1)
    assert (
        find_slots(
            q, native_hours(week, [free(PATEL, "09:00", "09:30", day=friday)], LA), [], [], CAPS
        )
        == []
    )


@properties
@given(scenarios())
def test_property_an_ehr_offering_our_slots_gives_at_least_our_slots(scenario: Scenario) -> None:
    q, working_hours, busy_time, rules, capabilities = scenario
    manual = find_slots(*scenario)
    native = find_slots(
        q, native_hours(working_hours, windows_of(manual), q.tz), busy_time, rules, capabilities
    )
    assert set(iso(manual)) <= set(iso(native))


@properties
@given(scenarios(), st.data())
def test_property_every_native_slot_lies_in_an_ehr_window_and_obeys_our_layer(
    scenario: Scenario, data: st.DataObject
) -> None:
    q, working_hours, busy_time, rules, capabilities = scenario
    # EHR windows anywhere around the working hours, some overlapping, some off them.
    ehr: list[FreeRow] = []
    for wh in working_hours:
        day = data.draw(st.integers(0, max(q.days - 1, 0)))
        start = at(q.start_date + timedelta(days=day), wh.begin.strftime("%H:%M"), q.tz)
        shift = data.draw(st.integers(-90, 240))
        length = data.draw(st.integers(0, 300))
        lo = start + timedelta(minutes=shift)
        ehr.append(
            (
                wh.provider_id,
                wh.location_id,
                int(lo.timestamp()),
                int((lo + timedelta(minutes=length)).timestamp()),
            )
        )
    found = find_slots(q, native_hours(working_hours, ehr, q.tz), busy_time, rules, capabilities)
    for s in found:
        a, b = s.start.timestamp(), s.end.timestamp()
        assert any(
            p == s.provider_id and loc == s.location_id and lo <= a and b <= hi
            for p, loc, lo, hi in ehr
        )
        for blocked in busy_time:
            if blocked.start < blocked.end and blocked.start < s.end and s.start < blocked.end:
                assert blocked.provider_id != s.provider_id
                assert blocked.operatory_id != s.operatory_id
        assert s.start.astimezone(UTC) >= q.now + q.type.lead_time
        assert s.start.astimezone(UTC) <= q.now + q.type.horizon
        assert q.type.required_capabilities <= capabilities.get(s.operatory_id, frozenset())


def test_no_ehr_slots_means_nothing_is_offered() -> None:
    week = [hours(PATEL, OP1, "08:00", "12:00", (CLEANING,))]
    assert native_hours(week, [], LA) == []
    assert find_slots(query(spec()), native_hours(week, [], LA), [], [], CAPS) == []
