"""The slot engine: bookable slots from working hours, busy time and rules.

A pure function (no Django, no I/O) so the receptionist API and the portal derive availability
the same way, and so it can be property-tested and benchmarked in isolation. The EHR sandbox does
not use it: `ehr_sandbox/slots.py` derives slots on its own, as the reference this engine is
tested against.
It follows NexHealth's `/available_slots` derivation ("Level 2D" of the scheduling guide):

* only active working hours bound to the requested type are candidates; the type sets the length;
* a slot lies wholly inside one working hour and starts on a grid from that hour's begin;
* anything overlapping busy time (appointments, calendar blocks, live holds) of the same
  provider or the same operatory, or a location-wide block, is removed;
* on top of NexHealth: patient status, eligible providers, operatory capabilities, provider
  rules, lead time and horizon;
* every operatory of a provider is searched (NexHealth without `operatory_id` returns only the
  first one, a known gotcha we deliberately do not reproduce).

Time zones. Working hours and rules are wall-clock times in the location's zone. A local time is
resolved with PEP 495 semantics: an ambiguous time (fall back) means its first occurrence unless
the `time` carries `fold=1`; a nonexistent time (spring forward) is read with the offset in force
before the gap, i.e. it moves forward by the gap (02:30 becomes 03:30 EDT). Slot starts are then
stepped in absolute time and converted back, so a slot never starts at a nonexistent wall-clock
time and its length is always the real duration.

Speed. Availability for a month is answered per request (`benchmarks/bench_slots.py` measures
it), so the Python-level work is one small step per busy row, candidate start and slot returned.
Instants are integer POSIX seconds. The candidate starts of every pair (the grid points inside
its working hours, rules, lead time and horizon) are sorted once into one list, and sets of
candidates are Python ints used as bitmasks over it: a busy row blocks a run of consecutive
candidates, found with two bisects (cached per distinct edge), and is ORed into its provider's,
operatory's or location's mask; a pair's free slots are then a few big-int operations, with no
sorting of busy time and no walk per slot. Free slots come out in the result's order by reading
the pairs' masks column by column, and datetimes are only built for the starts returned.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from functools import reduce
from itertools import compress, repeat
from operator import add, itemgetter, or_
from typing import NamedTuple

__all__ = [
    "PATIENT_STATUSES",
    "WEEKDAYS",
    "Busy",
    "BusyRow",
    "BusyTimes",
    "FreeRow",
    "ProviderRule",
    "Slot",
    "SlotColumn",
    "SlotQuery",
    "TypeSpec",
    "WorkingHour",
    "day_window",
    "find_slot_columns",
    "find_slots",
    "local_instant",
    "native_hours",
    "slot_columns_of",
    "slots_of",
]

# Fixed English names (calendar.day_name is locale-dependent); the values NexHealth uses.
WEEKDAYS: tuple[str, ...] = (
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
)
PATIENT_STATUSES = frozenset({"new", "existing"})
_RULE_STATUSES = PATIENT_STATUSES | {"any"}


def _check_days(days: frozenset[str]) -> None:
    # A typo ("Tues") would otherwise silently make a schedule disappear.
    unknown = days - set(WEEKDAYS)
    if unknown:
        raise ValueError(f"unknown weekday names: {sorted(unknown)}; use {WEEKDAYS}")


def _check_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")


@dataclass(frozen=True, slots=True)
class WorkingHour:
    """When a provider works in one operatory, and which types may be booked then.

    With `specific_date` the record applies on that date only and `days` is ignored (synced
    records repeat the weekday there; ignoring it means a disagreeing list never hides a dated
    record). Otherwise it recurs on the weekdays in `days`. Records are additive: overlapping
    records for the same provider and operatory do not produce duplicate slots.
    `end <= begin` is an empty window (no overnight shifts).
    """

    id: int
    provider_id: int
    operatory_id: int
    location_id: int
    begin: time
    end: time
    days: frozenset[str]
    specific_date: date | None
    appointment_type_ids: frozenset[int]
    active: bool = True
    label: str | None = None

    def __post_init__(self) -> None:
        # Accept any iterable from callers (ORM lists) but keep the record hashable.
        object.__setattr__(self, "days", frozenset(self.days))
        object.__setattr__(self, "appointment_type_ids", frozenset(self.appointment_type_ids))
        _check_days(self.days)

    def applies_on(self, day: date) -> bool:
        if self.specific_date is not None:
            return day == self.specific_date
        return WEEKDAYS[day.weekday()] in self.days


@dataclass(frozen=True, slots=True)
class Busy:
    """Time that cannot be booked: an EHR appointment, a calendar block or a live hold.

    It blocks its provider (in every operatory) and its operatory (for every provider). With
    neither a provider nor an operatory it is a location-wide block (the guide's block with
    `provider_id: null`), for its location, or for every location when `location_id` is None.
    Intervals are half-open: a busy 9:00-11:00 leaves an 11:00 slot bookable. An empty or
    inverted interval blocks nothing (one bad EHR record must not break a practice's
    availability).
    """

    start: datetime
    end: datetime
    provider_id: int | None
    operatory_id: int | None
    location_id: int | None = None

    def __post_init__(self) -> None:
        _check_aware("Busy.start", self.start)
        _check_aware("Busy.end", self.end)


@dataclass(frozen=True, slots=True)
class ProviderRule:
    """Narrows when `appointment_type_ids` may be booked with a provider for a patient status.

    Rules matching the same (provider, type, status) are alternatives: a slot is allowed if it
    lies wholly inside any one rule's window on one of its days. A provider with no matching
    rule is unrestricted. `patient_status` is "new", "existing" or "any".
    """

    provider_id: int
    appointment_type_ids: frozenset[int]
    patient_status: str
    days: frozenset[str]
    begin: time
    end: time

    def __post_init__(self) -> None:
        object.__setattr__(self, "days", frozenset(self.days))
        object.__setattr__(self, "appointment_type_ids", frozenset(self.appointment_type_ids))
        _check_days(self.days)
        if self.patient_status not in _RULE_STATUSES:
            raise ValueError(f"patient_status must be one of {sorted(_RULE_STATUSES)}")

    def matches(self, provider_id: int, type_id: int, patient_status: str) -> bool:
        return (
            self.provider_id == provider_id
            and type_id in self.appointment_type_ids
            and self.patient_status in ("any", patient_status)
        )


@dataclass(frozen=True, slots=True)
class TypeSpec:
    """What the engine needs to know about an appointment type.

    `eligible_provider_ids` empty means any provider; `required_capabilities` must all be
    present on the operatory (a Mohs type needs a "procedure" suite).
    """

    id: int
    minutes: int
    eligible_provider_ids: frozenset[int]
    required_capabilities: frozenset[str]
    lead_time: timedelta
    horizon: timedelta
    new_patients: bool
    existing_patients: bool

    def __post_init__(self) -> None:
        object.__setattr__(self, "eligible_provider_ids", frozenset(self.eligible_provider_ids))
        object.__setattr__(self, "required_capabilities", frozenset(self.required_capabilities))
        if self.minutes <= 0:
            raise ValueError("TypeSpec.minutes must be positive")

    def allows(self, patient_status: str) -> bool:
        return self.new_patients if patient_status == "new" else self.existing_patients


@dataclass(frozen=True, slots=True)
class SlotQuery:
    """One availability question: a type over `days` local dates from `start_date`.

    `now` anchors lead time and horizon. `interval_minutes` is the grid step (default: the
    type's length), counted from each working hour's begin.
    """

    type: TypeSpec
    start_date: date
    days: int
    tz: tzinfo
    now: datetime
    patient_status: str
    provider_id: int | None = None
    location_id: int | None = None
    interval_minutes: int | None = None

    def __post_init__(self) -> None:
        _check_aware("SlotQuery.now", self.now)
        if self.patient_status not in PATIENT_STATUSES:
            raise ValueError(f"patient_status must be one of {sorted(PATIENT_STATUSES)}")
        if self.days < 0:
            raise ValueError("SlotQuery.days must not be negative")
        if self.interval_minutes is not None and self.interval_minutes <= 0:
            raise ValueError("SlotQuery.interval_minutes must be positive")


class Slot(NamedTuple):
    """A bookable slot; `start`/`end` are aware datetimes in the query's zone.

    A NamedTuple rather than a frozen dataclass: a month of availability is thousands of slots
    and a NamedTuple is cheaper to build, while staying immutable,
    hashable and typed. Beware that Python compares and subtracts datetimes sharing a tzinfo by
    wall clock (PEP 495), so on DST nights compare or subtract `start`/`end` in UTC.
    """

    start: datetime
    end: datetime
    provider_id: int
    operatory_id: int
    location_id: int


def local_instant(day: date, wall: time, tz: tzinfo) -> datetime:
    """The aware instant of wall-clock `wall` on `day` in `tz` (see module doc for DST)."""
    return datetime.combine(day, wall.replace(tzinfo=None), tzinfo=tz)  # keeps wall.fold


def day_window(begin: time, end: time, day: date, tz: tzinfo) -> tuple[datetime, datetime] | None:
    """Absolute [start, end) of a local begin-end window on `day`, or None if it is empty.

    The resolution `find_slots` applies to working hours and rules, for callers that show or
    check a window. Both ends are normalised (UTC and back) so offsets are the real ones: a
    nonexistent 02:30 comes back as 03:30-04:00, not 02:30-05:00.
    """
    start = local_instant(day, begin, tz)
    stop = local_instant(day, end, tz)
    if stop.timestamp() <= start.timestamp():
        return None
    return (
        datetime.fromtimestamp(start.timestamp(), tz),
        datetime.fromtimestamp(stop.timestamp(), tz),
    )


# One free window the EHR offers, in whole POSIX seconds: (provider_id, location_id, start, end).
FreeRow = tuple[int, int, int, int]


def native_hours(
    hours: Iterable[WorkingHour], free: Iterable[FreeRow], tz: tzinfo
) -> list[WorkingHour]:
    """Working hours cut down to the EHR's own free windows (`WorkingHoursMode.NATIVE`).

    At such a location the EHR says when a provider is free and our working hours say where
    (the operatory, with its capabilities) and for what (the types): each free window of a
    provider at a location becomes a dated record for every working hour of that provider
    there on that day, clipped to both, so `find_slots` then applies our layer (rules, lead
    time, horizon, busy time) exactly as for any other location. A window crossing midnight
    is skipped (no overnight slots), as is one outside every working hour.
    """
    by_pair: dict[tuple[int, int], list[WorkingHour]] = defaultdict(list)
    for wh in hours:
        if wh.active:
            by_pair[(wh.provider_id, wh.location_id)].append(wh)
    out: list[WorkingHour] = []
    for provider_id, location_id, start, end in free:
        candidates = by_pair.get((provider_id, location_id))
        if not candidates or end <= start:
            continue
        first = datetime.fromtimestamp(start, tz)
        last = datetime.fromtimestamp(end, tz)
        day = first.date()
        if last.date() != day and last.time() != time(0):
            continue
        begin = first.time()
        stop = last.time() if last.date() == day else time.max
        for wh in candidates:
            if not wh.applies_on(day):
                continue
            lo, hi = max(begin, wh.begin), min(stop, wh.end)
            if lo < hi:
                out.append(
                    WorkingHour(
                        id=wh.id,
                        provider_id=provider_id,
                        operatory_id=wh.operatory_id,
                        location_id=location_id,
                        begin=lo,
                        end=hi,
                        days=frozenset(),
                        specific_date=day,
                        appointment_type_ids=wh.appointment_type_ids,
                        label=wh.label,
                    )
                )
    return out


# Instants inside the engine are whole POSIX seconds: integer arithmetic keeps the slot grid exact
# and is far cheaper than comparing aware datetimes. Rounding is always towards "less bookable"
# (busy start down, busy end up, working-hour begin up, end down), which for whole-second grid
# points gives exactly the answer the original instants would.
Interval = tuple[int, int]

# One busy interval in whole POSIX seconds: (start, end, provider_id, operatory_id, location_id),
# with the same meaning as `Busy` (start rounded down, end rounded up: "less bookable").
BusyRow = tuple[int, int, int | None, int | None, int | None]


class BusyTimes:
    """Busy time as whole-second rows, reusable across queries (several zones, or repeated
    questions over the same data).

    Build it from `Busy` values (`BusyTimes.of`) or straight from integer rows (`BusyTimes(rows)`),
    which is how the selectors hand over database rows without building a datetime per row.
    It only keeps the rows: what a row blocks depends on each query's candidate starts, so the
    per-row work (`_blocked`) is one pass per query, and nothing else is worth doing up front.
    """

    __slots__ = ("rows",)

    def __init__(self, rows: Iterable[BusyRow]) -> None:
        self.rows: tuple[BusyRow, ...] = tuple(rows)

    @classmethod
    def of(cls, busy: Iterable[Busy]) -> BusyTimes:
        floor, ceil = math.floor, math.ceil
        return cls(
            [
                (
                    floor(b.start.timestamp()),
                    ceil(b.end.timestamp()),
                    b.provider_id,
                    b.operatory_id,
                    b.location_id,
                )
                for b in busy
            ]
        )


class _Blocked(NamedTuple):
    """Candidate starts blocked by busy time, as bitmasks over a query's sorted candidate starts
    (bit i set: the slot starting at `starts[i]` overlaps busy time), per what the time blocks."""

    provider: dict[int, int]
    operatory: dict[int, int]
    location: dict[int | None, int]  # location-wide blocks; None: every location

    def of_pair(self, provider_id: int, operatory_id: int, location_id: int) -> int:
        """Everything that blocks this provider in this operatory at this location."""
        return (
            self.provider.get(provider_id, 0)
            | self.operatory.get(operatory_id, 0)
            | self.location.get(location_id, 0)
            | self.location.get(None, 0)
        )


def _blocked(rows: Sequence[BusyRow], starts: list[int], length: int) -> _Blocked:
    """Which of the sorted candidate `starts` (slots [t, t + length)) each row blocks.

    Busy [s, e) overlaps slot i iff s < starts[i] + length and starts[i] < e, i.e. for i in
    [bisect_right(starts, s - length), bisect_left(starts, e)): a run of bits. So a row costs one
    OR per group it blocks, however many slots it covers, and nothing needs sorting. Busy time
    sits on the practice's booking grid, so rows share their edges: each distinct edge is
    bisected once (the bisects were most of this function's cost).
    """
    firsts = {s: bisect_right(starts, s - length) for s in set(map(_start_of, rows))}
    stops = {e: bisect_left(starts, e) for e in set(map(_end_of, rows))}
    provider: defaultdict[int, int] = defaultdict(int)
    operatory: defaultdict[int, int] = defaultdict(int)
    location: defaultdict[int | None, int] = defaultdict(int)
    for s, e, provider_id, operatory_id, location_id in rows:
        first, stop = firsts[s], stops[e]
        if stop <= first or e <= s:  # misses every candidate; or empty or inverted, which
            continue  # blocks nothing (one bad EHR record must not break availability)
        run = (1 << stop) - (1 << first)  # bits first .. stop - 1
        if provider_id is not None:
            provider[provider_id] |= run
        if operatory_id is not None:
            operatory[operatory_id] |= run
        elif provider_id is None:
            location[location_id] |= run
    return _Blocked(provider, operatory, location)


_start_of, _end_of = itemgetter(0), itemgetter(1)
_provider_of, _operatory_of = itemgetter(2), itemgetter(3)


def _in_play(rows: Sequence[BusyRow], pairs: list[tuple[int, int, int]]) -> Sequence[BusyRow]:
    """The rows that can block one of `pairs`.

    A question about part of a practice (one provider, one location, one zone) is handed the
    whole practice's busy time (a provider's rooms are busy with other providers' patients too),
    so rows blocking no pair in play are dropped before the per-row work. Checking that every
    row is in play is two set builds in C, which spares the common whole-practice question the
    per-row test.
    """
    providers = {provider for provider, _, _ in pairs}
    operatories = {operatory for _, operatory, _ in pairs}
    if set(map(_provider_of, rows)) <= {None, *providers} and set(map(_operatory_of, rows)) <= {
        None,
        *operatories,
    }:
        return rows
    locations = {None, *(location for _, _, location in pairs)}
    return [
        row
        for row in rows
        if row[2] in providers
        or row[3] in operatories
        or (row[2] is None and row[3] is None and row[4] in locations)
    ]


# bin() digits to bytes 0/1: `compress` then picks the set bits' positions in C.
_BITS = bytes.maketrans(b"01", b"\x00\x01")


def _set_bits(mask: int, width: int) -> bytes:
    """`width` bytes, byte i 1 iff bit i of `mask` (0 <= mask < 2**width) is set, else 0."""
    return bin(mask)[:1:-1].encode().translate(_BITS).ljust(width, b"\0")


def _mask(positions: Iterable[int], width: int) -> int:
    """The int with exactly the bits at `positions` (< width) set, in linear time."""
    digits = bytearray(b"0") * width
    for i in positions:
        digits[i] = 49  # "1"
    return int(digits[::-1], 2) if width else 0


def find_slots(
    query: SlotQuery,
    working_hours: Iterable[WorkingHour],
    busy: Iterable[Busy] | BusyTimes,
    rules: Iterable[ProviderRule],
    operatory_capabilities: Mapping[int, frozenset[str]],
) -> list[Slot]:
    """Bookable slots for `query`, ordered by (start, provider_id, operatory_id, location_id).

    The result depends only on the inputs' contents, never their order, and holds no duplicates.
    `busy` may be `Busy` values or a `BusyTimes` (reusable across queries: several zones, or
    repeated questions over the same data).
    """
    return slots_of(find_slot_columns(query, working_hours, busy, rules, operatory_capabilities))


class SlotColumn(NamedTuple):
    """The slots starting at one instant: their shared `start` and `end` (aware, in the
    query's zone) and the (provider_id, operatory_id, location_id) free then, in order. What
    a caller writing thousands of slots out wants: each instant and each pair once."""

    start: datetime
    end: datetime
    pairs: list[tuple[int, int, int]]


def slots_of(columns: Iterable[SlotColumn]) -> list[Slot]:
    """The slots of columns, in the columns' order."""
    new = tuple.__new__  # what Slot(...) does, minus a Python-level call per slot
    found: list[Slot] = []
    for start, end, pairs in columns:
        found += map(new, repeat(Slot), map(add, repeat((start, end)), pairs))
    return found


def slot_columns_of(slots: Iterable[Slot]) -> list[SlotColumn]:
    """Slots ordered by start as columns: consecutive slots sharing their start and end
    objects (as the engine builds them) share a column."""
    columns: list[SlotColumn] = []
    last = None
    for slot in slots:
        if last is None or slot[0] is not last[0] or slot[1] is not last[1]:
            last = SlotColumn(slot[0], slot[1], [])
            columns.append(last)
        last[2].append((slot[2], slot[3], slot[4]))
    return columns


def find_slot_columns(
    query: SlotQuery,
    working_hours: Iterable[WorkingHour],
    busy: Iterable[Busy] | BusyTimes,
    rules: Iterable[ProviderRule],
    operatory_capabilities: Mapping[int, frozenset[str]],
) -> list[SlotColumn]:
    """`find_slots` as columns, one per start with a free slot, in start order."""
    spec = query.type
    if query.days == 0 or not spec.allows(query.patient_status):
        return []
    tz = query.tz
    length = spec.minutes * 60
    step = (query.interval_minutes or spec.minutes) * 60
    now = query.now.timestamp()
    earliest = math.ceil(now + spec.lead_time.total_seconds())  # first allowed start
    horizon_end = math.floor(now + spec.horizon.total_seconds()) + length  # latest allowed end

    # Every operatory of a provider is its own (provider, operatory, location) pair: all searched.
    hours_of: dict[tuple[int, int, int], list[WorkingHour]] = defaultdict(list)
    for wh in working_hours:
        if (
            wh.active
            and spec.id in wh.appointment_type_ids
            and (query.provider_id is None or wh.provider_id == query.provider_id)
            and (query.location_id is None or wh.location_id == query.location_id)
            and (not spec.eligible_provider_ids or wh.provider_id in spec.eligible_provider_ids)
            and spec.required_capabilities
            <= operatory_capabilities.get(wh.operatory_id, frozenset())
        ):
            hours_of[(wh.provider_id, wh.operatory_id, wh.location_id)].append(wh)
    if not hours_of or horizon_end - length < earliest:
        return []

    days = [query.start_date + timedelta(days=n) for n in range(query.days)]
    on_weekday: dict[str, list[int]] = defaultdict(list)  # "Monday" -> indexes into days
    for i, day in enumerate(days):
        on_weekday[WEEKDAYS[day.weekday()]].append(i)

    def day_indexes(record: WorkingHour | ProviderRule) -> list[int]:
        if isinstance(record, WorkingHour) and record.specific_date is not None:
            offset = (record.specific_date - query.start_date).days
            return [offset] if 0 <= offset < len(days) else []
        return [i for name in record.days for i in on_weekday.get(name, ())]

    spans_cache: dict[tuple[time, int, time, int], list[Interval | None]] = {}

    def spans(begin: time, end: time) -> list[Interval | None]:
        """Absolute [begin, end) of a local window on each query day; None where empty."""
        key = (begin, begin.fold, end, end.fold)  # time equality ignores fold (PEP 495)
        if key not in spans_cache:
            spans_cache[key] = resolved = []
            for day in days:
                start = math.ceil(local_instant(day, begin, tz).timestamp())
                stop = math.floor(local_instant(day, end, tz).timestamp())
                resolved.append((start, stop) if stop > start else None)
        return spans_cache[key]

    # Where a provider may take this type under their rules, per day index (absent = nowhere);
    # providers without a matching rule are unrestricted.
    allowed_of: dict[int, dict[int, list[Interval]]] = {}
    for rule in rules:
        if rule.matches(rule.provider_id, spec.id, query.patient_status):
            per_day = allowed_of.setdefault(rule.provider_id, defaultdict(list))
            windows = spans(rule.begin, rule.end)
            for i in day_indexes(rule):
                if (w := windows[i]) is not None:
                    per_day[i].append(w)

    # Candidate starts: the grid points (stepped from the working hour's begin) whose slot lies
    # inside the working hour, a rule window if the provider has rules, and lead time and
    # horizon. Pairs mostly share their working-hour patterns (and most providers have no
    # rule): the points of one pattern are computed once and shared.
    pairs = sorted(hours_of)
    unrestricted = [(earliest, horizon_end)]
    points_of: dict[tuple[object, ...], list[int]] = {}
    patterns_of: list[list[tuple[object, ...]]] = []  # per pair, its patterns' keys
    for pair in pairs:
        provider_id = pair[0]
        allowed = allowed_of.get(provider_id)
        patterns: list[tuple[object, ...]] = []
        for wh in hours_of[pair]:
            key: tuple[object, ...] = (
                wh.begin,
                wh.begin.fold,
                wh.end,
                wh.end.fold,
                wh.specific_date or wh.days,
                None if allowed is None else provider_id,
            )
            patterns.append(key)
            if key in points_of:
                continue
            points: list[int] = []
            points_of[key] = points
            windows = spans(wh.begin, wh.end)
            for i in day_indexes(wh):
                if (w := windows[i]) is None:
                    continue
                begin, end = w
                for a, b in unrestricted if allowed is None else allowed.get(i, []):
                    lo, hi = max(begin, a, earliest), min(end, b, horizon_end)
                    first = begin - (begin - lo) // step * step  # first grid point >= lo
                    points.extend(range(first, hi - length + 1, step))
        patterns_of.append(patterns)

    # Each pair's candidates and what blocks them are bitmasks over all candidate starts, sorted
    # (bit i: the slot at starts[i]). Overlapping working hours merge by OR, so no duplicates.
    starts = sorted(set().union(*points_of.values()))
    if not starts:
        return []
    width = len(starts)
    position = dict(zip(starts, range(width), strict=True))
    grid_of = {
        key: _mask(map(position.__getitem__, points), width) for key, points in points_of.items()
    }
    index = busy if isinstance(busy, BusyTimes) else BusyTimes.of(busy)
    blocked = _blocked(_in_play(index.rows, pairs), starts, length)

    # Each pair's free starts as a row of bytes (1: free) over all candidate starts. Read column
    # by column (zip), they come out in the result's order, by start then by pair: no sort.
    free_rows: list[bytes] = []
    used = 0  # the starts of any slot found
    for pair, patterns in zip(pairs, patterns_of, strict=True):
        free = reduce(or_, map(grid_of.__getitem__, patterns)) & ~blocked.of_pair(*pair)
        used |= free
        free_rows.append(_set_bits(free, width))
    used_bits = _set_bits(used, width)

    # Slots share boundaries (and pairs share the grid): build each datetime once.
    marks = list(compress(starts, used_bits))
    instants = {ts: datetime.fromtimestamp(ts, tz) for ts in {*marks, *(m + length for m in marks)}}
    return [
        SlotColumn(instants[start], instants[start + length], list(compress(pairs, column)))
        for start, column in compress(
            zip(starts, zip(*free_rows, strict=True), strict=True), used_bits
        )
    ]
