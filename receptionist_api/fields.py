"""Bounded field classes every receptionist-API serializer uses for dates, instants and integers.

The bounds are core.bounds'; a birth date in the year 2990 and a phone of "1" also went into
the EHR. Every such value is refused here, as a 400 with a message naming the bound, and the
OpenAPI schema states the same bounds.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.bounds import (
    BIGINT_MAX,
    BIGINT_MIN,
    EARLIEST,
    LATEST,
    MAX_OFFSET,
    instant_in_range,
)
from core.phone import to_e164

__all__ = ["BIGINT_MAX", "BIGINT_MIN", "EARLIEST", "LATEST"]  # for the API's other modules

# A person's birth date: no one alive is older than this.
MAX_AGE_YEARS = 130
# The date now in the zone furthest ahead (UTC+14): a birth "today" there is not in the future.
_FURTHEST_AHEAD = timedelta(hours=14)

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SPACES = re.compile(r"\s+")


class IdField(serializers.IntegerField):
    """A row id: 1 to PostgreSQL's bigint maximum."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", BIGINT_MAX)
        super().__init__(**kwargs)


class BoundedIntegerField(serializers.IntegerField):
    """An integer within bigint unless narrower bounds are given."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", BIGINT_MIN)
        kwargs.setdefault("max_value", BIGINT_MAX)
        super().__init__(**kwargs)


def _date_schema(earliest: date, latest: date, what: str = "date") -> dict[str, Any]:
    return {
        "type": "string",
        "format": "date",
        "description": f"YYYY-MM-DD, a {what} from {earliest.isoformat()} to {latest.isoformat()}",
        "example": "2026-05-04",
    }


@extend_schema_field(_date_schema(EARLIEST, LATEST))
class BoundedDateField(serializers.DateField):
    """A calendar date (YYYY-MM-DD) within [earliest, latest]."""

    default_error_messages = {
        "out_of_range": "Give a date from {earliest} to {latest}.",
    }

    def __init__(self, *, earliest: date = EARLIEST, latest: date = LATEST, **kwargs: Any) -> None:
        kwargs.setdefault("input_formats", ["%Y-%m-%d"])
        super().__init__(**kwargs)
        self.earliest = earliest
        self.latest = latest

    def bounds(self) -> tuple[date, date]:
        return self.earliest, self.latest

    def to_internal_value(self, value: Any) -> date:
        parsed = super().to_internal_value(value)
        earliest, latest = self.bounds()
        if not earliest <= parsed <= latest:
            self.fail("out_of_range", earliest=earliest.isoformat(), latest=latest.isoformat())
        return parsed


@extend_schema_field(
    {
        "type": "string",
        "format": "date",
        "description": (
            f"YYYY-MM-DD; not in the future and not more than {MAX_AGE_YEARS} years ago"
        ),
        "example": "1984-03-09",
    }
)
class DateOfBirthField(BoundedDateField):
    """A living person's birth date: not after today anywhere on Earth, at most 130 years ago.
    Returned as ISO text: it is stored in the booking's JSON and sent to the EHR as such."""

    def bounds(self) -> tuple[date, date]:
        today = (timezone.now().astimezone(UTC) + _FURTHEST_AHEAD).date()
        try:
            earliest = today.replace(year=today.year - MAX_AGE_YEARS)
        except ValueError:  # 29 February
            earliest = today.replace(year=today.year - MAX_AGE_YEARS, day=28)
        return earliest, today

    def to_internal_value(self, value: Any) -> Any:
        return super().to_internal_value(value).isoformat()

    def to_representation(self, value: Any) -> Any:
        return value if isinstance(value, str) else super().to_representation(value)


@extend_schema_field(
    {
        "type": "string",
        "format": "date-time",
        "description": (
            "ISO 8601 with a UTC offset (at most ±15:59), e.g. 2026-05-04T11:00:00-07:00, "
            f"from {EARLIEST.isoformat()} to {LATEST.isoformat()}"
        ),
        "example": "2026-05-04T11:00:00-07:00",
    }
)
class AwareDateTimeField(serializers.Field):
    """ISO 8601 with an offset, kept in the caller's offset (a naive time is ambiguous); the
    offset within what PostgreSQL stores, the instant within [EARLIEST, LATEST] in UTC."""

    default_error_messages = {
        "invalid": "Use ISO 8601 with an offset, e.g. 2026-05-04T11:00:00-07:00.",
        "naive": "The time needs a UTC offset, e.g. 2026-05-04T11:00:00-07:00.",
        "offset": "The UTC offset must be within ±15:59.",
        "out_of_range": "Give a time from {earliest} to {latest}.",
    }

    def to_internal_value(self, data: Any) -> datetime:
        if not isinstance(data, str) or len(data) > 64:
            self.fail("invalid")
        text = data.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            self.fail("invalid")
        offset = value.utcoffset() if value.tzinfo is not None else None
        if offset is None:
            self.fail("naive")
        assert offset is not None  # fail() raises
        if abs(offset) > MAX_OFFSET:
            self.fail("offset")
        if not instant_in_range(value):
            self.fail("out_of_range", earliest=EARLIEST.isoformat(), latest=LATEST.isoformat())
        return value

    def to_representation(self, value: datetime) -> str:
        return value.isoformat()


@extend_schema_field(
    {
        "type": "string",
        "maxLength": 100,
        "description": "Trimmed; letters, spaces, hyphens, apostrophes and dots",
    }
)
class PersonNameField(serializers.CharField):
    """A name as the EHR takes it: trimmed, inner whitespace collapsed, no control characters,
    at least one letter."""

    default_error_messages = {
        "name": "Give a name with at least one letter and no control characters.",
    }

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 100)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        text = _SPACES.sub(" ", super().to_internal_value(data)).strip()
        if not text or _CONTROL.search(text) or not any(c.isalpha() for c in text):
            self.fail("name")
        return text


@extend_schema_field(
    {
        "type": "string",
        "maxLength": 32,
        "description": (
            "A valid phone number (E.164, or national for the practice's country); "
            "answered as E.164"
        ),
        "example": "+12135550123",
    }
)
class PhoneField(serializers.CharField):
    """A phone number the EHR accepts: valid per `phonenumbers`, normalised to E.164."""

    default_error_messages = {
        "phone": "Give a valid phone number, e.g. +12135550123.",
    }

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 32)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        text = super().to_internal_value(data)
        if not text:
            return text  # allow_blank decides whether empty is acceptable
        number = to_e164(text, valid=True)
        if number is None:
            self.fail("phone")
        return str(number)
