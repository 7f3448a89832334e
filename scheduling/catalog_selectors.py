"""Reads for the practice manager's scheduling pages: the catalogue lists, a type's detail, the
week grid of working hours and blocks, and the "what would the agent book?" console.

Lists run in a constant number of queries whatever their length (annotations and
`prefetch_related`, never a query per row); the tests pin the counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db.models import Count, Prefetch, Q, QuerySet
from django.utils import timezone

from accounts.models import Location, Practice
from scheduling.intents import IntentMatch, resolve_intent
from scheduling.models import (
    AppointmentDescriptor,
    AppointmentType,
    Block,
    CallerPhrase,
    Operatory,
    Provider,
    ProviderRule,
    WorkingHour,
)
from scheduling.selectors import available_slots
from scheduling.slots import WEEKDAYS, Slot

# --- catalogue lists -------------------------------------------------------------------------


def appointment_types(
    practice: Practice, *, name: str = "", bookable: bool | None = None
) -> QuerySet[AppointmentType]:
    """The practice's types for the list page, with phrase counts, providers and descriptor
    codes loaded up front (three queries per page, plus the paginator's count)."""
    qs = AppointmentType.objects.for_practice(practice)
    if name:
        qs = qs.filter(Q(name__icontains=name) | Q(phrases__text__icontains=name)).distinct()
    if bookable is not None:
        qs = qs.filter(bookable=bookable)
    qs = qs.annotate(phrase_count=Count("phrases", distinct=True)).order_by("name", "id")
    return qs.prefetch_related(
        Prefetch("providers", queryset=Provider.objects.only("id", "name").order_by("name")),
        Prefetch(
            "descriptors",
            queryset=AppointmentDescriptor.objects.only("id", "code").order_by("code"),
        ),
    )


def appointment_type_detail(practice: Practice, pk: int) -> AppointmentType:
    """One type with its phrases, providers, descriptors and the rules that mention it."""
    return (
        AppointmentType.objects.for_practice(practice)
        .prefetch_related(
            Prefetch("phrases", queryset=CallerPhrase.objects.order_by("text")),
            "providers",
            Prefetch(
                "descriptors",
                queryset=AppointmentDescriptor.objects.select_related("location").order_by("code"),
            ),
            Prefetch(
                "provider_rules",
                queryset=ProviderRule.objects.select_related("provider").order_by(
                    "provider__name", "begin"
                ),
            ),
        )
        .get(pk=pk)
    )


def descriptors(practice: Practice) -> QuerySet[AppointmentDescriptor]:
    """The EHR's codes as synced, for choosing (code first: what staff recognise)."""
    return (
        AppointmentDescriptor.objects.for_practice(practice)
        .select_related("location")
        .order_by("code", "location__name")
    )


def providers(practice: Practice, *, name: str = "") -> QuerySet[Provider]:
    qs = Provider.objects.for_practice(practice)
    if name:
        qs = qs.filter(name__icontains=name)
    return qs.annotate(
        rule_count=Count("rules", distinct=True),
        type_count=Count("appointment_types", distinct=True),
    ).order_by("-active", "name", "id")


def provider_detail(practice: Practice, pk: int) -> Provider:
    return (
        Provider.objects.for_practice(practice)
        .prefetch_related(
            Prefetch(
                "rules",
                queryset=ProviderRule.objects.prefetch_related(
                    Prefetch("appointment_types", queryset=AppointmentType.objects.only("name"))
                ).order_by("begin", "id"),
            ),
            Prefetch("appointment_types", queryset=AppointmentType.objects.only("id", "name")),
        )
        .get(pk=pk)
    )


def operatories(practice: Practice) -> QuerySet[Operatory]:
    return (
        Operatory.objects.for_practice(practice)
        .select_related("location")
        .order_by("location__name", "name")
    )


def capabilities_in_use(practice: Practice) -> list[str]:
    """Every capability any room has: the choices for a type's required capabilities."""
    found: set[str] = set()
    for caps in Operatory.objects.for_practice(practice).values_list("capabilities", flat=True):
        found.update(caps)
    return sorted(found)


# --- the week grid ---------------------------------------------------------------------------

GRID_STEP_MINUTES = 15


@dataclass
class GridItem:
    kind: str  # "hour" or "block"
    obj: Any
    day: date
    column: int  # 1..7, Monday first
    row_start: int  # 1-based grid lines, GRID_STEP_MINUTES each, from the grid's first hour
    row_end: int
    begin: time
    end: time
    title: str
    editable: bool
    # Working hours that overlap others on the same day are drawn side by side: this one is
    # in lane `lane` of `lanes` (0 of 1 when it overlaps nothing).
    lane: int = 0
    lanes: int = 1

    @property
    def width_percent(self) -> int:
        return 100 // self.lanes - 2 if self.lanes > 1 else 0

    @property
    def offset_percent(self) -> int:
        return self.lane * 100 // self.lanes


def _lay_out_side_by_side(items: list[GridItem]) -> None:
    """Give overlapping working hours of one day their own lanes (greedy, by start), so none is
    drawn on top of another; each cluster of overlaps shares its lane count."""
    by_day: dict[int, list[GridItem]] = {}
    for item in items:
        if item.kind == "hour":
            by_day.setdefault(item.column, []).append(item)
    for day_items in by_day.values():
        day_items.sort(key=lambda i: (i.row_start, i.row_end))
        cluster: list[GridItem] = []
        lane_ends: list[int] = []
        cluster_end = 0
        for item in day_items:
            if cluster and item.row_start >= cluster_end:
                for member in cluster:
                    member.lanes = len(lane_ends)
                cluster, lane_ends = [], []
            free = next((n for n, end in enumerate(lane_ends) if end <= item.row_start), None)
            if free is None:
                lane_ends.append(item.row_end)
                free = len(lane_ends) - 1
            else:
                lane_ends[free] = item.row_end
            item.lane = free
            cluster.append(item)
            cluster_end = max(cluster_end, item.row_end) if len(cluster) > 1 else item.row_end
        for member in cluster:
            member.lanes = len(lane_ends)


@dataclass
class WeekGrid:
    week_start: date
    days: list[date]
    first_hour: int
    last_hour: int
    items: list[GridItem] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return (self.last_hour - self.first_hour) * 60 // GRID_STEP_MINUTES

    @property
    def hour_labels(self) -> list[tuple[int, int]]:
        """(hour, grid row where it starts)."""
        per_hour = 60 // GRID_STEP_MINUTES
        return [
            (h, (h - self.first_hour) * per_hour + 1)
            for h in range(self.first_hour, self.last_hour)
        ]

    @property
    def previous_week(self) -> date:
        return self.week_start - timedelta(days=7)

    @property
    def next_week(self) -> date:
        return self.week_start + timedelta(days=7)


def week_start_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def week_grid(
    practice: Practice,
    week_start: date,
    *,
    provider: Provider | None = None,
    operatory: Operatory | None = None,
) -> WeekGrid:
    """Working hours and blocks of one provider or one room for the week starting Monday
    `week_start`, placed on a grid of GRID_STEP_MINUTES rows (two queries)."""
    if (provider is None) == (operatory is None):
        raise ValueError("a week grid is of one provider or one operatory")
    days = [week_start + timedelta(days=i) for i in range(7)]
    week_end = week_start + timedelta(days=7)
    hours = (
        WorkingHour.objects.for_practice(practice)
        .filter(Q(specific_date__isnull=True) | Q(specific_date__range=(week_start, days[-1])))
        .select_related("provider", "operatory__location")
        .order_by("begin", "id")
    )
    blocks = Block.objects.for_practice(practice).select_related(
        "location", "provider", "operatory"
    )
    everywhere = Q(provider__isnull=True, operatory__isnull=True)
    if provider is not None:
        hours = hours.filter(provider=provider)
        blocks = blocks.filter(Q(provider=provider) | everywhere)
    else:
        assert operatory is not None
        hours = hours.filter(operatory=operatory)
        blocks = blocks.filter(
            Q(operatory=operatory) | (everywhere & Q(location_id=operatory.location_id))
        )
    # Blocks are instants: widen the window by a day either side for any zone, clip below.
    lo = datetime.combine(week_start - timedelta(days=1), time(0), UTC)
    hi = datetime.combine(week_end + timedelta(days=1), time(0), UTC)
    blocks = blocks.filter(start__lt=hi, end__gt=lo).order_by("start")

    spans: list[tuple[int, date, time, time, str, Any, bool]] = []
    for hour in hours:
        editable = _hour_editable(hour)
        who = hour.operatory.name if provider is not None else hour.provider.name
        label = f"{who}{' · ' + hour.label if hour.label else ''}"
        for i, day in enumerate(days):
            if hour.specific_date == day or (
                hour.specific_date is None and WEEKDAYS[i] in hour.days
            ):
                spans.append((0, day, hour.begin, hour.end, label, hour, editable))
    for block in blocks:
        tz = block.location.tz
        start, end = block.start.astimezone(tz), block.end.astimezone(tz)
        reason = block.reason or "Blocked"
        for day in days:
            day_lo = datetime.combine(day, time(0), tz)
            day_hi = datetime.combine(day + timedelta(days=1), time(0), tz)
            if start >= day_hi or end <= day_lo:
                continue
            b = max(start, day_lo).timetz().replace(tzinfo=None)
            e = time(23, 59) if end >= day_hi else end.timetz().replace(tzinfo=None)
            spans.append((1, day, b, e, reason, block, True))

    first, last = 8, 18
    for _, _, b, e, *_ in spans:
        first = min(first, b.hour)
        last = max(last, e.hour + (1 if e.minute or e.second else 0))
    grid = WeekGrid(week_start=week_start, days=days, first_hour=first, last_hour=min(last, 24))
    for kind, day, b, e, title, obj, editable in spans:
        grid.items.append(
            GridItem(
                kind="block" if kind else "hour",
                obj=obj,
                day=day,
                column=(day - week_start).days + 1,
                row_start=_row(b, first),
                row_end=max(_row(e, first, ceil=True), _row(b, first) + 1),
                begin=b,
                end=e,
                title=title,
                editable=editable,
            )
        )
    _lay_out_side_by_side(grid.items)
    grid.items.sort(key=lambda i: (i.column, i.row_start, i.kind))
    return grid


def _hour_editable(hour: WorkingHour) -> bool:
    from scheduling.catalog import hour_is_editable

    return hour_is_editable(hour, hour.operatory.location)


def _row(t: time, first_hour: int, *, ceil: bool = False) -> int:
    minutes = (t.hour - first_hour) * 60 + t.minute
    steps, rest = divmod(minutes, GRID_STEP_MINUTES)
    if ceil and rest:
        steps += 1
    return steps + 1


def locations(practice: Practice) -> QuerySet[Location]:
    return Location.objects.for_practice(practice).order_by("name")


# --- "what would the agent book?" --------------------------------------------------------------

CONSOLE_TYPES = 3
CONSOLE_SLOTS = 5
CONSOLE_DAYS = 14


@dataclass
class ConsoleSlot:
    start: datetime
    end: datetime
    provider: str
    operatory: str


@dataclass
class ConsoleAnswer:
    match: IntentMatch
    slots: list[ConsoleSlot]

    @property
    def confidence_percent(self) -> int:
        return round(self.match.confidence * 100)


def what_would_the_agent_book(
    practice: Practice,
    utterance: str,
    patient_status: str,
    *,
    now: datetime | None = None,
) -> list[ConsoleAnswer]:
    """What the voice agent would do with these words: the types it would consider (as
    `/intents/resolve` answers) and, for the best few, the next slots it would offer (as
    `/availability` answers), over the next CONSOLE_DAYS days. One query for the intent, four
    per type shown for availability, one for the names."""
    now = now or timezone.now()
    matches = resolve_intent(practice, utterance, patient_status)[:CONSOLE_TYPES]
    today = timezone.localtime(now, practice.tz).date()
    found: list[tuple[IntentMatch, list[Slot]]] = []
    for match in matches:
        slots = available_slots(
            practice,
            appointment_type_id=match.appointment_type_id,
            start_date=today,
            days=CONSOLE_DAYS,
            patient_status=patient_status,
            now=now,
        )[:CONSOLE_SLOTS]
        found.append((match, slots))
    provider_ids = {s.provider_id for _, slots in found for s in slots}
    operatory_ids = {s.operatory_id for _, slots in found for s in slots}
    providers_by_id: dict[int, str] = {}
    rooms_by_id: dict[int, str] = {}
    if provider_ids:
        providers_by_id = dict(
            Provider.objects.for_practice(practice)
            .filter(pk__in=provider_ids)
            .values_list("id", "name")
        )
        rooms_by_id = dict(
            Operatory.objects.for_practice(practice)
            .filter(pk__in=operatory_ids)
            .values_list("id", "name")
        )
    return [
        ConsoleAnswer(
            match=match,
            slots=[
                ConsoleSlot(
                    s.start,
                    s.end,
                    providers_by_id.get(s.provider_id, "?"),
                    rooms_by_id.get(s.operatory_id, "?"),
                )
                for s in slots
            ],
        )
        for match, slots in found
    ]


# --- rooms, and a provider in two rooms at once ----------------------------------------------


def rooms(practice: Practice) -> QuerySet[Operatory]:
    """Every room with its location and how many working-hour entries use it (one query)."""
    return (
        Operatory.objects.for_practice(practice)
        .select_related("location")
        .annotate(hour_count=Count("working_hours", filter=Q(working_hours__active=True)))
        .order_by("location__name", "-active", "name", "id")
    )


def room_detail(practice: Practice, pk: int) -> Operatory:
    return Operatory.objects.for_practice(practice).select_related("location").get(pk=pk)


@dataclass(frozen=True)
class RoomClash:
    """`other`: the provider's entry in another room at a time the saved one also covers."""

    other: WorkingHour
    days: list[str]
    begin: time
    end: time


def _weekday(day: date) -> str:
    return WEEKDAYS[day.weekday()]


def _shared_days(a: WorkingHour, b: WorkingHour) -> list[str]:
    """The days both entries cover: weekdays, or a date (as "2031-03-04")."""
    if a.specific_date and b.specific_date:
        return [a.specific_date.isoformat()] if a.specific_date == b.specific_date else []
    if a.specific_date or b.specific_date:
        one, weekly = (a, b) if a.specific_date else (b, a)
        assert one.specific_date is not None
        return [one.specific_date.isoformat()] if _weekday(one.specific_date) in weekly.days else []
    return [d for d in WEEKDAYS if d in a.days and d in b.days]


def provider_room_clashes(practice: Practice, hour: WorkingHour) -> list[RoomClash]:
    """Entries that put `hour`'s provider in another room during `hour`'s time: one person
    cannot see patients in two rooms at once, so the slot engine would offer the provider twice.
    One query (the provider's other active entries)."""
    others = (
        WorkingHour.objects.for_practice(practice)
        .filter(provider_id=hour.provider_id, active=True, begin__lt=hour.end, end__gt=hour.begin)
        .exclude(pk=hour.pk)
        .exclude(operatory_id=hour.operatory_id)
        .select_related("operatory__location")
        .order_by("begin", "id")
    )
    out = []
    for other in others:
        days = _shared_days(hour, other)
        if days:
            out.append(
                RoomClash(other, days, max(hour.begin, other.begin), min(hour.end, other.end))
            )
    return out
