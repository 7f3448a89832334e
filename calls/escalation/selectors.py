"""Reads for escalation: the protocols screening applies, the on-call rota, its gaps, the
portal's lists. Every function takes the practice and runs inside its tenant context."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.contrib.postgres.aggregates import ArrayAgg
from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone

from accounts.models import Practice
from calls.models import (
    DEFAULT_GROUP_KEY,
    EscalationProtocol,
    OnCallGroup,
    OnCallShift,
    ProtocolVersion,
    VersionStatus,
)
from scheduling.models import AppointmentType, Provider

__all__ = [
    "CalendarDay",
    "Gap",
    "ProtocolRule",
    "RotaLine",
    "appointment_types",
    "on_call_at",
    "on_call_gaps",
    "on_call_groups",
    "on_call_providers",
    "protocol_rules",
    "protocols_overview",
    "rota_calendar",
    "rota_lines",
    "shifts_between",
    "versions_of",
]


@dataclass(frozen=True)
class ProtocolRule:
    """One protocol version as screening needs it (plain data, no ORM access while matching)."""

    version_id: int
    protocol_id: int
    number: int
    status: str
    name: str
    appointment_type_ids: frozenset[int]
    within_days: int | None
    triggers: tuple[str, ...]
    severity: str
    route: str
    instructions: str
    route_provider_id: int | None = None
    on_call_group_id: int | None = None


def protocol_rules(practice: Practice | int, *, drafts: bool = False) -> list[ProtocolRule]:
    """The live version of every protocol (one query). With `drafts`, a protocol's draft stands
    in for its live version, so a clinician can try a draft before approving it."""
    statuses = [VersionStatus.LIVE, VersionStatus.DRAFT] if drafts else [VersionStatus.LIVE]
    rows = (
        ProtocolVersion.objects.for_practice(practice)
        .filter(status__in=statuses)
        .annotate(
            type_ids=ArrayAgg(
                "appointment_types__id", filter=Q(appointment_types__isnull=False), default=[]
            )
        )
        .order_by("protocol_id", "id")
    )
    chosen: dict[int, ProtocolVersion] = {}
    for row in rows:
        current = chosen.get(row.protocol_id)
        if current is None or row.status == VersionStatus.DRAFT:
            chosen[row.protocol_id] = row
    return [
        ProtocolRule(
            version_id=v.pk,
            protocol_id=v.protocol_id,
            number=v.number,
            status=v.status,
            name=v.name,
            appointment_type_ids=frozenset(v.type_ids),  # type: ignore[attr-defined]
            within_days=v.within_days_of_procedure,
            triggers=tuple(v.triggers),
            severity=v.severity,
            route=v.route,
            instructions=v.instructions,
            route_provider_id=v.route_provider_id,
            on_call_group_id=v.on_call_group_id,
        )
        for v in chosen.values()
    ]


@dataclass
class ProtocolRow:
    protocol: EscalationProtocol
    live: ProtocolVersion | None
    draft: ProtocolVersion | None
    latest: ProtocolVersion


def protocols_overview(practice: Practice | int) -> list[ProtocolRow]:
    """Every protocol with its live and draft versions (two queries), by name."""
    protocols = EscalationProtocol.objects.for_practice(practice).prefetch_related(
        Prefetch(
            "versions",
            queryset=ProtocolVersion.objects.order_by("-number"),
            to_attr="all_versions",
        ),
    )
    out: list[ProtocolRow] = []
    for protocol in protocols:
        versions = protocol.all_versions
        if not versions:
            continue
        live = next((v for v in versions if v.status == VersionStatus.LIVE), None)
        draft = next((v for v in versions if v.status == VersionStatus.DRAFT), None)
        out.append(ProtocolRow(protocol, live, draft, draft or live or versions[0]))
    out.sort(key=lambda r: (r.latest.name.casefold(), r.protocol.pk))
    return out


def versions_of(protocol: EscalationProtocol) -> QuerySet[ProtocolVersion]:
    return (
        ProtocolVersion.objects.filter(protocol=protocol)
        .select_related("approved_by", "created_by", "route_provider", "on_call_group")
        .prefetch_related("appointment_types")
        .order_by("-number")
    )


def on_call_groups(practice: Practice | int) -> QuerySet[OnCallGroup]:
    return OnCallGroup.objects.for_practice(practice).order_by("name", "pk")


def appointment_types(practice: Practice | int) -> QuerySet[AppointmentType]:
    return AppointmentType.objects.for_practice(practice).order_by("name", "pk")


def on_call_providers(practice: Practice | int) -> QuerySet[Provider]:
    """Providers who can be on call: active, with a phone number to connect callers to."""
    return (
        Provider.objects.for_practice(practice)
        .filter(active=True)
        .exclude(on_call_phone="")
        .order_by("name", "pk")
    )


def on_call_at(
    practice: Practice | int, at: datetime | None = None, group_id: int | None = None
) -> OnCallShift | None:
    """Who takes a group's urgent calls at `at` (default now; group None: the default group).
    Several shifts may cover it (a backup overlapping a primary): the one that started last
    wins, as the most recent hand-over. Another group's on-call never stands in: a cataract
    patient is not put through to the plastic surgeon."""
    at = at or timezone.now()
    return (
        OnCallShift.objects.for_practice(practice)
        .filter(_in_group(group_id), start__lte=at, end__gt=at)
        .select_related("provider")
        .order_by("-start", "-id")
        .first()
    )


def _in_group(group_id: int | None) -> Q:
    return Q(group_id=group_id) if group_id is not None else Q(group__key=DEFAULT_GROUP_KEY)


def shifts_between(
    practice: Practice | int,
    start: datetime,
    end: datetime,
    group_id: int | None = None,
    *,
    every_group: bool = False,
) -> QuerySet[OnCallShift]:
    """Shifts overlapping [start, end) of one group (None: the default group), or of
    `every_group`."""
    rows = OnCallShift.objects.for_practice(practice).filter(start__lt=end, end__gt=start)
    if not every_group:
        rows = rows.filter(_in_group(group_id))
    return rows.select_related("provider", "group").order_by("start", "id")


def _seconds(start: datetime, end: datetime) -> float:
    """Real elapsed time (aware datetimes in one zone subtract as wall clocks in Python)."""
    return end.timestamp() - start.timestamp()


@dataclass(frozen=True)
class Gap:
    """A stretch with nobody on call (aware datetimes in the practice's zone)."""

    start: datetime
    end: datetime
    group: str = ""  # the group's name, when several are shown together

    @property
    def hours(self) -> float:
        return round(_seconds(self.start, self.end) / 3600, 1)


def _window(practice: Practice, start: date | datetime, days: int) -> tuple[datetime, datetime]:
    tz = practice.tz
    if isinstance(start, datetime):
        begin = start.astimezone(tz)
        first_day = begin.date()
    else:
        first_day = start
        begin = datetime.combine(first_day, time.min, tz)
    end = datetime.combine(first_day + timedelta(days=days), time.min, tz)
    return begin, end


def _gaps(
    shifts: Sequence[tuple[datetime, datetime]], begin: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    out: list[tuple[datetime, datetime]] = []
    cursor = begin
    for s, e in sorted(shifts):
        if s > cursor:
            out.append((cursor, min(s, end)))
        cursor = max(cursor, e)
        if cursor >= end:
            break
    if cursor < end:
        out.append((cursor, end))
    return [(s, e) for s, e in out if e > s]


def on_call_gaps(
    practice: Practice, start: date | datetime, days: int, group_id: int | None = None
) -> list[Gap]:
    """Times from `start` (a day: its local midnight; or an instant) to the end of the
    `days`-th day when nobody is on call for the group (None: the default group). The rota is
    meant to cover every hour: urgent callers ring at any time, and during office hours the
    on-call provider is who they are put through to as well. One query."""
    begin, end = _window(practice, start, days)
    shifts = list(shifts_between(practice, begin, end, group_id).values_list("start", "end"))
    tz = practice.tz
    return [Gap(s.astimezone(tz), e.astimezone(tz)) for s, e in _gaps(shifts, begin, end)]


@dataclass
class RotaLine:
    """One group's line of the rota: who is on call for it now, and its coming gaps."""

    group: OnCallGroup
    on_call_now: OnCallShift | None
    gaps: list[Gap]


def rota_lines(practice: Practice, now: datetime | None = None, days: int = 14) -> list[RotaLine]:
    """A line per on-call group (two queries): a group's gap is a gap even when another
    group's on-call is free, since protocols route to their own group."""
    now = now or timezone.now()
    groups = list(on_call_groups(practice))
    begin, end = _window(practice, now, days)
    shifts = list(shifts_between(practice, begin, end, every_group=True))
    tz = practice.tz
    out: list[RotaLine] = []
    for group in groups:
        mine = [s for s in shifts if s.group_id == group.pk]
        current = [s for s in mine if s.start <= now < s.end]
        out.append(
            RotaLine(
                group,
                max(current, key=lambda s: (s.start, s.pk)) if current else None,
                [
                    Gap(a.astimezone(tz), b.astimezone(tz), group.name)
                    for a, b in _gaps([(s.start, s.end) for s in mine], begin, end)
                ],
            )
        )
    return out


@dataclass
class Segment:
    """Part of a day: someone on call (shift set) or nobody (a gap)."""

    start: datetime
    end: datetime
    shift: OnCallShift | None = None
    day_seconds: float = 86400.0  # 23 or 25 hours when the clocks change

    @property
    def is_gap(self) -> bool:
        return self.shift is None

    @property
    def percent(self) -> float:
        return round(100 * _seconds(self.start, self.end) / self.day_seconds, 2)


@dataclass
class CalendarDay:
    day: date
    segments: list[Segment] = field(default_factory=list)
    in_range: bool = True

    @property
    def has_gap(self) -> bool:
        return any(s.is_gap for s in self.segments)

    @property
    def gap_hours(self) -> float:
        return round(sum(_seconds(s.start, s.end) for s in self.segments if s.is_gap) / 3600, 1)


def rota_calendar(
    practice: Practice, first_day: date, days: int, group_id: int | None = None
) -> list[CalendarDay]:
    """Day by day from `first_day`: who is on call for the group (None: the default group)
    and the gaps between (one query). A day's segments follow the provider who started last
    when shifts overlap, like `on_call_at`."""
    begin, end = _window(practice, first_day, days)
    shifts = list(shifts_between(practice, begin, end, group_id))
    tz = practice.tz
    out: list[CalendarDay] = []
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        day_start = datetime.combine(day, time.min, tz)
        day_end = datetime.combine(day + timedelta(days=1), time.min, tz)
        # cut points: the day's edges and every shift edge inside it
        cuts = {day_start, day_end}
        for s in shifts:
            for moment in (s.start, s.end):
                if day_start < moment < day_end:
                    cuts.add(moment)
        points = sorted(cuts)
        segments: list[Segment] = []
        for a, b in itertools.pairwise(points):
            covering = [s for s in shifts if s.start <= a and s.end >= b]
            shift = max(covering, key=lambda s: (s.start, s.pk)) if covering else None
            if segments and segments[-1].shift is shift:
                segments[-1].end = b.astimezone(tz)
            else:
                segments.append(
                    Segment(a.astimezone(tz), b.astimezone(tz), shift, _seconds(day_start, day_end))
                )
        out.append(CalendarDay(day, segments))
    return out


def calendar_weeks(
    practice: Practice, month_of: date, group_id: int | None = None
) -> list[list[CalendarDay]]:
    """A month grid (Monday-first weeks) around the month of `month_of`."""
    first = month_of.replace(day=1)
    grid_start = first - timedelta(days=first.weekday())
    next_month = (first + timedelta(days=32)).replace(day=1)
    grid_end = next_month + timedelta(days=(7 - next_month.weekday()) % 7)
    days = rota_calendar(practice, grid_start, (grid_end - grid_start).days, group_id)
    for d in days:
        d.in_range = d.day.month == first.month
    return [days[i : i + 7] for i in range(0, len(days), 7)]


def today(practice: Practice, now: datetime | None = None) -> date:
    return (now or timezone.now()).astimezone(practice.tz).date()


def summary(practice: Practice, now: datetime | None = None) -> dict[str, Any]:
    """For the dashboard partial: who is on call now and the gaps of the next 7 days, every
    group's (a practice with no group yet: the default group's, all of it a gap)."""
    now = now or timezone.now()
    lines = rota_lines(practice, now, 7)
    if not lines:
        return {"on_call_now": None, "gaps": on_call_gaps(practice, now, 7), "days": 7}
    named = len(lines) > 1
    return {
        "on_call_now": next((line.on_call_now for line in lines if line.on_call_now), None),
        "gaps": [g if named else Gap(g.start, g.end) for line in lines for g in line.gaps],
        "lines": lines,
        "days": 7,
    }
