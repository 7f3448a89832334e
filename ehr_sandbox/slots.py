"""Bookable slots derived the way the scheduling guide's "Level 2D" describes.

Self-contained on purpose (no import of the portal's scheduling engine): the sandbox is the
reference the portal's engine is tested against, so it must not share its code or its bugs.

1. The request window: ``start_date`` plus ``days``.
2. Working hours are the source of truth: only active records of the provider at the location
   that apply to the day (weekly ``days``, or exactly ``specific_date``) are candidates.
3. ``appointment_type_id`` sets the slot length (the type's minutes) and keeps only working hours
   bound to that type. Otherwise ``slot_length`` (default 15 minutes) applies.
4. Slots start at the working hour's begin and step by ``slot_interval`` (default: slot length);
   a slot must end by the working hour's end.
5. Slots overlapping an appointment or an unavailable block of the same provider or the same
   operatory are removed (a block with neither provider nor operatory closes the whole location).
6. Without an operatory filter only the first available operatory of each provider is returned
   (the guide's gotcha): the operatory with the earliest slot, ties to the lowest id.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo

DEFAULT_SLOT_MINUTES = 15
EMPTY_DESCRIPTION = (
    "Next available slot not found. Please confirm that the provider has active availabilities."
)


@dataclass(frozen=True)
class WorkingHour:
    id: int
    provider_id: int
    location_id: int
    operatory_id: int | None
    begin: time
    end: time
    weekdays: frozenset[int]  # Monday == 0
    specific_date: date | None = None
    appointment_type_ids: frozenset[int] = frozenset()
    label_id: int | None = None
    active: bool = True

    def applies_on(self, day: date) -> bool:
        if not self.active:
            return False
        if self.specific_date is not None:
            return day == self.specific_date
        return day.weekday() in self.weekdays


@dataclass(frozen=True)
class Busy:
    """An appointment or an unavailable block (both occupy time)."""

    start: datetime
    end: datetime
    provider_id: int | None
    operatory_id: int | None
    location_id: int | None

    def blocks(self, provider_id: int, operatory_id: int | None, location_id: int) -> bool:
        if self.provider_id is not None and self.provider_id == provider_id:
            return True
        if self.operatory_id is not None and self.operatory_id == operatory_id:
            return True
        return (
            self.provider_id is None
            and self.operatory_id is None
            and self.location_id == location_id
        )


@dataclass(frozen=True)
class SlotQuery:
    start_date: date
    days: int
    location_ids: Sequence[int]
    provider_ids: Sequence[int]
    zones: dict[int, tzinfo]  # location id -> its zone
    operatory_ids: Sequence[int] = ()
    appointment_type_id: int | None = None
    appointment_type_minutes: int | None = None
    slot_length: int | None = None
    slot_interval: int | None = None
    overlapping_operatory_slots: bool = True
    next_available_horizon_days: int = 90

    @property
    def length(self) -> timedelta:
        minutes = self.appointment_type_minutes or self.slot_length or DEFAULT_SLOT_MINUTES
        return timedelta(minutes=minutes)

    @property
    def interval(self) -> timedelta:
        return timedelta(minutes=self.slot_interval) if self.slot_interval else self.length


@dataclass(frozen=True)
class Slot:
    start: datetime  # aware, UTC
    end: datetime
    provider_id: int
    operatory_id: int | None
    label_id: int | None


@dataclass
class SlotGroup:
    location_id: int
    provider_id: int
    slots: list[Slot] = field(default_factory=list)
    operatory_id: int | None = None
    next_available_date: date | None = None


def _candidates(
    query: SlotQuery,
    hours: Sequence[WorkingHour],
    busy: Sequence[Busy],
    location_id: int,
    provider_id: int,
    day: date,
) -> list[Slot]:
    tz = query.zones.get(location_id, UTC)
    length, step = query.length, query.interval
    seen: set[tuple[int | None, datetime]] = set()
    found: list[Slot] = []
    for wh in hours:
        if not wh.applies_on(day):
            continue
        start = datetime.combine(day, wh.begin, tzinfo=tz).astimezone(UTC)
        end = datetime.combine(day, wh.end, tzinfo=tz).astimezone(UTC)
        relevant = [b for b in busy if b.blocks(provider_id, wh.operatory_id, location_id)]
        cursor = start
        while cursor + length <= end:
            slot_end = cursor + length
            key = (wh.operatory_id, cursor)
            if key not in seen and not any(b.start < slot_end and b.end > cursor for b in relevant):
                seen.add(key)
                found.append(Slot(cursor, slot_end, provider_id, wh.operatory_id, wh.label_id))
            cursor += step
    return found


def _hours_for(
    query: SlotQuery, hours: Iterable[WorkingHour], location_id: int, provider_id: int
) -> list[WorkingHour]:
    return [
        wh
        for wh in hours
        if wh.active
        and wh.location_id == location_id
        and wh.provider_id == provider_id
        and (not query.operatory_ids or wh.operatory_id in query.operatory_ids)
        and (
            query.appointment_type_id is None
            or query.appointment_type_id in wh.appointment_type_ids
        )
    ]


def _pick_operatories(query: SlotQuery, slots: list[Slot]) -> tuple[list[Slot], int | None]:
    """Apply the operatory rules; returns the kept slots and the single operatory if only one."""
    if not slots:
        return [], query.operatory_ids[0] if len(query.operatory_ids) == 1 else None
    if not query.operatory_ids:
        # The documented gotcha: without operatory_id only the first available operatory.
        first = min(slots, key=lambda s: (s.start, s.operatory_id or 0)).operatory_id
        kept = [s for s in slots if s.operatory_id == first]
        return sorted(kept, key=lambda s: s.start), first
    ordered = sorted(slots, key=lambda s: (s.start, s.operatory_id or 0))
    if not query.overlapping_operatory_slots:
        one_per_time: list[Slot] = []
        for slot in ordered:
            if not one_per_time or one_per_time[-1].start != slot.start:
                one_per_time.append(slot)
        ordered = one_per_time
    single = query.operatory_ids[0] if len(query.operatory_ids) == 1 else None
    return ordered, single


def derive_slots(
    query: SlotQuery, hours: Sequence[WorkingHour], busy: Sequence[Busy]
) -> list[SlotGroup]:
    """One group per (location, provider) in request order, with slots and next_available_date."""
    groups: list[SlotGroup] = []
    for location_id in query.location_ids:
        for provider_id in query.provider_ids:
            own_hours = _hours_for(query, hours, location_id, provider_id)
            group = SlotGroup(location_id=location_id, provider_id=provider_id)
            window: list[Slot] = []
            for offset in range(query.days):
                day = query.start_date + timedelta(days=offset)
                window.extend(_candidates(query, own_hours, busy, location_id, provider_id, day))
            group.slots, group.operatory_id = _pick_operatories(query, window)
            tz = query.zones.get(location_id, UTC)
            if group.slots:
                group.next_available_date = group.slots[0].start.astimezone(tz).date()
            elif own_hours:
                group.next_available_date = _next_available(
                    query, own_hours, busy, location_id, provider_id
                )
            groups.append(group)
    return groups


def _next_available(
    query: SlotQuery,
    hours: Sequence[WorkingHour],
    busy: Sequence[Busy],
    location_id: int,
    provider_id: int,
) -> date | None:
    """The first day after the window with a bookable slot, looking a bounded way ahead."""
    for offset in range(query.days, query.days + query.next_available_horizon_days):
        day = query.start_date + timedelta(days=offset)
        if _candidates(query, hours, busy, location_id, provider_id, day):
            return day
    return None
