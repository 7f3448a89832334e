"""The slot engine, against the NexHealth scheduling guide's examples and as properties.

Pure: no database, no Django. The guide's "Happy Smiles Dental" practice is used throughout.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduling.slots import (
    WEEKDAYS,
    Busy,
    BusyTimes,
    ProviderRule,
    Slot,
    SlotQuery,
    TypeSpec,
    WorkingHour,
    day_window,
    find_slot_columns,
    find_slots,
    local_instant,
    slot_columns_of,
    slots_of,
)

LA = ZoneInfo("America/Los_Angeles")
NY = ZoneInfo("America/New_York")
MAIN, BRANCH = 21241, 21242
PATEL, SMITH, LEE = 158936025, 158936024, 158936026
OP1, OP2, OP3, SUITE = 1, 2, 3, 9
CLEANING, EXAM, ROOT_CANAL, NEW_CONSULT, MOHS = 101, 102, 103, 104, 105
ALL_DAYS = frozenset(WEEKDAYS)
MON_THU = frozenset({"Monday", "Tuesday", "Wednesday", "Thursday"})
THURSDAY = date(2026, 5, 7)  # the guide's example date
MONDAY = date(2026, 5, 4)
TUESDAY = date(2026, 5, 5)
T = TypeVar("T")
CAPS = {OP1: frozenset(), OP2: frozenset(), OP3: frozenset(), SUITE: frozenset({"procedure"})}


def spec(
    type_id: int = CLEANING,
    minutes: int = 30,
    *,
    providers: Iterable[int] = (),
    capabilities: Iterable[str] = (),
    lead_time: timedelta = timedelta(0),
    horizon: timedelta = timedelta(days=365),
    new_patients: bool = True,
    existing_patients: bool = True,
) -> TypeSpec:
    return TypeSpec(
        id=type_id,
        minutes=minutes,
        eligible_provider_ids=frozenset(providers),
        required_capabilities=frozenset(capabilities),
        lead_time=lead_time,
        horizon=horizon,
        new_patients=new_patients,
        existing_patients=existing_patients,
    )


def hours(
    provider: int,
    operatory: int,
    begin: str,
    end: str,
    types: Iterable[int] = (CLEANING,),
    *,
    days: Iterable[str] = ALL_DAYS,
    specific_date: date | None = None,
    location: int = MAIN,
    active: bool = True,
    id: int = 0,
) -> WorkingHour:
    return WorkingHour(
        id=id,
        provider_id=provider,
        operatory_id=operatory,
        location_id=location,
        begin=time.fromisoformat(begin),
        end=time.fromisoformat(end),
        days=frozenset(days),
        specific_date=specific_date,
        appointment_type_ids=frozenset(types),
        active=active,
    )


def query(
    type_spec: TypeSpec,
    start_date: date = THURSDAY,
    days: int = 1,
    *,
    tz: ZoneInfo = LA,
    now: datetime | None = None,
    patient_status: str = "existing",
    **kwargs: int | None,
) -> SlotQuery:
    return SlotQuery(
        type=type_spec,
        start_date=start_date,
        days=days,
        tz=tz,
        now=now or datetime(2026, 1, 1, tzinfo=UTC),
        patient_status=patient_status,
        **kwargs,  # type: ignore[arg-type]
    )


def at(day: date, hhmm: str, tz: ZoneInfo = LA) -> datetime:
    return datetime.combine(day, time.fromisoformat(hhmm), tzinfo=tz)


def busy(
    day: date,
    begin: str,
    end: str,
    provider: int | None = None,
    operatory: int | None = None,
    location: int | None = MAIN,
    tz: ZoneInfo = LA,
) -> Busy:
    return Busy(at(day, begin, tz), at(day, end, tz), provider, operatory, location)


def slots(
    q: SlotQuery,
    working_hours: Sequence[WorkingHour],
    busy_time: Sequence[Busy] = (),
    rules: Sequence[ProviderRule] = (),
    capabilities: dict[int, frozenset[str]] | None = None,
) -> list[Slot]:
    return find_slots(
        q, working_hours, busy_time, rules, CAPS if capabilities is None else capabilities
    )


def iso(found: Iterable[Slot]) -> list[tuple[str, str, int, int, int]]:
    """Slots with ISO start/end, so a comparison checks wall clock *and* offset."""
    return [(s.start.isoformat(), s.end.isoformat(), *s[2:]) for s in found]


def starts(found: Iterable[Slot]) -> list[str]:
    return [s.start.strftime("%H:%M") for s in found]


# --- The guide's examples --------------------------------------------------------------------


def patel_op1_day() -> list[WorkingHour]:
    """Level 2D: Dr. Patel in Operatory 1, mornings for Cleaning, afternoons for Exam."""
    return [
        hours(PATEL, OP1, "09:00", "12:00", [CLEANING], days=MON_THU, id=96878614),
        hours(PATEL, OP1, "13:00", "17:00", [EXAM], days=MON_THU, id=96883945),
    ]


def patel_calendar() -> list[Busy]:
    return [
        busy(THURSDAY, "08:00", "09:00", PATEL, OP1),  # booked appointment
        busy(THURSDAY, "09:00", "11:00", PATEL, None),  # calendar block
    ]


def test_level_2d_cleaning_is_exactly_eleven_and_half_past() -> None:
    found = slots(query(spec(CLEANING, 30)), patel_op1_day(), patel_calendar())
    assert iso(found) == [
        ("2026-05-07T11:00:00-07:00", "2026-05-07T11:30:00-07:00", PATEL, OP1, MAIN),
        ("2026-05-07T11:30:00-07:00", "2026-05-07T12:00:00-07:00", PATEL, OP1, MAIN),
    ]


def test_level_2d_with_a_location_wide_block_gives_the_same_answer() -> None:
    # The guide's block comes back from /appointments with provider_id null.
    calendar = [
        busy(THURSDAY, "08:00", "09:00", PATEL, OP1),
        busy(THURSDAY, "09:00", "11:00", None, None, MAIN),
    ]
    assert starts(slots(query(spec(CLEANING, 30)), patel_op1_day(), calendar)) == [
        "11:00",
        "11:30",
    ]


def test_level_2d_exam_evaluates_only_the_afternoon() -> None:
    found = slots(query(spec(EXAM, 15)), patel_op1_day(), patel_calendar())
    assert starts(found) == [f"{h:02d}:{m:02d}" for h in range(13, 17) for m in (0, 15, 30, 45)]
    assert found[-1].end == at(THURSDAY, "17:00")


def test_level_1_one_provider_fixed_week() -> None:
    smith = [hours(SMITH, OP1, "09:00", "17:00", [ROOT_CANAL], days=MON_THU)]
    week = slots(query(spec(ROOT_CANAL, 60), MONDAY, 7), smith)
    by_day: dict[str, list[str]] = {}
    for s in week:
        by_day.setdefault(s.start.strftime("%A"), []).append(s.start.strftime("%H:%M"))
    hourly = [f"{h:02d}:00" for h in range(9, 17)]
    assert by_day == {name: hourly for name in ("Monday", "Tuesday", "Wednesday", "Thursday")}


def test_level_1_slot_interval_differs_from_length() -> None:
    # The guide's request: slot_length=60, slot_interval=45.
    smith = [hours(SMITH, OP1, "09:00", "17:00", [ROOT_CANAL], days=MON_THU)]
    found = slots(query(spec(ROOT_CANAL, 60), MONDAY, interval_minutes=45), smith)
    assert starts(found) == [
        "09:00", "09:45", "10:30", "11:15", "12:00", "12:45", "13:30", "14:15", "15:00", "15:45",
    ]  # fmt: skip
    assert all(s.end - s.start == timedelta(hours=1) for s in found)


def level_2a() -> list[WorkingHour]:
    """Level 2A: Smith in Op 3, Patel split across Ops 1 and 2, Lee floats; lunch 12-13."""
    records = []
    for provider, operatories in ((SMITH, [OP3]), (PATEL, [OP1, OP2]), (LEE, [OP1, OP2, OP3])):
        for operatory in operatories:
            for begin, end in (("09:00", "12:00"), ("13:00", "17:00")):
                records.append(hours(provider, operatory, begin, end, days={"Monday", "Wednesday"}))
    return records


def test_level_2a_lunch_is_the_gap_between_two_records() -> None:
    found = slots(query(spec(), MONDAY, provider_id=SMITH), level_2a())
    assert starts(found) == [
        "09:00", "09:30", "10:00", "10:30", "11:00", "11:30",
        "13:00", "13:30", "14:00", "14:30", "15:00", "15:30", "16:00", "16:30",
    ]  # fmt: skip


def test_level_2a_every_operatory_of_a_provider_is_searched() -> None:
    # NexHealth without operatory_id returns only the first operatory; we return both.
    found = slots(query(spec(), MONDAY, provider_id=PATEL), level_2a())
    assert {s.operatory_id for s in found} == {OP1, OP2}
    assert len([s for s in found if s.operatory_id == OP1]) == 14
    assert len([s for s in found if s.operatory_id == OP2]) == 14
    assert slots(query(spec(), TUESDAY, provider_id=PATEL), level_2a()) == []


def test_level_2a_appointment_blocks_its_provider_everywhere_and_its_room_for_everyone() -> None:
    appointment = [busy(MONDAY, "09:00", "09:30", PATEL, OP1)]
    found = slots(query(spec(), MONDAY), level_2a(), appointment)
    nine = {(s.provider_id, s.operatory_id) for s in found if s.start == at(MONDAY, "09:00")}
    # Patel is busy (both rooms); Op 1 is taken (Lee cannot use it); everyone else is free.
    assert nine == {(SMITH, OP3), (LEE, OP2), (LEE, OP3)}


def test_a_question_about_one_provider_still_sees_other_providers_in_shared_rooms() -> None:
    # The selectors hand the engine the whole practice's busy time for a one-provider question.
    calendar = [
        busy(MONDAY, "09:00", "09:30", LEE, OP1),  # Lee in Patel's room: blocks Patel in Op 1
        busy(MONDAY, "09:30", "10:00", SMITH, OP3),  # a room Patel never uses: no effect
        busy(MONDAY, "10:00", "10:30", None, None, BRANCH),  # another location: no effect
        busy(MONDAY, "10:30", "11:00", None, None, None),  # every location: blocks Patel
        busy(MONDAY, "11:00", "11:30", None, OP2),  # Op 2 closed: blocks Patel there only
    ]
    found = slots(query(spec(), MONDAY, provider_id=PATEL), level_2a(), calendar)
    morning = [(s.start.strftime("%H:%M"), s.operatory_id) for s in found if s.start.hour < 12]
    assert morning == [
        ("09:00", OP2),
        ("09:30", OP1), ("09:30", OP2),
        ("10:00", OP1), ("10:00", OP2),
        ("11:00", OP1),
        ("11:30", OP1), ("11:30", OP2),
    ]  # fmt: skip
    index = BusyTimes(as_rows(calendar))
    assert find_slots(query(spec(), MONDAY, provider_id=PATEL), level_2a(), index, [], CAPS) == (
        found
    )


def test_a_fine_grid_over_weeks_matches_the_definition() -> None:
    # Thousands of candidate starts: the engine's bitmasks span many machine words.
    records = [*level_2a(), hours(PATEL, OP1, "07:07", "19:53", days=ALL_DAYS)]
    rnd = random.Random(7)
    calendar = []
    for _ in range(60):
        start = at(MONDAY, "00:00") + timedelta(seconds=rnd.randrange(21 * 86400))
        calendar.append(
            Busy(
                start,
                start + timedelta(seconds=rnd.randrange(-600, 4 * 3600)),  # some inverted
                rnd.choice((PATEL, SMITH, LEE, None)),
                rnd.choice((OP1, OP2, OP3, None)),
                rnd.choice((MAIN, BRANCH, None)),
            )
        )
    q = query(spec(minutes=20), MONDAY, 21, interval_minutes=5)
    found = slots(q, records, calendar)
    assert len(found) > 2_000
    assert iso(found) == iso(brute_force(q, records, calendar, [], CAPS))


def test_no_working_hour_bound_to_the_type_means_no_slots() -> None:
    # The guide's gotcha: working hours have no appointment type by default.
    unbound = [hours(SMITH, OP1, "09:00", "17:00", types=[])]
    assert slots(query(spec()), unbound) == []
    assert slots(query(spec(ROOT_CANAL, 60)), patel_op1_day()) == []


def test_inactive_working_hours_are_ignored() -> None:
    assert slots(query(spec()), [hours(SMITH, OP1, "09:00", "12:00", active=False)]) == []


# --- Type settings ---------------------------------------------------------------------------


def test_lead_time_drops_slots_starting_too_soon() -> None:
    now = at(THURSDAY, "08:10")
    found = slots(query(spec(lead_time=timedelta(hours=2)), now=now), patel_op1_day())
    assert starts(found) == ["10:30", "11:00", "11:30"]  # 10:10 or later, on the grid


def test_lead_time_boundary_is_inclusive() -> None:
    now = at(THURSDAY, "09:00")
    found = slots(query(spec(lead_time=timedelta(hours=2)), now=now), patel_op1_day())
    assert starts(found) == ["11:00", "11:30"]


def test_horizon_drops_slots_starting_too_late_and_is_inclusive() -> None:
    now = at(THURSDAY, "07:00")
    found = slots(query(spec(horizon=timedelta(hours=3)), now=now, days=3), patel_op1_day())
    assert [s.start for s in found] == [
        at(THURSDAY, "09:00"),
        at(THURSDAY, "09:30"),
        at(THURSDAY, "10:00"),
    ]


def test_patient_status_not_accepted_by_the_type_gives_nothing() -> None:
    existing_only = spec(new_patients=False)
    assert slots(query(existing_only, patient_status="new"), patel_op1_day()) == []
    assert len(slots(query(existing_only, patient_status="existing"), patel_op1_day())) == 6
    new_only = spec(existing_patients=False)
    assert slots(query(new_only, patient_status="existing"), patel_op1_day()) == []


def test_eligible_providers_restrict_the_type() -> None:
    found = slots(query(spec(providers=[LEE]), MONDAY), level_2a())
    assert {s.provider_id for s in found} == {LEE}
    assert {s.operatory_id for s in found} == {OP1, OP2, OP3}


def test_required_capabilities_need_a_procedure_suite() -> None:
    records = [
        hours(PATEL, OP1, "09:00", "12:00", [MOHS]),
        hours(PATEL, SUITE, "13:00", "15:00", [MOHS]),
        hours(PATEL, 77, "09:00", "17:00", [MOHS]),  # unknown room: no capabilities
    ]
    found = slots(query(spec(MOHS, 60, capabilities=["procedure"])), records)
    assert [(s.operatory_id, s.start.strftime("%H:%M")) for s in found] == [
        (SUITE, "13:00"),
        (SUITE, "14:00"),
    ]


def test_provider_and_location_filters() -> None:
    records = [*level_2a(), hours(SMITH, OP3, "09:00", "10:00", location=BRANCH)]
    at_branch = slots(query(spec(), MONDAY, location_id=BRANCH), records)
    assert {(s.provider_id, s.location_id) for s in at_branch} == {(SMITH, BRANCH)}
    assert {s.provider_id for s in slots(query(spec(), MONDAY, provider_id=LEE), records)} == {LEE}


# --- Provider rules --------------------------------------------------------------------------

NEW_ON_TUESDAY_AFTERNOON = ProviderRule(
    PATEL, frozenset({NEW_CONSULT}), "new", frozenset({"Tuesday"}), time(12), time(17)
)


def patel_all_week(types: Iterable[int] = (NEW_CONSULT,)) -> list[WorkingHour]:
    return [hours(PATEL, OP1, "09:00", "17:00", types, days=ALL_DAYS - {"Saturday", "Sunday"})]


def test_provider_rule_new_patients_only_on_tuesday_afternoon() -> None:
    q = query(spec(NEW_CONSULT, 60), MONDAY, 7, patient_status="new")
    found = slots(q, patel_all_week(), rules=[NEW_ON_TUESDAY_AFTERNOON])
    assert [s.start for s in found] == [at(TUESDAY, f"{h}:00") for h in range(12, 17)]


def test_provider_rule_does_not_touch_other_statuses_types_or_providers() -> None:
    q = query(spec(NEW_CONSULT, 60), MONDAY, 5, patient_status="existing")
    assert len(slots(q, patel_all_week(), rules=[NEW_ON_TUESDAY_AFTERNOON])) == 5 * 8
    q = query(spec(CLEANING, 60), MONDAY, 5, patient_status="new")
    assert len(slots(q, patel_all_week([CLEANING]), rules=[NEW_ON_TUESDAY_AFTERNOON])) == 5 * 8
    smith = [hours(SMITH, OP2, "09:00", "17:00", [NEW_CONSULT])]
    q = query(spec(NEW_CONSULT, 60), MONDAY, 1, patient_status="new")
    assert len(slots(q, smith, rules=[NEW_ON_TUESDAY_AFTERNOON])) == 8


def test_provider_rules_are_alternatives() -> None:
    thursday_morning = ProviderRule(
        PATEL, frozenset({NEW_CONSULT}), "any", frozenset({"Thursday"}), time(9), time(11)
    )
    q = query(spec(NEW_CONSULT, 60), MONDAY, 7, patient_status="new")
    found = slots(q, patel_all_week(), rules=[NEW_ON_TUESDAY_AFTERNOON, thursday_morning])
    assert [s.start for s in found] == [
        *(at(TUESDAY, f"{h}:00") for h in range(12, 17)),
        at(THURSDAY, "09:00"),
        at(THURSDAY, "10:00"),
    ]


def test_a_slot_must_lie_wholly_inside_one_rule_window() -> None:
    # Touching windows are still two windows: 12:30-13:30 straddles them and is not offered.
    rules = [
        ProviderRule(PATEL, frozenset({NEW_CONSULT}), "new", frozenset({"Tuesday"}), b, e)
        for b, e in ((time(12), time(13)), (time(13), time(14, 30)))
    ]
    q = query(spec(NEW_CONSULT, 60), TUESDAY, interval_minutes=30, patient_status="new")
    assert starts(slots(q, patel_all_week(), rules=rules)) == ["12:00", "13:00", "13:30"]


# --- Busy time: holds, blocks, half-open intervals -------------------------------------------


def test_a_live_hold_blocks_only_its_own_provider_and_operatory() -> None:
    records = [
        hours(PATEL, OP1, "10:00", "11:00"),
        hours(PATEL, OP2, "10:00", "11:00"),
        hours(LEE, OP1, "10:00", "11:00"),
        hours(LEE, OP3, "10:00", "11:00"),
        hours(SMITH, OP3, "10:00", "11:00"),
    ]
    hold = busy(THURSDAY, "10:00", "10:30", PATEL, OP1)
    ten = {
        (s.provider_id, s.operatory_id)
        for s in slots(query(spec()), records, [hold])
        if s.start == at(THURSDAY, "10:00")
    }
    assert ten == {(LEE, OP3), (SMITH, OP3)}


def test_operatory_only_block_closes_the_room_for_everyone() -> None:
    records = [hours(PATEL, OP1, "10:00", "11:00"), hours(PATEL, OP2, "10:00", "11:00")]
    closed = busy(THURSDAY, "10:00", "11:00", None, OP1)
    assert {s.operatory_id for s in slots(query(spec()), records, [closed])} == {OP2}


def test_location_wide_block_applies_to_its_location_only() -> None:
    records = [
        hours(PATEL, OP1, "10:00", "11:00"),
        hours(SMITH, OP3, "10:00", "11:00", location=BRANCH),
    ]
    meeting = busy(THURSDAY, "10:00", "11:00", None, None, MAIN)
    assert {s.location_id for s in slots(query(spec()), records, [meeting])} == {BRANCH}
    holiday = busy(THURSDAY, "00:00", "23:59", None, None, None)
    assert slots(query(spec()), records, [holiday]) == []


def test_busy_intervals_are_half_open() -> None:
    record = [hours(PATEL, OP1, "09:00", "12:00")]
    calendar = [
        busy(THURSDAY, "08:30", "09:30", PATEL, OP1),  # ends exactly at 09:30
        busy(THURSDAY, "11:30", "12:30", PATEL, OP1),  # starts exactly at 11:30
    ]
    assert starts(slots(query(spec()), record, calendar)) == ["09:30", "10:00", "10:30", "11:00"]


def test_sub_minute_busy_edges_are_respected_exactly() -> None:
    record = [hours(PATEL, OP1, "09:00", "11:00")]
    ends_just_after = Busy(
        at(THURSDAY, "09:00"), at(THURSDAY, "09:30") + timedelta(microseconds=1), PATEL, None
    )
    starts_just_before = Busy(
        at(THURSDAY, "11:00") - timedelta(microseconds=1), at(THURSDAY, "11:30"), None, OP1
    )
    found = slots(query(spec()), record, [ends_just_after, starts_just_before])
    assert starts(found) == ["10:00"]


def test_busy_times_in_other_zones_are_compared_as_instants() -> None:
    block_in_utc = Busy(
        datetime(2026, 5, 7, 16, 0, tzinfo=UTC),  # 09:00 in Los Angeles
        datetime(2026, 5, 7, 18, 0, tzinfo=UTC),  # 11:00
        PATEL,
        None,
    )
    assert starts(slots(query(spec()), patel_op1_day(), [block_in_utc])) == ["11:00", "11:30"]


# --- Records: specific dates, overlaps, ordering, validation ---------------------------------


def test_specific_date_applies_on_that_date_only_and_ignores_days() -> None:
    # Synced records repeat the weekday in `days`; a disagreeing list must not hide the record.
    dated = hours(PATEL, OP1, "09:00", "10:00", days={"Monday"}, specific_date=THURSDAY)
    week = slots(query(spec(), MONDAY, 7), [dated])
    assert {s.start.date() for s in week} == {THURSDAY}
    assert starts(week) == ["09:00", "09:30"]


def test_overlapping_records_for_one_room_do_not_duplicate_slots() -> None:
    base = hours(PATEL, OP1, "09:00", "12:00", id=1)
    labelled = hours(PATEL, OP1, "10:00", "11:00", id=2)
    found = slots(query(spec()), [base, labelled])
    assert starts(found) == ["09:00", "09:30", "10:00", "10:30", "11:00", "11:30"]


def test_results_are_ordered_by_start_then_provider_then_operatory() -> None:
    found = slots(query(spec(), MONDAY), level_2a())
    keys = [(s.start, s.provider_id, s.operatory_id) for s in found]
    assert keys == sorted(keys)
    assert len(found) == 14 + 2 * 14 + 3 * 14  # Smith, Patel, Lee: every room searched


def test_slots_are_in_the_query_zone() -> None:
    found = slots(query(spec(), tz=NY), [hours(PATEL, OP1, "09:00", "10:00")])
    assert iso(found)[0][0] == "2026-05-07T09:00:00-04:00"
    assert all(s.start.tzinfo is NY for s in found)


def test_zero_days_or_an_empty_window_yield_nothing() -> None:
    assert slots(query(spec(), days=0), patel_op1_day()) == []
    assert slots(query(spec()), [hours(PATEL, OP1, "12:00", "09:00")]) == []
    assert slots(query(spec(minutes=240)), patel_op1_day()) == []


@pytest.mark.parametrize(
    "build",
    [
        lambda: hours(PATEL, OP1, "09:00", "10:00", days={"Tues"}),
        lambda: ProviderRule(PATEL, frozenset({1}), "maybe", frozenset(), time(9), time(10)),
        lambda: Busy(datetime(2026, 5, 7, 9), datetime(2026, 5, 7, 10), PATEL, OP1),
        lambda: query(spec(), now=datetime(2026, 5, 7, 9)),
        lambda: query(spec(), patient_status="any"),
        lambda: query(spec(), interval_minutes=0),
        lambda: spec(minutes=0),
    ],
)
def test_invalid_inputs_are_rejected_early(build: object) -> None:
    with pytest.raises(ValueError):
        build()  # type: ignore[operator]


# --- Daylight saving time ----------------------------------------------------------------------

SPRING_FORWARD = date(2026, 3, 8)  # New York: 02:00 EST -> 03:00 EDT
FALL_BACK = date(2026, 11, 1)  # New York: 02:00 EDT -> 01:00 EST


@pytest.mark.parametrize(
    ("day", "offset"), [(SPRING_FORWARD, "-04:00"), (FALL_BACK, "-05:00"), (MONDAY, "-04:00")]
)
def test_dst_days_keep_local_working_hours(day: date, offset: str) -> None:
    found = slots(query(spec(), day, tz=NY), [hours(PATEL, OP1, "09:00", "12:00")])
    assert [s.start.isoformat() for s in found] == [
        f"{day}T{hhmm}:00{offset}"
        for hhmm in ("09:00", "09:30", "10:00", "10:30", "11:00", "11:30")
    ]
    assert all(s.end - s.start == timedelta(minutes=30) for s in found)


def test_spring_forward_night_steps_in_absolute_time() -> None:
    found = slots(query(spec(), SPRING_FORWARD, tz=NY), [hours(PATEL, OP1, "01:00", "04:00")])
    assert [s.start.isoformat() for s in found] == [
        "2026-03-08T01:00:00-05:00",
        "2026-03-08T01:30:00-05:00",
        "2026-03-08T03:00:00-04:00",  # 02:00-02:59 does not exist that night
        "2026-03-08T03:30:00-04:00",
    ]
    assert_wall_clock_exists(found)


def test_a_working_hour_beginning_in_the_gap_moves_forward_by_the_gap() -> None:
    found = slots(query(spec(), SPRING_FORWARD, tz=NY), [hours(PATEL, OP1, "02:30", "04:00")])
    assert [s.start.isoformat() for s in found] == ["2026-03-08T03:30:00-04:00"]


def test_fall_back_night_offers_the_repeated_hour_twice() -> None:
    found = slots(query(spec(minutes=60), FALL_BACK, tz=NY), [hours(PATEL, OP1, "01:00", "04:00")])
    assert [s.start.isoformat() for s in found] == [
        "2026-11-01T01:00:00-04:00",
        "2026-11-01T01:00:00-05:00",  # the same wall-clock hour, an hour later
        "2026-11-01T02:00:00-05:00",
        "2026-11-01T03:00:00-05:00",
    ]
    assert [s.start.fold for s in found] == [0, 1, 0, 0]
    assert_wall_clock_exists(found)


def test_ambiguous_begin_means_the_first_occurrence_unless_fold_is_set() -> None:
    first = hours(PATEL, OP1, "01:30", "03:00")
    second = replace(first, begin=time(1, 30, fold=1))
    assert iso(slots(query(spec(), FALL_BACK, tz=NY), [first]))[0][0] == "2026-11-01T01:30:00-04:00"
    assert (
        iso(slots(query(spec(), FALL_BACK, tz=NY), [second]))[0][0] == "2026-11-01T01:30:00-05:00"
    )


def test_day_window_and_local_instant() -> None:
    assert day_window(time(9), time(12), SPRING_FORWARD, NY) == (
        datetime(2026, 3, 8, 13, tzinfo=UTC),
        datetime(2026, 3, 8, 16, tzinfo=UTC),
    )
    begin, end = day_window(time(1), time(4), SPRING_FORWARD, NY) or (None, None)
    assert begin is not None and end is not None
    assert end.astimezone(UTC) - begin.astimezone(UTC) == timedelta(hours=2)
    assert end - begin == timedelta(hours=3)  # same-zone subtraction is wall-clock (PEP 495)
    assert str(day_window(time(2, 30), time(4), SPRING_FORWARD, NY)[0]) == (  # type: ignore[index]
        "2026-03-08 03:30:00-04:00"
    )
    assert day_window(time(12), time(9), MONDAY, NY) is None
    assert local_instant(FALL_BACK, time(1, 30, fold=1), NY).utcoffset() == timedelta(hours=-5)


def assert_wall_clock_exists(found: Iterable[Slot]) -> None:
    """Every start is a real local time: reading its wall clock back gives the same instant."""
    for s in found:
        wall = s.start.replace(tzinfo=None)
        again = datetime.combine(wall.date(), wall.time(), tzinfo=s.start.tzinfo).replace(
            fold=s.start.fold
        )
        assert again.astimezone(UTC) == s.start.astimezone(UTC), s.start


# --- Properties --------------------------------------------------------------------------------

PROVIDERS = (1, 2, 3)
OPERATORIES = (11, 12, 13)
LOCATIONS = (1, 2)
TYPE_IDS = (7, 8)
ZONES = (ZoneInfo("UTC"), NY, LA)
BASE_DATES = (date(2026, 3, 6), date(2026, 10, 30), date(2026, 5, 4))  # around DST changes


def brute_force(
    q: SlotQuery,
    working_hours: Sequence[WorkingHour],
    busy_time: Sequence[Busy],
    rules: Sequence[ProviderRule],
    capabilities: dict[int, frozenset[str]],
) -> list[Slot]:
    """The semantics written as plainly as possible: every grid point, every check, in UTC.

    (In UTC on purpose: datetimes sharing a tzinfo compare and hash by wall clock, so on the
    fall-back night 01:15 EDT and 01:15 EST would be "equal".)
    """
    t = q.type
    if q.days <= 0 or not (t.new_patients if q.patient_status == "new" else t.existing_patients):
        return []
    length = timedelta(minutes=t.minutes)
    step = timedelta(minutes=q.interval_minutes or t.minutes)
    earliest, latest = q.now + t.lead_time, q.now + t.horizon
    found = set()
    for n in range(q.days):
        day = q.start_date + timedelta(days=n)
        for wh in working_hours:
            if not (
                wh.active
                and t.id in wh.appointment_type_ids
                and q.provider_id in (None, wh.provider_id)
                and q.location_id in (None, wh.location_id)
                and (not t.eligible_provider_ids or wh.provider_id in t.eligible_provider_ids)
                and t.required_capabilities <= capabilities.get(wh.operatory_id, frozenset())
                and (
                    day == wh.specific_date
                    if wh.specific_date
                    else WEEKDAYS[day.weekday()] in wh.days
                )
            ):
                continue
            matching = [
                r
                for r in rules
                if r.provider_id == wh.provider_id
                and t.id in r.appointment_type_ids
                and r.patient_status in ("any", q.patient_status)
            ]
            windows = [
                (local_instant(day, r.begin, q.tz), local_instant(day, r.end, q.tz))
                for r in matching
                if WEEKDAYS[day.weekday()] in r.days
            ]
            begin = local_instant(day, wh.begin, q.tz).astimezone(UTC)
            end = local_instant(day, wh.end, q.tz).astimezone(UTC)
            start = begin
            while start + length <= end:
                stop = start + length
                if (
                    earliest <= start <= latest
                    and (not matching or any(a <= start and stop <= b for a, b in windows))
                    and not any(
                        b.start < b.end  # an empty interval holds no time
                        and b.start < stop
                        and start < b.end
                        and (
                            b.provider_id == wh.provider_id
                            or b.operatory_id == wh.operatory_id
                            or (
                                b.provider_id is None
                                and b.operatory_id is None
                                and b.location_id in (None, wh.location_id)
                            )
                        )
                        for b in busy_time
                    )
                ):
                    found.add((start, wh.provider_id, wh.operatory_id, wh.location_id))
                start += step
    return [
        Slot(start.astimezone(q.tz), (start + length).astimezone(q.tz), p, o, loc)
        for start, p, o, loc in sorted(found)
    ]


# Strategies are built once here (building them inside every draw is slow). Hypothesis leans on
# "simple" values (first choices, zero offsets), so each is arranged for the simple value to be the
# permissive one: a schedule that has slots, busy time that hits them.


def quarter(n: int) -> time:
    n = min(95, max(0, n))
    return time(n // 4, n % 4 * 15)


# A local window: begins around 09:00, lasts around 4 h, sometimes ends before it begins (empty).
windows = st.tuples(st.integers(-36, 48), st.integers(-24, 24)).map(
    lambda w: (quarter(36 + w[0]), quarter(36 + w[0] + 16 + w[1]))
)
weekday_sets = st.frozensets(st.sampled_from(WEEKDAYS), max_size=6).map(lambda out: ALL_DAYS - out)
providers = st.sampled_from(PROVIDERS)
operatories = st.sampled_from(OPERATORIES)
locations = st.sampled_from(LOCATIONS)
type_ids = st.sampled_from(TYPE_IDS)
mostly_true = st.sampled_from((True, True, True, False))


def mostly(value: T, other: st.SearchStrategy[T]) -> st.SearchStrategy[T]:
    """`value` three times in four, otherwise something drawn from `other`."""
    return st.integers(0, 3).flatmap(lambda n: other if n == 3 else st.just(value))


capability_sets = st.frozensets(st.just("procedure"), max_size=1)
type_specs = st.builds(
    TypeSpec,
    id=type_ids,
    minutes=st.sampled_from((30, 15, 45, 60, 90)),
    eligible_provider_ids=mostly(frozenset(), st.frozensets(providers, max_size=2)),
    required_capabilities=mostly(frozenset(), capability_sets),
    lead_time=st.integers(0, 24 * 60).map(lambda m: timedelta(minutes=m)),
    horizon=st.integers(0, 8 * 24 * 60).map(lambda m: timedelta(minutes=8 * 24 * 60 - m)),
    new_patients=mostly_true,
    existing_patients=mostly_true,
)
hour_rows = st.lists(
    st.tuples(
        providers,
        operatories,
        locations,
        windows,
        weekday_sets,
        st.none() | st.integers(0, 4),  # specific date, as an offset from the first day
        mostly(frozenset(TYPE_IDS), st.frozensets(type_ids, min_size=1)),
        mostly_true,
    ),
    min_size=1,
    max_size=6,
)
busy_rows = st.lists(
    st.tuples(
        st.integers(0, 5),  # which working hour it aims at
        st.sampled_from(("both", "provider", "operatory", "location", "everywhere", "stray")),
        st.integers(0, 4),  # day offset
        st.integers(-90, 300),  # start, in minutes after that working hour's begin
        st.integers(0, 59),  # seconds: off the grid, to exercise rounding
        st.integers(-30, 150).map(lambda m: 30 + m),  # minutes long (0: empty)
    ),
    max_size=12,
)
rule_lists = st.lists(
    st.tuples(
        providers,
        st.frozensets(type_ids, min_size=1),
        st.sampled_from(("new", "existing", "any")),
        weekday_sets,
        windows,
    ).map(lambda r: ProviderRule(r[0], r[1], r[2], r[3], *r[4])),
    max_size=3,
)


@st.composite
def scenarios(
    draw: st.DrawFn,
) -> tuple[SlotQuery, list[WorkingHour], list[Busy], list[ProviderRule], dict[int, frozenset[str]]]:
    tz = draw(st.sampled_from(ZONES))
    base = draw(st.sampled_from(BASE_DATES))
    origin = datetime.combine(base, time(0), tzinfo=tz)

    def instant(day: int, minutes: int) -> datetime:
        """Local wall clock `minutes` after midnight on day `day`, as a UTC instant."""
        wall = datetime.combine(base + timedelta(days=day), time(0)) + timedelta(minutes=minutes)
        return wall.replace(tzinfo=tz).astimezone(UTC)

    working_hours = [
        WorkingHour(
            i, p, o, loc, b, e, d, None if n is None else base + timedelta(days=n), t, active
        )
        for i, (p, o, loc, (b, e), d, n, t, active) in enumerate(draw(hour_rows))
    ]
    busy_time = []
    for target, kind, day, offset, seconds, length in draw(busy_rows):
        wh = working_hours[target % len(working_hours)]
        start = wh.begin.hour * 60 + wh.begin.minute + offset
        provider, operatory, location = {
            "both": (wh.provider_id, wh.operatory_id, wh.location_id),
            "provider": (wh.provider_id, None, None),
            "operatory": (None, wh.operatory_id, None),
            "location": (None, None, wh.location_id),
            "everywhere": (None, None, None),
            "stray": (PROVIDERS[target % 3], OPERATORIES[day % 3], LOCATIONS[offset % 2]),
        }[kind]
        busy_time.append(
            Busy(
                instant(day, start) + timedelta(seconds=seconds),
                instant(day, start + length),
                provider,
                operatory,
                location,
            )
        )
    q = SlotQuery(
        type=draw(type_specs),
        start_date=base,
        days=draw(st.integers(1, 4)),
        tz=tz,
        now=origin.astimezone(UTC)
        + timedelta(minutes=draw(st.integers(-3 * 24 * 60, 24 * 60)))
        + timedelta(microseconds=draw(st.integers(0, 999_999))),
        patient_status=draw(st.sampled_from(("existing", "new"))),
        provider_id=draw(mostly(None, providers)),
        location_id=draw(mostly(None, locations)),
        interval_minutes=draw(st.none() | st.sampled_from((15, 20, 30))),
    )
    capabilities = {o: draw(capability_sets) for o in OPERATORIES[:2]}
    return q, working_hours, busy_time, draw(rule_lists), capabilities


properties = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,  # the same examples on every run: CI stays reproducible
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

Scenario = tuple[
    SlotQuery, list[WorkingHour], list[Busy], list[ProviderRule], dict[int, frozenset[str]]
]


@properties
@given(scenarios())
def test_property_matches_the_brute_force_definition(scenario: Scenario) -> None:
    assert iso(find_slots(*scenario)) == iso(brute_force(*scenario))


def as_rows(busy_time: Iterable[Busy]) -> list[tuple[int, int, int | None, int | None, int | None]]:
    """Busy time as the selectors read it from PostgreSQL: whole seconds, start floored and end
    ceiled (sub-second edges only ever make time less bookable)."""
    return [
        (
            math.floor(b.start.timestamp()),
            math.ceil(b.end.timestamp()),
            b.provider_id,
            b.operatory_id,
            b.location_id,
        )
        for b in busy_time
    ]


@properties
@given(scenarios())
def test_property_integer_rows_and_a_reused_index_give_the_brute_force_answer(
    scenario: Scenario,
) -> None:
    q, working_hours, busy_time, rules, capabilities = scenario
    index = BusyTimes(as_rows(busy_time))
    expected = iso(brute_force(*scenario))
    assert iso(find_slots(q, working_hours, index, rules, capabilities)) == expected
    # The index's lazily sorted groups are a cache: a second question over it (another zone,
    # another window) answers as if asked first.
    other = replace(q, tz=NY if q.tz is not NY else LA, start_date=q.start_date + timedelta(1))
    assert iso(find_slots(other, working_hours, index, rules, capabilities)) == iso(
        find_slots(other, working_hours, busy_time, rules, capabilities)
    )
    assert iso(find_slots(q, working_hours, index, rules, capabilities)) == expected


@properties
@given(scenarios())
def test_property_columns_group_the_slots_by_start_each_instant_once(scenario: Scenario) -> None:
    columns = find_slot_columns(*scenario)
    assert iso(slots_of(columns)) == iso(brute_force(*scenario))
    instants = [c.start.astimezone(UTC) for c in columns]
    assert instants == sorted(set(instants))  # one column per start, in start order
    assert all(c.pairs and c.pairs == sorted(set(c.pairs)) for c in columns)
    # Regrouping the slots finds the same columns (slot_columns_of, for merged zones).
    assert slot_columns_of(slots_of(columns)) == columns


@properties
@given(scenarios())
def test_property_no_slot_overlaps_busy_time_of_its_provider_or_operatory(
    scenario: Scenario,
) -> None:
    busy_time = scenario[2]
    for s in find_slots(*scenario):
        for b in busy_time:
            if b.start < b.end and b.start < s.end and s.start < b.end:
                assert b.provider_id != s.provider_id
                assert b.operatory_id != s.operatory_id
                assert (
                    b.provider_id is not None
                    or b.operatory_id is not None
                    or (b.location_id not in (None, s.location_id))
                )


@properties
@given(scenarios())
def test_property_every_slot_lies_inside_an_active_bound_working_hour(scenario: Scenario) -> None:
    q, working_hours, *_ = scenario
    for s in find_slots(*scenario):
        start, end = s.start.astimezone(UTC), s.end.astimezone(UTC)  # compare instants
        assert end - start == timedelta(minutes=q.type.minutes)
        day = s.start.date()  # local: windows never cross midnight
        assert any(
            wh.active
            and q.type.id in wh.appointment_type_ids
            and (wh.provider_id, wh.operatory_id, wh.location_id)
            == (s.provider_id, s.operatory_id, s.location_id)
            and wh.applies_on(day)
            and (window := day_window(wh.begin, wh.end, day, q.tz)) is not None
            and window[0].astimezone(UTC) <= start
            and end <= window[1].astimezone(UTC)
            for wh in working_hours
        ), s


@properties
@given(scenarios(), st.randoms(use_true_random=False))
def test_property_result_is_independent_of_input_order(
    scenario: Scenario, rnd: random.Random
) -> None:
    q, working_hours, busy_time, rules, capabilities = scenario
    expected = find_slots(*scenario)
    for sequence in (working_hours, busy_time, rules):
        rnd.shuffle(sequence)
    assert iso(find_slots(q, working_hours, busy_time, rules, capabilities)) == iso(expected)


@properties
@given(scenarios())
def test_property_slots_are_unique_sorted_and_within_lead_time_and_horizon(
    scenario: Scenario,
) -> None:
    q = scenario[0]
    found = find_slots(*scenario)
    assert len({(s.start.astimezone(UTC), s.provider_id, s.operatory_id) for s in found}) == len(
        found
    )
    assert found == sorted(
        found, key=lambda s: (s.start.astimezone(UTC), s.provider_id, s.operatory_id)
    )
    for s in found:
        assert q.now + q.type.lead_time <= s.start <= q.now + q.type.horizon
        assert s.start.tzinfo is q.tz


# --- The engine against the definition on denser, odder inputs ----------------------------------
#
# The engine reads busy time as bitmasks over the candidate starts (see `find_slots`); these
# properties pin it to the brute-force definition where that representation could slip: DST
# nights in both hemispheres' zones, grids that do not start on a whole minute, busy edges at
# odd seconds, fine grids (masks wider than a machine word), many overlapping records.

LONDON = ZoneInfo("Europe/London")
# Two days before a change: Los Angeles/New York (8 Mar, 1 Nov 2026), London (29 Mar, 25 Oct).
DST_BASES = (date(2026, 3, 6), date(2026, 10, 30), date(2026, 3, 27), date(2026, 10, 23))

odd_times = st.tuples(
    st.integers(0, 90),  # quarter hours from midnight: DST nights included
    mostly(0, st.integers(1, 59)),  # seconds: a grid that is not on the minute
    mostly(0, st.just(1)),  # fold: the repeated hour of a fall-back night
).map(lambda t: quarter(t[0]).replace(second=t[1], fold=t[2]))


@st.composite
def dense_scenarios(draw: st.DrawFn) -> Scenario:
    tz = draw(st.sampled_from((LA, LONDON, NY)))
    base = draw(st.sampled_from(DST_BASES))
    days = draw(st.integers(1, 6))

    def instant(day: int, seconds: int) -> datetime:
        wall = datetime.combine(base + timedelta(days=day), time(0)) + timedelta(seconds=seconds)
        return wall.replace(tzinfo=tz).astimezone(UTC)

    working_hours = []
    for i in range(draw(st.integers(1, 8))):
        begin = draw(odd_times)
        hours_long = draw(st.integers(-1, 10))  # negative: an empty window
        end = quarter(begin.hour * 4 + begin.minute // 15 + 4 * hours_long)
        working_hours.append(
            WorkingHour(
                i,
                draw(providers),
                draw(operatories),
                draw(locations),
                begin,
                end.replace(fold=draw(mostly(0, st.just(1)))),
                draw(weekday_sets),
                draw(mostly(None, st.integers(0, days).map(lambda n: base + timedelta(days=n)))),
                draw(mostly(frozenset(TYPE_IDS), st.frozensets(type_ids, min_size=1))),
                draw(mostly_true),
            )
        )
    busy_time = []
    for _ in range(draw(st.integers(0, 40))):
        wh = draw(st.sampled_from(working_hours))
        start = (wh.begin.hour * 60 + wh.begin.minute) * 60 + draw(st.integers(-3600, 8 * 3600))
        length = draw(st.sampled_from((0, 60, 900, 1800, 3600, 7200)) | st.integers(-60, 9000))
        provider, operatory, location = draw(
            st.sampled_from(
                (
                    (wh.provider_id, wh.operatory_id, wh.location_id),
                    (wh.provider_id, None, wh.location_id),
                    (None, wh.operatory_id, None),
                    (None, None, wh.location_id),
                    (None, None, None),
                    (draw(providers), draw(operatories), draw(locations)),
                )
            )
        )
        day = draw(st.integers(-1, days))
        busy_time.append(
            Busy(
                instant(day, start)
                + timedelta(microseconds=draw(mostly(0, st.integers(1, 10**6)))),
                instant(day, start + length),
                provider,
                operatory,
                location,
            )
        )
    q = SlotQuery(
        type=draw(type_specs),
        start_date=base,
        days=days,
        tz=tz,
        now=instant(0, 0) + timedelta(seconds=draw(st.integers(-86400, 2 * 86400))),
        patient_status=draw(st.sampled_from(("existing", "new"))),
        provider_id=draw(mostly(None, providers)),
        location_id=draw(mostly(None, locations)),
        interval_minutes=draw(st.none() | st.sampled_from((5, 10, 15, 20, 25, 30, 45, 60))),
    )
    capabilities = {o: draw(capability_sets) for o in OPERATORIES[:2]}
    return q, working_hours, busy_time, draw(rule_lists), capabilities


@properties
@given(dense_scenarios())
def test_property_dense_odd_inputs_match_the_brute_force_definition(scenario: Scenario) -> None:
    q, working_hours, busy_time, rules, capabilities = scenario
    expected = iso(brute_force(*scenario))
    assert iso(find_slots(*scenario)) == expected
    index = BusyTimes(as_rows(busy_time))  # the selectors' path, reused by a second question
    assert iso(find_slots(q, working_hours, index, rules, capabilities)) == expected
    assert iso(find_slots(q, working_hours, index, rules, capabilities)) == expected
