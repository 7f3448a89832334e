"""The slot engine: bookable slots from working hours, busy time and rules.

A pure function (no Django, no I/O) so the receptionist API, the portal and the EHR sandbox all
derive availability the same way, and so it can be property-tested and benchmarked in isolation.
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

Speed. Availability for a month is answered per request, so the work is kept linear: busy time
is grouped once per provider and per operatory and sorted; each working-hour window then walks
the free gaps between busy intervals with bisects, emitting a gap's grid points as one `range`;
instants are integer POSIX seconds and datetimes are only built for the slots returned.
`benchmarks/bench_slots.py` measures it.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from itertools import accumulate
from operator import itemgetter
from typing import NamedTuple

__all__ = [
    "PATIENT_STATUSES",
    "WEEKDAYS",
    "Busy",
    "BusyRow",
    "BusyTimes",
    "ProviderRule",
    "Slot",
    "SlotQuery",
    "TypeSpec",
    "WorkingHour",
    "day_window",
    "find_slots",
    "local_instant",
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
    and a NamedTuple is about three times cheaper to build (measured), while staying immutable,
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


# Instants inside the engine are whole POSIX seconds: integer arithmetic keeps the slot grid exact
# and is far cheaper than comparing aware datetimes. Rounding is always towards "less bookable"
# (busy start down, busy end up, working-hour begin up, end down), which for whole-second grid
# points gives exactly the answer the original instants would.
Interval = tuple[int, int]


_first, _second = itemgetter(0), itemgetter(1)


class _Blocked(NamedTuple):
    """Busy intervals sorted by start, with `reach[i]` the latest end among the first i+1.

    `reach` answers "is t inside busy time, and until when?" with one bisect, without first
    merging overlapping intervals.
    """

    starts: list[int]
    reach: list[int]

    @classmethod
    def of(cls, intervals: Iterable[Interval]) -> _Blocked:
        ordered = sorted(intervals)
        return cls(list(map(_first, ordered)), list(accumulate(map(_second, ordered), max)))


# One busy interval in whole POSIX seconds: (start, end, provider_id, operatory_id, location_id),
# with the same meaning as `Busy` (start rounded down, end rounded up: "less bookable").
BusyRow = tuple[int, int, int | None, int | None, int | None]


class BusyTimes:
    """Busy time in whole seconds, grouped by what it blocks; each group is sorted once, when a
    pair first needs it, and shared by every pair and every query that uses this object.

    A pair (provider, operatory, location) is blocked by two lists: the provider's own busy time
    plus location-wide blocks, and everything booked in the operatory. Build it from `Busy`
    values (`BusyTimes.of`) or straight from integer rows (`BusyTimes(rows)`), which is how the
    selectors hand over database rows without building a datetime per row. Immutable in meaning:
    the lazily sorted groups are a cache.
    """

    __slots__ = ("_own", "_room", "location", "operatory", "provider")

    def __init__(self, rows: Iterable[BusyRow]) -> None:
        self.provider: dict[int, list[Interval]] = {}
        self.operatory: dict[int, list[Interval]] = {}
        self.location: dict[int | None, list[Interval]] = {}
        self._own: dict[tuple[int, int], _Blocked] = {}
        self._room: dict[int, _Blocked] = {}
        by_provider: defaultdict[int, list[Interval]] = defaultdict(list)
        by_operatory: defaultdict[int, list[Interval]] = defaultdict(list)
        for start, end, provider, operatory, location in rows:
            if end <= start:
                continue  # empty or inverted: one bad EHR record must not break availability
            interval = (start, end)
            if provider is not None:
                by_provider[provider].append(interval)
            if operatory is not None:
                by_operatory[operatory].append(interval)
            elif provider is None:
                self.location.setdefault(location, []).append(interval)
        self.provider, self.operatory = dict(by_provider), dict(by_operatory)

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

    def blocking(
        self, provider_id: int, operatory_id: int, location_id: int
    ) -> tuple[_Blocked, _Blocked]:
        """The busy lists that block this provider in this operatory at this location."""
        own = self._own.get((provider_id, location_id))
        if own is None:
            own = self._own[(provider_id, location_id)] = _Blocked.of(
                [
                    *self.provider.get(provider_id, ()),
                    *self.location.get(location_id, ()),
                    *self.location.get(None, ()),
                ]
            )
        room = self._room.get(operatory_id)
        if room is None:
            room = self._room[operatory_id] = _Blocked.of(self.operatory.get(operatory_id, ()))
        return own, room


def _add_grid_starts(
    found: set[int],
    rank: int,
    scale: int,
    spaces: Iterable[tuple[int, int, int]],
    step: int,
    length: int,
    own: _Blocked,
    room: _Blocked,
) -> None:
    """Add to `found`, encoded as start * scale + rank, the grid starts of each space (origin,
    lo, hi): points origin + k*step such that [s, s + length) lies inside [lo, hi) and misses
    every interval in `own` and `room`.

    Walks the free gaps between busy intervals and adds each gap's grid points as one range,
    so the cost follows the number of busy intervals, not the number of slots. (Two lists
    spelled out rather than a loop over lists: this is the engine's innermost loop.)
    """
    own_starts, own_reach = own
    room_starts, room_reach = room
    own_n, room_n = len(own_starts), len(room_starts)
    for origin, lo, hi in spaces:
        while lo + length <= hi:
            j = bisect_right(own_starts, lo)  # intervals starting at or before lo
            if j and own_reach[j - 1] > lo:  # lo is busy: resume where that busy time ends
                lo = own_reach[j - 1]
                continue
            k = bisect_right(room_starts, lo)
            if k and room_reach[k - 1] > lo:
                lo = room_reach[k - 1]
                continue
            # The gap ends where the next busy interval starts; [starts[j], reach[j]) is wholly
            # busy (some interval from before covers it), so the walk resumes at its reach.
            gap_end = resume = hi
            if j < own_n and own_starts[j] < gap_end:
                gap_end, resume = own_starts[j], own_reach[j]
            if k < room_n and room_starts[k] < gap_end:
                gap_end, resume = room_starts[k], room_reach[k]
            first = origin - (origin - lo) // step * step  # first grid point >= lo
            if first + length <= gap_end:
                found.update(
                    range(first * scale + rank, (gap_end - length + 1) * scale, step * scale)
                )
            lo = resume


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

    index = busy if isinstance(busy, BusyTimes) else BusyTimes.of(busy)

    # A slot is encoded as one int, start * len(pairs) + rank of its pair, so de-duplication
    # (overlapping working hours) and ordering are a set and a sort of plain ints.
    pairs = sorted(hours_of)
    scale = len(pairs)
    found: set[int] = set()
    unrestricted = [(earliest, horizon_end)]
    # Pairs mostly share their working-hour patterns (and most providers have no rule): the
    # spaces of one pattern are computed once and shared.
    spaces_of: dict[tuple[object, ...], list[tuple[int, int, int]]] = {}
    for rank, pair in enumerate(pairs):
        allowed = allowed_of.get(pair[0])
        spaces: list[tuple[int, int, int]] = []  # (grid origin, lo, hi) where slots may lie
        for wh in hours_of[pair]:
            key = (
                wh.begin,
                wh.begin.fold,
                wh.end,
                wh.end.fold,
                wh.specific_date or wh.days,
                None if allowed is None else pair[0],
            )
            shared = spaces_of.get(key)
            if shared is None:
                shared = spaces_of[key] = []
                windows = spans(wh.begin, wh.end)
                for i in day_indexes(wh):
                    if (w := windows[i]) is None:
                        continue
                    begin, end = w
                    for a, b in unrestricted if allowed is None else allowed.get(i, []):
                        lo, hi = max(begin, a, earliest), min(end, b, horizon_end)
                        if hi - lo >= length:
                            shared.append((begin, lo, hi))
            spaces += shared
        if spaces:
            _add_grid_starts(found, rank, scale, spaces, step, length, *index.blocking(*pair))

    # Slots share boundaries (and pairs share the grid): build each datetime once.
    keys = sorted(found)
    starts = list(map(scale.__rfloordiv__, keys))  # key // scale, without a bytecode loop
    marks = set(starts)
    instants = {ts: datetime.fromtimestamp(ts, tz) for ts in marks | {m + length for m in marks}}
    start_end = {m: (instants[m], instants[m + length]) for m in marks}
    new = tuple.__new__  # what Slot(...) does, minus a Python-level call per slot
    return [
        new(Slot, start_end[s] + pairs[rank])
        for s, rank in zip(starts, map(scale.__rmod__, keys), strict=True)
    ]
