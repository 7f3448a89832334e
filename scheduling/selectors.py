"""Scheduling reads: availability from the local mirror, in a constant number of queries.

`available_slots` answers the receptionist API's `/availability`; `offered_slot` tells the hold
service whether a given (provider, operatory, start) is a slot the engine would offer right now.
Both load the slot engine's inputs with four queries whatever the window, provider count or
number of appointments (the type, the working hours bound to it, the provider rules, and every
kind of busy time in one UNION ALL), then call the pure engine `scheduling.slots.find_slots`
once per time zone among the practice's locations.

Every read filters on the practice explicitly and runs under the tenant's row-level security
(the caller is inside `tenant_context(practice)`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.contrib.postgres.aggregates import ArrayAgg
from django.db import connection
from django.db.models import Exists, F, FloatField, Func, OuterRef, Q
from django.utils import timezone

from portal.models import Location, Practice
from scheduling.models import (
    Appointment,
    AppointmentType,
    Block,
    Hold,
    HoldStatus,
    Operatory,
    Provider,
    ProviderRule,
    WorkingHour,
)
from scheduling.slots import (
    Busy,
    Slot,
    SlotQuery,
    TypeSpec,
    find_slots,
)
from scheduling.slots import (
    ProviderRule as RuleSpec,
)
from scheduling.slots import (
    WorkingHour as HourSpec,
)

MAX_DAYS = 31


class _Epoch(Func):
    """A timestamptz column as float seconds since the epoch (microseconds survive in float8)."""

    template = "EXTRACT(EPOCH FROM %(expressions)s)::float8"
    output_field = FloatField()

    def __init__(self, column: str) -> None:
        super().__init__(F(column))


# UTC offsets range from -12:00 to +14:00: this much either side of a UTC date covers any zone.
_ZONE_MARGIN = timedelta(hours=14)


@dataclass
class EngineInputs:
    """Everything `find_slots` needs for one type in one window, read from the database."""

    type: TypeSpec
    bookable: bool
    hours_by_zone: dict[str, list[HourSpec]] = field(default_factory=dict)
    busy: list[Busy] = field(default_factory=list)
    rules: list[RuleSpec] = field(default_factory=list)
    capabilities: dict[int, frozenset[str]] = field(default_factory=dict)

    def slots(
        self,
        start_date: date,
        days: int,
        now: datetime,
        patient_status: str,
        provider_id: int | None = None,
    ) -> list[Slot]:
        """Run the engine once per zone (each location's wall clock is its own) and merge."""
        found: list[Slot] = []
        for zone, hours in self.hours_by_zone.items():
            query = SlotQuery(
                type=self.type,
                start_date=start_date,
                days=days,
                tz=ZoneInfo(zone),
                now=now,
                patient_status=patient_status,
                provider_id=provider_id,
            )
            found.extend(find_slots(query, hours, self.busy, self.rules, self.capabilities))
        if len(self.hours_by_zone) > 1:
            found.sort(key=lambda s: (s.start, s.provider_id, s.operatory_id, s.location_id))
        return found


def _load_type(
    practice: Practice,
    appointment_type_id: int,
    *,
    provider_id: int | None,
    location_id: int | None,
    operatory_id: int | None,
) -> tuple[TypeSpec, bool]:
    """Query 1: the type, its eligible providers, and whether the other ids are this practice's.

    Ids another practice owns are invisible (row-level security) and answer DoesNotExist, which
    the API turns into 404.
    """
    qs = (
        AppointmentType.objects.for_practice(practice)
        .filter(pk=appointment_type_id)
        .annotate(eligible=ArrayAgg("providers__id", filter=Q(providers__isnull=False)))
    )
    checks = {
        "provider_ok": (provider_id, Provider),
        "location_ok": (location_id, Location),
        "operatory_ok": (operatory_id, Operatory),
    }
    for name, (pk, model) in checks.items():
        if pk is not None:
            qs = qs.annotate(
                **{name: Exists(model.objects.filter(pk=pk, practice_id=OuterRef("practice_id")))}
            )
    row = qs.values(
        "id",
        "minutes",
        "new_patients",
        "existing_patients",
        "lead_time_hours",
        "horizon_days",
        "bookable",
        "eligible",
        "required_capabilities",
        *[name for name, (pk, _) in checks.items() if pk is not None],
    ).first()
    if row is None:
        raise AppointmentType.DoesNotExist(f"no appointment type {appointment_type_id}")
    for name, (pk, model) in checks.items():
        if pk is not None and not row[name]:
            raise model.DoesNotExist(f"no {model._meta.model_name} {pk}")
    spec = TypeSpec(
        id=row["id"],
        minutes=row["minutes"],
        eligible_provider_ids=frozenset(row["eligible"] or ()),
        required_capabilities=frozenset(row["required_capabilities"]),
        lead_time=timedelta(hours=row["lead_time_hours"]),
        horizon=timedelta(days=row["horizon_days"]),
        new_patients=row["new_patients"],
        existing_patients=row["existing_patients"],
    )
    return spec, row["bookable"]


def load_engine_inputs(
    practice: Practice,
    appointment_type_id: int,
    lo: datetime,
    hi: datetime,
    *,
    now: datetime,
    patient_status: str,
    provider_id: int | None = None,
    location_id: int | None = None,
    operatory_id: int | None = None,
) -> EngineInputs:
    """Read the engine's inputs for busy time overlapping [lo, hi): four queries, always.

    Working hours count only when active, bound to the type, of an active provider in an active
    operatory, and from the source their location uses (`Location.working_hours_mode`: manual or
    synced, never both). Busy time is blocks, non-cancelled appointments and live holds (active
    and unexpired, or booked) of the providers and operatories in play, plus location-wide blocks.
    """
    spec, bookable = _load_type(
        practice,
        appointment_type_id,
        provider_id=provider_id,
        location_id=location_id,
        operatory_id=operatory_id,
    )
    inputs = EngineInputs(type=spec, bookable=bookable)

    # Query 2: working hours bound to the type, with their operatory's capabilities and zone.
    hours = WorkingHour.objects.for_practice(practice).filter(
        appointment_types=appointment_type_id,
        active=True,
        provider__active=True,
        operatory__active=True,
        source=F("operatory__location__working_hours_mode"),
    )
    if provider_id is not None:
        hours = hours.filter(provider_id=provider_id)
    if operatory_id is not None:
        hours = hours.filter(operatory_id=operatory_id)
    if location_id is not None:
        hours = hours.filter(operatory__location_id=location_id)
    if patient_status == "new":
        hours = hours.filter(provider__accepts_new_patients=True)
    rows = hours.order_by().values_list(
        "id",
        "provider_id",
        "operatory_id",
        "operatory__location_id",
        "begin",
        "end",
        "days",
        "specific_date",
        "label",
        "operatory__capabilities",
        "operatory__location__timezone",
    )
    type_ids = frozenset({appointment_type_id})
    providers: set[int] = set()
    operatories: set[int] = set()
    locations: set[int] = set()
    for (
        pk,
        provider,
        operatory,
        location,
        begin,
        end,
        days,
        specific_date,
        label,
        capabilities,
        zone,
    ) in rows:
        inputs.hours_by_zone.setdefault(zone or practice.timezone, []).append(
            HourSpec(
                id=pk,
                provider_id=provider,
                operatory_id=operatory,
                location_id=location,
                begin=begin,
                end=end,
                days=frozenset(days),
                specific_date=specific_date,
                appointment_type_ids=type_ids,
                label=label or None,
            )
        )
        inputs.capabilities[operatory] = frozenset(capabilities)
        providers.add(provider)
        operatories.add(operatory)
        locations.add(location)
    if not providers:
        return inputs

    # Query 3: provider rules for the type.
    for provider, status, days, begin, end in (
        ProviderRule.objects.for_practice(practice)
        .filter(appointment_types=appointment_type_id, provider_id__in=providers)
        .order_by()
        .values_list("provider_id", "patient_status", "days", "begin", "end")
    ):
        inputs.rules.append(RuleSpec(provider, type_ids, status, frozenset(days), begin, end))

    # Query 4: every kind of busy time in one round trip. Nothing ending before `now` matters
    # (no slot starts in the past), nor anything past the horizon.
    lo = max(lo, now)
    hi = min(hi, now + spec.horizon + timedelta(minutes=spec.minutes))
    if hi <= lo:
        return inputs
    # Narrow to the providers and rooms in play when the question was narrowed (a hold's check,
    # a provider or a location); a whole-practice question reads the practice's busy time, which
    # is the same rows without hundreds of bound parameters.
    narrowed = provider_id is not None or operatory_id is not None or location_id is not None
    mine = Q(provider_id__in=providers) | Q(operatory_id__in=operatories) if narrowed else Q()
    everywhere = Q(provider__isnull=True, operatory__isnull=True, location_id__in=locations)
    # Instants travel as epoch seconds: Django's timestamptz loader parses text in Python, which
    # for a few thousand rows costs about as much as the slot search.
    epochs = {"s": _Epoch("start"), "e": _Epoch("end")}
    columns = ("s", "e", "provider_id", "operatory_id", "location_id")
    blocks = (
        Block.objects.for_practice(practice)
        .filter(start__lt=hi, end__gt=lo)
        .filter((mine | everywhere) if narrowed else Q())
        .order_by()
        .annotate(**epochs)
        .values_list(*columns)
    )
    appointments = (
        Appointment.objects.for_practice(practice)
        .filter(start__lt=hi, end__gt=lo, cancelled=False)
        .filter(mine)
        .order_by()
        .annotate(**epochs)
        .values_list(*columns)
    )
    holds = (
        Hold.objects.for_practice(practice)
        .filter(start__lt=hi, end__gt=lo)
        .filter(Q(status=HoldStatus.ACTIVE, expires_at__gt=now) | Q(status=HoldStatus.BOOKED))
        .filter(mine)
        .order_by()
        .annotate(**epochs)
        .values_list(*columns)
    )
    # Compiled by the ORM, read with a plain cursor: Django's per-value converters would cost
    # more than the query itself for a few thousand rows.
    sql, params = blocks.union(appointments, holds, all=True).query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    at = datetime.fromtimestamp
    inputs.busy = [
        Busy(at(s, UTC), at(e, UTC), provider, operatory, location)
        for s, e, provider, operatory, location in rows
    ]
    return inputs


def available_slots(
    practice: Practice,
    *,
    appointment_type_id: int,
    start_date: date,
    days: int,
    patient_status: str = "existing",
    location_id: int | None = None,
    provider_id: int | None = None,
    now: datetime | None = None,
    agent_bookable_only: bool = True,
) -> list[Slot]:
    """Bookable slots for a type over `days` local dates from `start_date`, ordered by start.

    Slot times carry their location's zone. A type the voice agent may not book has no slots
    for it (`agent_bookable_only`), so the agent takes a message instead.
    """
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be 1..{MAX_DAYS}")
    now = now or timezone.now()
    lo = datetime.combine(start_date, time(0), UTC) - _ZONE_MARGIN
    hi = datetime.combine(start_date + timedelta(days=days), time(0), UTC) + _ZONE_MARGIN
    inputs = load_engine_inputs(
        practice,
        appointment_type_id,
        lo,
        hi,
        now=now,
        patient_status=patient_status,
        provider_id=provider_id,
        location_id=location_id,
    )
    if agent_bookable_only and not inputs.bookable:
        return []
    return inputs.slots(start_date, days, now, patient_status, provider_id)


def offered_slot(
    practice: Practice,
    *,
    appointment_type_id: int,
    provider_id: int,
    operatory_id: int,
    start: datetime,
    patient_status: str = "existing",
    now: datetime | None = None,
    agent_bookable_only: bool = True,
) -> Slot | None:
    """The slot the engine offers for exactly this provider, operatory and start, or None.

    Reads only that provider and operatory around that day, so it is cheap enough to run for
    every hold request.
    """
    now = now or timezone.now()
    utc_day = start.astimezone(UTC).date()
    first = utc_day - timedelta(days=1)  # the local date is within a day of the UTC one
    lo = datetime.combine(first, time(0), UTC) - _ZONE_MARGIN
    hi = datetime.combine(first + timedelta(days=3), time(0), UTC) + _ZONE_MARGIN
    inputs = load_engine_inputs(
        practice,
        appointment_type_id,
        lo,
        hi,
        now=now,
        patient_status=patient_status,
        provider_id=provider_id,
        operatory_id=operatory_id,
    )
    if agent_bookable_only and not inputs.bookable:
        return None
    for slot in inputs.slots(first, 3, now, patient_status, provider_id):
        if slot.start == start and slot.operatory_id == operatory_id:
            return slot
    return None
