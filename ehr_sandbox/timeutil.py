"""Date and time formats of the API, kept in one place.

Appointment times are UTC with milliseconds and a ``Z`` (``2026-07-07T16:00:00.000Z``); slot times
are local to the location with their offset (``2026-05-07T11:00:00.000-07:00``), as the guides show.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso_utc(value: datetime) -> str:
    """``2026-07-07T16:00:00.000Z``."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_local(value: datetime, tz: tzinfo) -> str:
    """``2026-05-07T11:00:00.000-07:00``."""
    return value.astimezone(tz).isoformat(timespec="milliseconds")


def zone(name: str | None) -> tzinfo:
    """The location's zone; UTC when it has none or an unknown one."""
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def valid_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def parse_datetime(value: object, tz: tzinfo) -> datetime:
    """An ISO 8601 date-time; one without an offset is local to ``tz``."""
    if not isinstance(value, str) or not value:
        raise ValueError("must be an ISO 8601 date-time")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError("must be an ISO 8601 date-time") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed.astimezone(UTC)


def parse_date(value: object) -> date:
    if not isinstance(value, str):
        raise ValueError("must be a date (YYYY-MM-DD)")
    try:
        return date.fromisoformat(value.strip())
    except ValueError as exc:
        raise ValueError("must be a date (YYYY-MM-DD)") from exc


def parse_hhmm(value: object) -> time:
    if not isinstance(value, str) or not _HHMM.match(value.strip()):
        raise ValueError("must be a time of day HH:MM (00:00-23:59)")
    hours, minutes = value.strip().split(":")
    return time(int(hours), int(minutes))


def normalise_days(value: object) -> list[str]:
    """Weekday names in any case -> canonical capitalised names, in week order, no repeats."""
    if not isinstance(value, list) or not value:
        raise ValueError("must be a non-empty list of weekday names")
    wanted = set()
    for item in value:
        if not isinstance(item, str) or item.strip().capitalize() not in WEEKDAYS:
            raise ValueError(f"unknown weekday {item!r}")
        wanted.add(item.strip().capitalize())
    return [day for day in WEEKDAYS if day in wanted]


def tz_offset_string(tz: tzinfo, on: date) -> str:
    """``-0400``: the zone's UTC offset at noon of ``on`` (the synced records' ``tz_offset``)."""
    offset = datetime.combine(on, time(12), tzinfo=tz).utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return f"{sign}{minutes // 60:02d}{minutes % 60:02d}"
