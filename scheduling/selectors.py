"""Scheduling reads: availability from the local mirror, in a constant number of queries.

`available_slots` answers the receptionist API's `/availability`; `offered_slot` says whether a
given (provider, operatory, start) is a slot the engine would offer right now (the hold service
does the same with `load_engine_inputs` and `slot_at`, its own re-check riding along). Both load
the slot engine's inputs in two round trips whatever the window, provider count or number of
appointments (the type; then the working hours bound to it, the provider rules, the EHR's own
free slots at native-mode locations, and every kind of busy time in one UNION ALL, sent
together), then call the pure engine `scheduling.slots.find_slots` once per time zone among
the practice's locations.

Speed (`benchmarks/bench_api.py` measures it): the five querysets are compiled once per
shape and re-run with new values (`compiled_query`), four of them share a round trip
(`core.statements.run_batch`), the hold path's are prepared on the server once per connection,
and busy time travels as whole seconds straight into the engine's index (`BusyTimes`), with no
datetime or object per row.

Every read filters on the practice explicitly and runs under the tenant's row-level security
(the caller is inside `tenant_context(practice)`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib.postgres.aggregates import ArrayAgg
from django.db.models import BigIntegerField, Exists, F, Func, OuterRef, Q
from django.utils import timezone

from accounts.models import Location, Practice
from core.statements import Batch, CompiledQuery, compiled_query, run_batch
from scheduling.models import (
    Appointment,
    AppointmentType,
    Block,
    Hold,
    HoldStatus,
    NativeSlot,
    Operatory,
    Provider,
    ProviderRule,
    WorkingHour,
    WorkingHoursMode,
)
from scheduling.slots import (
    BusyTimes,
    FreeRow,
    Slot,
    SlotColumn,
    SlotQuery,
    TypeSpec,
    find_slot_columns,
    native_hours,
    slot_columns_of,
    slots_of,
)
from scheduling.slots import (
    ProviderRule as RuleSpec,
)
from scheduling.slots import (
    WorkingHour as HourSpec,
)

MAX_DAYS = 31


class _EpochSeconds(Func):
    """A timestamptz as whole POSIX seconds, rounded towards "less bookable" (the engine's
    convention): start down, end up."""

    output_field = BigIntegerField()

    def __init__(self, column: str, rounding: str) -> None:
        self.template = f"{rounding}(EXTRACT(EPOCH FROM %(expressions)s))::bigint"
        super().__init__(F(column))


# UTC offsets range from -12:00 to +14:00: this much either side of a UTC date covers any zone.
_ZONE_MARGIN = timedelta(hours=14)


@dataclass
class EngineInputs:
    """Everything `find_slots` needs for one type in one window, read from the database."""

    type: TypeSpec
    bookable: bool
    hours_by_zone: dict[str, list[HourSpec]] = field(default_factory=dict)
    busy: BusyTimes = field(default_factory=lambda: BusyTimes(()))
    busy_rows: int = 0
    rules: list[RuleSpec] = field(default_factory=list)
    capabilities: dict[int, frozenset[str]] = field(default_factory=dict)
    along_rows: list[list[tuple[Any, ...]]] = field(default_factory=list)

    def slots(
        self,
        start_date: date,
        days: int,
        now: datetime,
        patient_status: str,
        provider_id: int | None = None,
    ) -> list[Slot]:
        """Run the engine once per zone (each location's wall clock is its own) and merge."""
        return slots_of(self.columns(start_date, days, now, patient_status, provider_id))

    def columns(
        self,
        start_date: date,
        days: int,
        now: datetime,
        patient_status: str,
        provider_id: int | None = None,
    ) -> list[SlotColumn]:
        """`slots` as the engine's columns (one per start), merged across zones."""
        found: list[SlotColumn] = []
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
            found.extend(find_slot_columns(query, hours, self.busy, self.rules, self.capabilities))
        if len(self.hours_by_zone) > 1:
            merged = sorted(
                slots_of(found),
                key=lambda s: (s.start, s.provider_id, s.operatory_id, s.location_id),
            )
            return slot_columns_of(merged)
        return found


_TYPE_COLUMNS = (
    "id",
    "minutes",
    "new_patients",
    "existing_patients",
    "lead_time_hours",
    "horizon_days",
    "bookable",
    "eligible",
    "required_capabilities",
)
_CHECKS: dict[str, type[Any]] = {
    "provider_ok": Provider,
    "location_ok": Location,
    "operatory_ok": Operatory,
}


def load_type(
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
    given = {"provider_ok": provider_id, "location_ok": location_id, "operatory_ok": operatory_id}
    checks = tuple(name for name, pk in given.items() if pk is not None)
    rows = type_statement(checks).rows(
        {"practice": practice.pk, "type": appointment_type_id, **given}
    )
    return type_from_rows(rows, appointment_type_id, given)


def type_statement(checks: tuple[str, ...]) -> CompiledQuery:
    """`load_type`'s statement: the type's columns, then one boolean per check (named by the
    check: "provider_ok", "location_ok", "operatory_ok"), at most one row."""

    def build(v: Mapping[str, Any]) -> Any:
        qs = (
            AppointmentType.objects.for_practice(v["practice"])
            .filter(pk=v["type"])
            .annotate(eligible=ArrayAgg("providers__id", filter=Q(providers__isnull=False)))
        )
        for name in checks:
            model = _CHECKS[name]
            exists = Exists(model.objects.filter(pk=v[name], practice_id=OuterRef("practice_id")))
            qs = qs.annotate(**{name: exists})
        return qs.values_list(*_TYPE_COLUMNS, *checks)[:1]

    names = dict.fromkeys(["practice", "type", *checks], int)
    return compiled_query(("type", *checks), names, build)


def type_from_rows(
    rows: list[tuple[Any, ...]], appointment_type_id: int, given: Mapping[str, int | None]
) -> tuple[TypeSpec, bool]:
    """`type_statement`'s answer (extra trailing columns ignored) as (spec, bookable); raises
    the DoesNotExist of the type or of the first id that is not the practice's."""
    if not rows:
        raise AppointmentType.DoesNotExist(f"no appointment type {appointment_type_id}")
    row = rows[0]
    checks = [name for name, pk in given.items() if pk is not None]
    n = len(_TYPE_COLUMNS)
    for name, ok in zip(checks, row[n : n + len(checks)], strict=True):
        if not ok:
            model = _CHECKS[name]
            raise model.DoesNotExist(f"no {model._meta.model_name} {given[name]}")
    pk, minutes, new, existing, lead_hours, horizon_days, bookable, eligible, required = row[
        : len(_TYPE_COLUMNS)
    ]
    spec = TypeSpec(
        id=pk,
        minutes=minutes,
        eligible_provider_ids=frozenset(eligible or ()),
        required_capabilities=frozenset(required),
        lead_time=timedelta(hours=lead_hours),
        horizon=timedelta(days=horizon_days),
        new_patients=new,
        existing_patients=existing,
    )
    return spec, bookable


def _hours_statement(
    provider: bool, operatory: bool, location: bool, new_patients: bool
) -> CompiledQuery:
    def build(v: Mapping[str, Any]) -> Any:
        hours = (
            WorkingHour.objects.for_practice(v["practice"])
            .filter(
                appointment_types=v["type"],
                active=True,
                provider__active=True,
                operatory__active=True,
            )
            .filter(
                # A native location's hours are the ones configured here (its time is the EHR's).
                Q(source=F("operatory__location__working_hours_mode"))
                | Q(
                    source=WorkingHoursMode.MANUAL,
                    operatory__location__working_hours_mode=WorkingHoursMode.NATIVE,
                )
            )
        )
        if provider:
            hours = hours.filter(provider_id=v["provider"])
        if operatory:
            hours = hours.filter(operatory_id=v["operatory"])
        if location:
            hours = hours.filter(operatory__location_id=v["location"])
        if new_patients:
            hours = hours.filter(provider__accepts_new_patients=True)
        return hours.order_by().values_list(
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
            "operatory__location__working_hours_mode",
        )

    names = {"practice": int, "type": int}
    names |= {k: int for k, on in (("provider", provider), ("operatory", operatory)) if on}
    names |= {"location": int} if location else {}
    key = ("hours", provider, operatory, location, new_patients)
    return compiled_query(key, names, build, prepare=provider and operatory)


def _rules_statement(provider: bool) -> CompiledQuery:
    def build(v: Mapping[str, Any]) -> Any:
        rules = ProviderRule.objects.for_practice(v["practice"]).filter(appointment_types=v["type"])
        if provider:
            rules = rules.filter(provider_id=v["provider"])
        return rules.order_by().values_list("provider_id", "patient_status", "days", "begin", "end")

    names = {"practice": int, "type": int} | ({"provider": int} if provider else {})
    return compiled_query(("rules", provider), names, build, prepare=provider)


def _native_statement(provider: bool, location: bool) -> CompiledQuery:
    """The EHR's own free slots for the type at native-mode locations, overlapping [lo, hi), as
    whole seconds rounded towards "less bookable" (start up, end down)."""

    def build(v: Mapping[str, Any]) -> Any:
        free = NativeSlot.objects.for_practice(v["practice"]).filter(
            appointment_type=v["type"],
            start__lt=v["hi"],
            end__gt=v["lo"],
            location__working_hours_mode=WorkingHoursMode.NATIVE,
        )
        if provider:
            free = free.filter(provider_id=v["provider"])
        if location:
            free = free.filter(location_id=v["location"])
        return (
            free.order_by()
            .annotate(s=_EpochSeconds("start", "ceil"), e=_EpochSeconds("end", "floor"))
            .values_list("provider_id", "location_id", "s", "e")
        )

    names = {"practice": int, "type": int, "lo": datetime, "hi": datetime}
    names |= {"provider": int} if provider else {}
    names |= {"location": int} if location else {}
    return compiled_query(("native", provider, location), names, build, prepare=provider)


def _busy_statement(narrow: bool) -> CompiledQuery:
    """Every kind of busy time in one UNION ALL, as whole seconds. A hold's check (one provider
    in one operatory) reads that provider's and that operatory's busy time and location-wide
    blocks; any other question the practice's (a provider's operatories are busy with other
    providers' patients too), of which the engine ignores what blocks no pair in play. The
    narrow form (a hold's) is prepared on the server, as are that path's hours and rules."""

    def build(v: Mapping[str, Any]) -> Any:
        mine = Q(provider_id=v["provider"]) | Q(operatory_id=v["operatory"]) if narrow else Q()
        everywhere = Q(provider__isnull=True, operatory__isnull=True)
        seconds = {"s": _EpochSeconds("start", "floor"), "e": _EpochSeconds("end", "ceil")}
        columns = ("s", "e", "provider_id", "operatory_id", "location_id")
        blocks = (
            Block.objects.for_practice(v["practice"])
            .filter(start__lt=v["hi"], end__gt=v["lo"])
            .filter((mine | everywhere) if narrow else Q())
            .order_by()
            .annotate(**seconds)
            .values_list(*columns)
        )
        appointments = (
            Appointment.objects.for_practice(v["practice"])
            .filter(start__lt=v["hi"], end__gt=v["lo"], cancelled=False)
            .filter(mine)
            .order_by()
            .annotate(**seconds)
            .values_list(*columns)
        )
        holds = (
            Hold.objects.for_practice(v["practice"])
            .filter(start__lt=v["hi"], end__gt=v["lo"])
            .filter(
                Q(status=HoldStatus.ACTIVE, expires_at__gt=v["now"]) | Q(status=HoldStatus.BOOKED)
            )
            .filter(mine)
            .order_by()
            .annotate(**seconds)
            .values_list(*columns)
        )
        return blocks.union(appointments, holds, all=True)

    names = {"practice": int, "lo": datetime, "hi": datetime, "now": datetime}
    names |= {"provider": int, "operatory": int} if narrow else {}
    return compiled_query(("busy", narrow), names, build, prepare=narrow)


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
    loaded: tuple[TypeSpec, bool] | None = None,
    along: Batch = (),
) -> EngineInputs:
    """Read the engine's inputs for busy time overlapping [lo, hi): the type (`load_type`,
    unless the caller passes its answer as `loaded`), then working hours, provider rules and
    busy time in one round trip (`run_batch`). `along` are statements of the caller's sent
    first in that same round trip; their rows are in `inputs.along_rows`.

    Working hours count only when active, bound to the type, of an active provider in an active
    operatory, and from the source their location uses (`Location.working_hours_mode`: manual or
    synced, never both). At a native-mode location the manual hours are cut down to the EHR's
    own free slots for the type (`NativeSlot`, `slots.native_hours`). Busy time is blocks,
    non-cancelled appointments and live holds (active
    and unexpired, or booked), read as whole seconds (see `_busy_statement`).
    """
    spec, bookable = loaded or load_type(
        practice,
        appointment_type_id,
        provider_id=provider_id,
        location_id=location_id,
        operatory_id=operatory_id,
    )
    inputs = EngineInputs(type=spec, bookable=bookable)
    values = {
        "practice": practice.pk,
        "type": appointment_type_id,
        "provider": provider_id,
        "operatory": operatory_id,
        "location": location_id,
    }
    batch = list(along)
    # Working hours bound to the type, with their operatory's capabilities and zone; the
    # provider rules for the type (the engine ignores providers without hours).
    batch.append(
        (
            _hours_statement(
                provider_id is not None,
                operatory_id is not None,
                location_id is not None,
                patient_status == "new",
            ),
            values,
        )
    )
    batch.append((_rules_statement(provider_id is not None), values))
    # Every kind of busy time, and the EHR's own free slots at native-mode locations. Nothing
    # ending before `now` matters (no slot starts in the past), nor anything past the horizon.
    lo = max(lo, now)
    hi = min(hi, now + spec.horizon + timedelta(minutes=spec.minutes))
    batch.append(
        (
            _native_statement(provider_id is not None, location_id is not None),
            values | {"lo": lo, "hi": max(lo, hi)},
        )
    )
    if hi > lo:
        narrow = provider_id is not None and operatory_id is not None
        batch.append((_busy_statement(narrow), values | {"lo": lo, "hi": hi, "now": now}))
    results = run_batch(batch)
    inputs.along_rows = results[: len(along)]
    hours, rules, native, *busy = results[len(along) :]

    type_ids = frozenset({appointment_type_id})
    native_by_zone: dict[str, list[HourSpec]] = {}
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
        mode,
    ) in hours:
        at = inputs.hours_by_zone if mode != WorkingHoursMode.NATIVE else native_by_zone
        at.setdefault(zone or practice.timezone, []).append(
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
    free: list[FreeRow] = native
    for zone, zone_hours in native_by_zone.items():
        clipped = native_hours(zone_hours, free, ZoneInfo(zone))
        inputs.hours_by_zone.setdefault(zone, []).extend(clipped)
    if not inputs.hours_by_zone:
        return inputs
    for provider, status, days, begin, end in rules:
        inputs.rules.append(RuleSpec(provider, type_ids, status, frozenset(days), begin, end))
    if busy:
        # Whole seconds from the database straight into the engine's index: no datetime per row.
        inputs.busy = BusyTimes(busy[0])
        inputs.busy_rows = len(busy[0])
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
    return slots_of(
        available_slot_columns(
            practice,
            appointment_type_id=appointment_type_id,
            start_date=start_date,
            days=days,
            patient_status=patient_status,
            location_id=location_id,
            provider_id=provider_id,
            now=now,
            agent_bookable_only=agent_bookable_only,
        )
    )


def available_slot_columns(
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
) -> list[SlotColumn]:
    """`available_slots` as the engine's columns (one per start): for writing many slots out
    without building each one."""
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
    return inputs.columns(start_date, days, now, patient_status, provider_id)


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
    loaded: tuple[TypeSpec, bool] | None = None,
) -> Slot | None:
    """The slot the engine offers for exactly this provider, operatory and start, or None.

    Whether a given slot exists depends on the working hours and rules of its day and on busy
    time overlapping that slot only, so this reads that provider's and operatory's hours and
    rules and the busy time inside [start, start + the type's minutes): a handful of rows, cheap
    enough for every hold request. `loaded` is `load_type`'s answer if the caller has it.
    """
    now = now or timezone.now()
    loaded = loaded or load_type(
        practice,
        appointment_type_id,
        provider_id=provider_id,
        location_id=None,
        operatory_id=operatory_id,
    )
    spec, bookable = loaded
    if agent_bookable_only and not bookable:
        return None
    lo, hi = offered_slot_window(start, spec)
    inputs = load_engine_inputs(
        practice,
        appointment_type_id,
        lo,
        hi,
        now=now,
        patient_status=patient_status,
        provider_id=provider_id,
        operatory_id=operatory_id,
        loaded=loaded,
    )
    return slot_at(inputs, provider_id, operatory_id, start, now=now, patient_status=patient_status)


