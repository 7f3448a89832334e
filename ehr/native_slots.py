"""The EHR's own free slots, kept locally for a location in native mode.

An EHR with `Capability.NATIVE_SLOTS` (Nextech's `GET /Slot`) computes free time itself, from
templates, blocks and appointments we cannot see. At a location whose `working_hours_mode` is
`native` the slot engine takes its free time from `scheduling.NativeSlot`, which this module
fills: one `free_slots` read per mapped appointment type (the EHR's slots for that type, of that
type's length) over a window, stored in one transaction (`scheduling.services
.replace_native_slots`) so availability never reads half a refresh.

Freshness: the change poll re-reads the near days every poll (`NEAR_DAYS`) and the rest of the
horizon every `NEXTECH_SLOT_FAR_SECONDS`; connecting or syncing a location reads the whole
horizon; our own booking or cancel re-reads the near days once it lands; a time the EHR refuses
as taken stops being offered at once (`scheduling.services.drop_native_slots`, from the booking
flow).

Before posting a booking at such a location the booking flow asks the EHR once more
(`still_offered`: one free-slots read of that provider, type and day), since a block or a
template change shows in the EHR's slots and in no appointment read.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import cast

from django.conf import settings
from django.db.models import Max
from django.utils import timezone

from core.redis import get_redis
from core.tenancy import tenant_context
from ehr.models import AppointmentTypeLink, EHRConnection
from ehr.port import Capability, SlotSource
from ehr.ratelimit import redis_prefix
from ehr.registry import port_for
from scheduling.models import AppointmentType, Provider, WorkingHoursMode
from scheduling.services import replace_native_slots

log = logging.getLogger("ehr.native_slots")

NEAR_DAYS = 14  # re-read every poll: what callers are offered first
MAX_HORIZON_DAYS = 180  # never read further ahead than this, whatever a type's horizon


@dataclass
class SlotRefresh:
    """What one refresh read and stored."""

    start: date
    days: int
    requests: int = 0
    stored: int = 0


def is_native(conn: EHRConnection) -> bool:
    """Whether the connection's location takes its free time from the EHR's own slots."""
    with tenant_context(conn.practice_id):
        mode = conn.location.working_hours_mode
    if mode != WorkingHoursMode.NATIVE:
        return False
    return Capability.NATIVE_SLOTS in port_for(conn).capabilities


def still_offered(
    conn: EHRConnection,
    *,
    provider_id: int,
    appointment_type_id: int | None,
    start: datetime,
    end: datetime,
) -> bool:
    """Whether the EHR's own free slots of that provider (EHR id) and type, read live for the
    local day(s) of [start, end), still hold the whole of it inside one slot: the re-check that
    sees what an appointment read cannot (a block, a template change). Raises the EHR's
    errors."""
    with tenant_context(conn.practice_id):
        tz = conn.location.tz
    first = timezone.localtime(start, tz).date()
    last = timezone.localtime(end - timedelta(microseconds=1), tz).date()
    free = cast(SlotSource, port_for(conn)).free_slots(
        start_date=first,
        days=(last - first).days + 1,
        provider_ids=[provider_id],
        location_id=conn.ehr_location_id,
        appointment_type_id=appointment_type_id,
    )
    return any(p == provider_id and s <= start and end <= e for p, s, e in free)


def horizon_days(conn: EHRConnection) -> int:
    """How far ahead anything can be offered: the longest horizon of the practice's types."""
    with tenant_context(conn.practice_id):
        longest = AppointmentType.objects.for_practice(conn.practice_id).aggregate(
            n=Max("horizon_days")
        )["n"]
    return min(int(longest or 90) + 1, MAX_HORIZON_DAYS)


def refresh_native_slots(conn: EHRConnection, *, first_day: int = 0, days: int) -> SlotRefresh:
    """Re-read the EHR's free slots at the connection's location for `days` local days from
    today + `first_day`, for every appointment type mapped at the connection, and make them the
    location's free time there (one transaction). Raises the EHR's errors (nothing is stored
    then: the previous window stays)."""
    port = cast(SlotSource, port_for(conn))
    with tenant_context(conn.practice_id):
        location = conn.location
        links = list(
            AppointmentTypeLink.objects.filter(connection=conn).values_list(
                "ehr_id", "appointment_type_id"
            )
        )
        providers = dict(
            Provider.objects.for_practice(conn.practice_id)
            .filter(ehr_id__isnull=False, active=True)
            .values_list("ehr_id", "pk")
        )
    tz = location.tz
    start = timezone.localtime(timezone.now(), tz).date() + timedelta(days=first_day)
    report = SlotRefresh(start=start, days=days)
    rows: list[tuple[int, int, datetime, datetime]] = []
    for ehr_type, type_id in links:
        report.requests += 1
        for provider_ehr, slot_start, slot_end in port.free_slots(
            start_date=start,
            days=days,
            provider_ids=[],
            location_id=conn.ehr_location_id,
            appointment_type_id=ehr_type,
        ):
            if provider_ehr in providers:
                rows.append((type_id, providers[provider_ehr], slot_start, slot_end))
    lo = datetime.combine(start, time(0), tzinfo=tz)
    hi = datetime.combine(start + timedelta(days=days), time(0), tzinfo=tz)
    with tenant_context(conn.practice_id):
        report.stored = replace_native_slots(location.pk, lo, hi, rows)
    return report


def refresh_horizon(conn: EHRConnection) -> SlotRefresh:
    """The whole horizon at once (connecting or syncing a location)."""
    return refresh_native_slots(conn, days=horizon_days(conn))


def _far_key(conn: EHRConnection) -> str:
    return f"{redis_prefix()}:native-slots:far:{conn.pk}"


def refresh_for_poll(conn: EHRConnection, changed: Iterable[datetime] = ()) -> list[SlotRefresh]:
    """A change poll's share: first the days of the appointments it found changed (`changed`:
    their starts; one day is a small read, so a cancelled time is offered again without waiting
    for the whole window), then the near days every time, and the rest of the horizon when it
    is due (every `NEXTECH_SLOT_FAR_SECONDS`, claimed in Redis so one worker of many does it)."""
    with tenant_context(conn.practice_id):
        tz = conn.location.tz
    today = timezone.localtime(timezone.now(), tz).date()
    offsets = sorted({(timezone.localtime(at, tz).date() - today).days for at in changed})
    done = [refresh_native_slots(conn, first_day=n, days=1) for n in offsets if 0 <= n < NEAR_DAYS]
    done.append(refresh_native_slots(conn, days=NEAR_DAYS))
    far = float(getattr(settings, "NEXTECH_SLOT_FAR_SECONDS", 300))
    horizon = horizon_days(conn)
    if horizon > NEAR_DAYS and get_redis().set(_far_key(conn), "1", nx=True, ex=max(1, int(far))):
        try:
            done.append(refresh_native_slots(conn, first_day=NEAR_DAYS, days=horizon - NEAR_DAYS))
        except Exception:
            get_redis().delete(_far_key(conn))  # not done: the next poll tries again
            raise
    return done


def forget_far_refresh(conn: EHRConnection) -> None:
    get_redis().delete(_far_key(conn))
