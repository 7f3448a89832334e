"""Bounds on dates, instants, offsets and integers from outside (API bodies, webhooks, page forms).

Values past them used to reach code that cannot take them: `date.max` plus a week overflows, an
offset of +22:59 is valid Python but not PostgreSQL (±15:59), an id past bigint is a DataError.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

# PostgreSQL's bigint, the type of every id column.
BIGINT_MIN = -(2**63)
BIGINT_MAX = 2**63 - 1
# PostgreSQL stores UTC offsets up to 15:59 either way; no zone has ever been past ±14:00.
MAX_OFFSET = timedelta(hours=15, minutes=59)
# Scheduling and call instants: wide enough for any real schedule, narrow enough that converting
# into any zone and adding a month of days stays within Python's and PostgreSQL's calendars.
EARLIEST = date(2000, 1, 1)
LATEST = date(2199, 12, 31)
# Dates typed on staff pages (agreements, filters, procedures): a wider past, the same future.
PAGE_EARLIEST = date(1900, 1, 1)


def instant_in_range(value: datetime, earliest: date = EARLIEST, latest: date = LATEST) -> bool:
    """Whether an aware instant is within [earliest, latest], by its wall date and in UTC. The
    wall date is checked first: converting 9999-12-31T23:00-12:00 to UTC overflows."""
    if not earliest <= value.date() <= latest:
        return False
    return earliest <= value.astimezone(UTC).date() <= latest