def offered_slot_window(start: datetime, spec: TypeSpec) -> tuple[datetime, datetime]:
    """The busy-time window `offered_slot` reads for a slot starting at `start`."""
    return start, start + timedelta(minutes=spec.minutes)


def slot_at(
    inputs: EngineInputs,
    provider_id: int,
    operatory_id: int,
    start: datetime,
    *,
    now: datetime,
    patient_status: str,
) -> Slot | None:
    """The engine's slot for exactly this provider, operatory and start among `inputs` read
    for that provider and operatory over `offered_slot_window`, or None."""
    first = start.astimezone(UTC).date() - timedelta(days=1)  # local date is within a day of UTC
    for slot in inputs.slots(first, 3, now, patient_status, provider_id):
        if slot.start == start and slot.operatory_id == operatory_id:
            return slot
    return None


# What the receptionist API lists of each appointment type, in its field names.
API_TYPE_FIELDS = (
    "id",
    "name",
    "minutes",
    "new_patients",
    "existing_patients",
    "bookable",
    "instructions",
    "booking_mode",
)


def api_appointment_types_read(practice_id: int) -> tuple[CompiledQuery, dict[str, Any]]:
    """`api_appointment_types`' statement and values, for a caller that sends it along with
    its own (`run_batch`): compiled and prepared once."""

    def build(v: Mapping[str, Any]) -> Any:
        return (
            AppointmentType.objects.for_practice(v["practice"])
            .order_by("name", "pk")
            .values_list(*API_TYPE_FIELDS)
        )

    statement = compiled_query(("api-appointment-types",), {"practice": int}, build, prepare=True)
    return statement, {"practice": practice_id}


def api_appointment_types(
    practice: Practice, rows: list[tuple[Any, ...]] | None = None
) -> list[dict[str, Any]]:
    """The practice's appointment types as the receptionist API lists them, by name; from
    `rows` of `api_appointment_types_read` if the caller already ran it."""
    if rows is None:
        statement, values = api_appointment_types_read(practice.pk)
        rows = statement.rows(values)
    return [dict(zip(API_TYPE_FIELDS, row, strict=True)) for row in rows]
