"""The dashboard's figures and charts: how the voice agent's bookings and the EHR link are doing.

`figures(practice)` reads everything in a constant number of queries (four, whatever the number
of bookings, days, reasons or connections) plus one Redis round trip per EHR connection for the
live counters and the latency and freshness-lag windows (`ehr.health`). Each connection's
integration health is `ehr.selectors.HealthFigures`, the connection page's own figures. Charts
are plain data with their geometry computed here (`BarChart`), rendered as server-side SVG by
the template: no JavaScript, nothing from a CDN, and each chart also has its numbers as a table
for screen readers.

Definitions:
- bookings per day: bookings the agent made (every `Booking` comes from the receptionist API),
  by the day they were made in the practice's time zone, over the last `DAYS` days;
- confirmed on the first try: of the bookings in that window that settled (confirmed in the EHR
  or failed), those confirmed after exactly one attempt;
- failures by reason: bookings of the window that are failed now, grouped by the category of
  their reason (`booking.failures`), never by its text (which names ids and the caller's
  words);
- queue depth: outbox rows not yet handed to the workers, bookings still pending, failed
  bookings nobody has resolved (the "needs attention" queue, all time), and requests waiting
  for the front desk to approve or decline (the Requests page).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.db.models import Count, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from accounts.models import Location, Membership, Practice
from booking.failures import FailureCategory, category_expression

if TYPE_CHECKING:
    from ehr.selectors import HealthFigures

log = logging.getLogger("portal.dashboard")

DAYS = 30
TOP_REASONS = 8

# SVG geometry (viewBox units; the image scales to its container).
WIDTH = 640
ROW = 26
LABEL_W = 220
VALUE_W = 90
COLUMN_H = 150
AXIS_H = 22


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    text: str
    x: float
    y: float
    width: float
    height: float
    tone: str = "primary"

    @property
    def mid_y(self) -> float:
        return round(self.y + self.height / 2, 1)

    @property
    def end_x(self) -> float:
        return round(self.x + self.width + 6, 1)


@dataclass(frozen=True)
class BarChart:
    """Bars laid out in a WIDTH x height viewBox. `horizontal` charts have one row per bar with
    the label on the left; vertical ones are a time series with `ticks` under the axis."""

    key: str
    title: str
    description: str
    bars: list[Bar]
    height: float
    horizontal: bool
    ticks: list[tuple[float, str]] = field(default_factory=list)
    peak_text: str = ""
    empty: str = ""

    @property
    def width(self) -> int:
        return WIDTH

    @property
    def label_x(self) -> int:
        return LABEL_W - 8

    @property
    def axis_y(self) -> int:
        return COLUMN_H

    @property
    def tick_y(self) -> int:
        return COLUMN_H + AXIS_H - 6

    @property
    def has_data(self) -> bool:
        return any(b.value for b in self.bars)


def hbar_chart(
    key: str,
    title: str,
    description: str,
    rows: list[tuple[str, float, str, str]],
    empty: str,
) -> BarChart:
    """One bar per (label, value, value text, tone), longest = full width."""
    peak = max((value for _, value, _, _ in rows), default=0) or 1
    span = WIDTH - LABEL_W - VALUE_W
    bars = [
        Bar(
            label=label,
            value=value,
            text=text,
            x=LABEL_W,
            y=i * ROW + 4,
            width=round(max(value / peak * span, 1 if value else 0), 1),
            height=ROW - 8,
            tone=tone,
        )
        for i, (label, value, text, tone) in enumerate(rows)
    ]
    return BarChart(key, title, description, bars, max(len(rows), 1) * ROW, True, empty=empty)


def day_chart(
    key: str, title: str, description: str, days: list[date], values: dict[date, int], empty: str
) -> BarChart:
    """A column per day (oldest first), with a tick label every week."""
    peak = max(values.values(), default=0)
    scale = COLUMN_H / (peak or 1)
    step = WIDTH / len(days)
    bars = []
    ticks = []
    for i, day in enumerate(days):
        n = values.get(day, 0)
        height = round(n * scale, 1)
        bars.append(
            Bar(
                label=f"{day:%a %b} {day.day}",
                value=n,
                text=str(n),
                x=round(i * step + 1, 1),
                y=round(COLUMN_H - height, 1),
                width=round(step - 2, 1),
                height=height,
            )
        )
        if (len(days) - 1 - i) % 7 == 0:
            ticks.append((round(i * step + step / 2, 1), f"{day:%b} {day.day}"))
    return BarChart(
        key,
        title,
        description,
        bars,
        COLUMN_H + AXIS_H,
        False,
        ticks=ticks,
        peak_text=f"peak {peak} a day" if peak else "",
        empty=empty,
    )


def _connection_figures(practice: Practice) -> list[HealthFigures]:
    """Each connection's integration health, the connection page's figures (one query for
    all connections, joined to their stored health, plus one Redis round trip each)."""
    from ehr import selectors

    return [selectors.health_figures(c) for c in selectors.connections_with_health(practice)]


def _shares(total: int, parts: list[tuple[str, int, str]]) -> list[tuple[str, float, str, str]]:
    """Bars of one chart in one unit: each part as its per cent of `total` (the count in the
    text), so a share is never drawn beside a count on the same axis."""
    if not total:
        return []
    return [
        (label, round(n / total * 100, 1), f"{round(n / total * 100)}% ({n} of {total})", tone)
        for label, n, tone in parts
    ]


def _ms(value: float | None) -> str:
    if value is None:
        return "no data"
    return f"{value / 1000:.1f} s" if value >= 10_000 else f"{value:.0f} ms"


def counts(practice: Practice) -> dict[str, int]:
    """The practice's size at a glance (locations, members, providers, types, upcoming
    appointments), each one indexed query."""
    from scheduling.models import Appointment, AppointmentType, Provider

    return {
        "locations": Location.objects.for_practice(practice).count(),
        "members": Membership.objects.filter(practice=practice).aggregate(
            n=Count("user", distinct=True)
        )["n"],
        "providers": Provider.objects.for_practice(practice).filter(active=True).count(),
        "appointment_types": AppointmentType.objects.for_practice(practice).count(),
        "upcoming_appointments": Appointment.objects.for_practice(practice)
        .filter(start__gte=timezone.now(), cancelled=False)
        .count(),
    }


def figures(practice: Practice, now: datetime | None = None) -> dict[str, Any]:
    """Everything the dashboard's charts show (see the module docstring for definitions)."""
    from scheduling.models import Booking, BookingStatus, OutboxMessage

    now = now or timezone.now()
    tz = practice.tz
    today = timezone.localtime(now, tz).date()
    days = [today - timedelta(days=n) for n in range(DAYS - 1, -1, -1)]
    since = datetime.combine(days[0], datetime.min.time(), tz)
    bookings = Booking.objects.for_practice(practice)
    in_window = Q(created_at__gte=since)
    confirmed = Q(confirmed_at__isnull=False)

    # One pass over the window (per day, with the settled / first-try counts), then the queues
    # through the (practice, status, created_at) index: no query reads every booking.
    by_day = list(
        bookings.filter(in_window)
        .annotate(day=TruncDate("created_at", tzinfo=tz))
        .values("day")
        .annotate(
            n=Count("pk"),
            settled=Count("pk", filter=confirmed | Q(status=BookingStatus.FAILED)),
            first_try=Count("pk", filter=confirmed & Q(attempts=1)),
        )
        .order_by()
    )
    per_day = {row["day"]: row["n"] for row in by_day}
    queued = [BookingStatus.PENDING, BookingStatus.FAILED, BookingStatus.REQUESTED]
    queues = bookings.filter(status__in=queued).aggregate(
        pending=Count("pk", filter=Q(status=BookingStatus.PENDING)),
        requests=Count(
            "pk", filter=Q(status=BookingStatus.REQUESTED, ehr_appointment_id__isnull=True)
        ),
        needs_attention=Count(
            "pk", filter=Q(status=BookingStatus.FAILED, resolved_at__isnull=True)
        ),
    )
    totals = {
        "made": sum(row["n"] for row in by_day),
        "settled": sum(row["settled"] for row in by_day),
        "first_try": sum(row["first_try"] for row in by_day),
        **queues,
    }
    reasons = list(
        bookings.filter(in_window, status=BookingStatus.FAILED)
        .annotate(why=category_expression())
        .values("why")
        .annotate(n=Count("pk"))
        .order_by("-n", "why")[:TOP_REASONS]
    )
    outbox_pending = (
        OutboxMessage.objects.for_practice(practice).filter(dispatched_at__isnull=True).count()
    )
    connections = _connection_figures(practice)

    share = totals["first_try"] / totals["settled"] if totals["settled"] else None
    latency_rows: list[tuple[str, float, str, str]] = []
    lag_rows: list[tuple[str, float, str, str]] = []
    error_rows: list[tuple[str, float, str, str]] = []
    for c in connections:
        for pct, value, tone in (
            ("p50", c.latency_p50_ms, "primary"),
            ("p95", c.latency_p95_ms, "secondary"),
        ):
            if value is not None:
                latency_rows.append((f"{c.location} {pct}", value, _ms(value), tone))
        for pct, value, tone in (
            ("p50", c.freshness_lag_p50_ms, "primary"),
            ("p95", c.freshness_lag_p95_ms, "secondary"),
        ):
            if value is not None:
                lag_rows.append(
                    (f"{c.location} {c.freshness_source} {pct}", value, _ms(value), tone)
                )
        prefix = f"{c.location}: " if len(connections) > 1 else ""
        for kind, n in sorted(c.errors.items(), key=lambda kv: (-kv[1], kv[0])):
            error_rows.append((f"{prefix}{kind}", n, f"{n} of {c.calls} calls", "danger"))

    return {
        "window_days": DAYS,
        "made": totals["made"],
        "settled": totals["settled"],
        "first_try": totals["first_try"],
        "first_try_share": share,
        "first_try_percent": None if share is None else round(share * 100),
        "queue": {
            "outbox_pending": outbox_pending,
            "bookings_pending": totals["pending"],
            "needs_attention": totals["needs_attention"],
            "requests": totals["requests"],
        },
        "connections": connections,
        "bookings_chart": day_chart(
            "bookings",
            "Bookings made by the agent, per day",
            f"{totals['made']} booking(s) in the last {DAYS} days.",
            days,
            per_day,
            "No bookings yet in the last 30 days. They appear here once the voice agent books.",
        ),
        "first_try_chart": hbar_chart(
            "first-try",
            "Confirmed in the EHR on the first try",
            "Share of the bookings that settled in the window (both bars in per cent).",
            _shares(
                totals["settled"],
                [
                    ("First try", totals["first_try"], "primary"),
                    ("Retried or failed", totals["settled"] - totals["first_try"], "secondary"),
                ],
            ),
            "Nothing settled yet: no booking has been confirmed or has failed in the window.",
        ),
        "failures_chart": hbar_chart(
            "failures",
            "Failures by reason",
            f"Failed bookings of the last {DAYS} days, by kind of reason (each booking's own "
            "reason is on its page and in the queue).",
            [(FailureCategory(r["why"]).label, r["n"], str(r["n"]), "danger") for r in reasons],
            "No failed bookings in the window.",
        ),
        "latency_chart": hbar_chart(
            "latency",
            "EHR latency",
            "Response time of EHR calls over the recent window, per location.",
            latency_rows,
            "No EHR calls measured yet." if connections else "No EHR connection yet.",
        ),
        "errors_chart": hbar_chart(
            "ehr-errors",
            "EHR errors by kind",
            "Errors of EHR calls since the connection was made.",
            error_rows,
            "No EHR errors recorded.",
        ),
        "lag_chart": hbar_chart(
            "freshness-lag",
            "Freshness lag",
            "Delay between a change in the EHR and our seeing it: its webhook arriving "
            "(NexHealth), or the poll that finds it (Nextech).",
            lag_rows,
            "No changes seen from the EHR yet.",
        ),
    }
