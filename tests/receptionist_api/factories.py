"""Small builders for the receptionist-API tests: a practice's schedule and API credentials.

Rows are created under `cross_tenant` (test set-up spans practices), exactly like
tests/factories.py; the code under test never gets that for free.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.utils import timezone
from oauth2_provider.models import AccessToken, set_token_value

from accounts.models import Location, Practice
from core.tenancy import cross_tenant
from scheduling.models import (
    ApiClient,
    Appointment,
    AppointmentType,
    Block,
    Operatory,
    Provider,
    ProviderRule,
    WorkingHour,
)
from scheduling.services import create_api_client
from tests.factories import PracticeFactory

LA = ZoneInfo("America/Los_Angeles")
ALL_SCOPES = ("availability:read", "bookings:write", "calls:write")


def next_weekday_in_dst(weekday: int, zone: ZoneInfo = LA, min_days_ahead: int = 2) -> date:
    """The first such weekday at least `min_days_ahead` from today with daylight time in force
    (so Los Angeles is at -07:00, as in the guide's example), whatever today's date is."""
    day = timezone.now().astimezone(zone).date() + timedelta(days=min_days_ahead)
    while True:
        noon = datetime.combine(day, time(12), zone)
        if day.weekday() == weekday and noon.utcoffset() == timedelta(hours=-7):
            return day
        day += timedelta(days=1)


def local(day: date, hh: int, mm: int = 0, zone: ZoneInfo = LA) -> datetime:
    return datetime.combine(day, time(hh, mm), zone)


@dataclass
class Schedule:
    """One practice's little world, built row by row."""

    practice: Practice
    location: Location
    n: int = 0
    created: dict[str, Any] = field(default_factory=dict)

    def _key(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}-{self.n}"

    def create(self, model: type, **kwargs: Any) -> Any:
        with cross_tenant("test data setup"):
            return model.objects.create(practice=self.practice, **kwargs)

    def add_location(self, timezone_name: str = "", **kwargs: Any) -> Location:
        kwargs.setdefault("name", self._key("Office"))
        return self.create(Location, key=self._key("loc"), timezone=timezone_name, **kwargs)

    def provider(self, name: str = "Dr. Patel", **kwargs: Any) -> Provider:
        return self.create(Provider, key=self._key("prov"), name=name, **kwargs)

    def operatory(self, location: Location | None = None, **kwargs: Any) -> Operatory:
        kwargs.setdefault("name", self._key("Operatory"))
        return self.create(
            Operatory, key=self._key("op"), location=location or self.location, **kwargs
        )

    def type(self, name: str = "Cleaning", minutes: int = 30, **kwargs: Any) -> AppointmentType:
        providers = kwargs.pop("providers", [])
        kwargs.setdefault("horizon_days", 400)
        kwargs.setdefault("lead_time_hours", 0)
        t = self.create(
            AppointmentType, key=self._key("type"), name=name, minutes=minutes, **kwargs
        )
        if providers:
            with cross_tenant("test data setup"):
                t.providers.set(providers)
        return t

    def hours(
        self,
        provider: Provider,
        operatory: Operatory,
        begin: time,
        end: time,
        types: Iterable[AppointmentType],
        days: Iterable[str] = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday"),
        **kwargs: Any,
    ) -> WorkingHour:
        wh = self.create(
            WorkingHour,
            provider=provider,
            operatory=operatory,
            begin=begin,
            end=end,
            days=list(days),
            **kwargs,
        )
        with cross_tenant("test data setup"):
            wh.appointment_types.set(list(types))
        return wh

    def block(self, start: datetime, end: datetime, **kwargs: Any) -> Block:
        kwargs.setdefault("location", self.location)
        return self.create(Block, start=start, end=end, **kwargs)

    def appointment(
        self,
        provider: Provider,
        operatory: Operatory,
        start: datetime,
        end: datetime,
        **kwargs: Any,
    ) -> Appointment:
        kwargs.setdefault("location", operatory.location)
        return self.create(
            Appointment, provider=provider, operatory=operatory, start=start, end=end, **kwargs
        )

    def rule(
        self,
        provider: Provider,
        types: Iterable[AppointmentType],
        patient_status: str,
        days: Iterable[str],
        begin: time,
        end: time,
    ) -> ProviderRule:
        rule = self.create(
            ProviderRule,
            provider=provider,
            patient_status=patient_status,
            days=list(days),
            begin=begin,
            end=end,
        )
        with cross_tenant("test data setup"):
            rule.appointment_types.set(list(types))
        return rule


def schedule(slug: str, name: str = "", timezone_name: str = "America/Los_Angeles") -> Schedule:
    practice = PracticeFactory(slug=slug, name=name or slug.title(), timezone=timezone_name)
    with cross_tenant("test data setup"):
        location = Location.objects.create(practice=practice, key="main", name="Main Office")
    return Schedule(practice=practice, location=location)


@dataclass
class Level2D:
    """The guide's Level 2D day: Dr. Patel in Operatory 1, cleaning 9-12 and exam 13-17 on
    Thursday; an appointment 8-9, a calendar block 9-11. Cleaning slots: 11:00 and 11:30."""

    s: Schedule
    day: date
    patel: Provider
    op1: Operatory
    cleaning: AppointmentType
    exam: AppointmentType


def level_2d(s: Schedule, day: date | None = None) -> Level2D:
    day = day or next_weekday_in_dst(3)  # a Thursday, as 2026-05-07 in the guide
    patel = s.provider("Dr. Patel")
    op1 = s.operatory(name="Operatory 1")
    cleaning = s.type("Cleaning", 30)
    exam = s.type("Exam", 15)
    s.hours(patel, op1, time(9), time(12), [cleaning], days=["Thursday"])
    s.hours(patel, op1, time(13), time(17), [exam], days=["Thursday"])
    s.appointment(patel, op1, local(day, 8), local(day, 9), appointment_type=cleaning)
    s.block(local(day, 9), local(day, 11), provider=patel, operatory=op1, reason="Staff meeting")
    return Level2D(s, day, patel, op1, cleaning, exam)


def api_client(
    practice: Practice, scopes: Iterable[str] = ALL_SCOPES, name: str = "Voice agent"
) -> tuple[ApiClient, str]:
    return create_api_client(practice, name, list(scopes))


def token_for(
    client: ApiClient, scopes: Iterable[str] | None = None, expires_in: int = 3600
) -> tuple[str, AccessToken]:
    """An access token as the token endpoint would issue it, without the round trip."""
    raw = secrets.token_urlsafe(30)
    token = AccessToken(
        application=client.application,
        scope=" ".join(client.scopes if scopes is None else scopes),
        expires=timezone.now() + timedelta(seconds=expires_in),
    )
    set_token_value(token, raw)
    token.save()
    return raw, token


def bearer(raw: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
