"""Page form fields bounded as the API's are (core.bounds): a typed date of 9999-12-31 or an
instant of 0001-01-01T00:00 is a form error, not an OverflowError further on."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from core.bounds import LATEST, PAGE_EARLIEST, instant_in_range


def _out_of_range(earliest: date, latest: date) -> ValidationError:
    return ValidationError(
        f"Give a date from {earliest:%Y-%m-%d} to {latest:%Y-%m-%d}.", code="out_of_range"
    )


class BoundedDateField(forms.DateField):
    """A date within [earliest, latest] (1900-01-01 to 2199-12-31 unless narrowed)."""

    def __init__(
        self, *, earliest: date = PAGE_EARLIEST, latest: date = LATEST, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.earliest, self.latest = earliest, latest

    def to_python(self, value: Any) -> date | None:
        result = super().to_python(value)
        if result is not None and not self.earliest <= result <= self.latest:
            raise _out_of_range(self.earliest, self.latest)
        return result


class BoundedDateTimeField(forms.DateTimeField):
    """An instant (read in the current zone) within [earliest, latest], wall date and UTC."""

    def __init__(
        self, *, earliest: date = PAGE_EARLIEST, latest: date = LATEST, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.earliest, self.latest = earliest, latest

    def to_python(self, value: Any) -> datetime | None:
        try:
            result = super().to_python(value)
        except OverflowError:
            raise _out_of_range(self.earliest, self.latest) from None
        if result is not None and not instant_in_range(result, self.earliest, self.latest):
            raise _out_of_range(self.earliest, self.latest)
        return result


def bounded_day(raw: str, earliest: date = PAGE_EARLIEST, latest: date = LATEST) -> date | None:
    """A YYYY-MM-DD query parameter within bounds, or None (malformed or out of range)."""
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        return None
    return day if earliest <= day <= latest else None
