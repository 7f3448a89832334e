"""Fixtures for the Nextech tests: the Nextech sandbox as a real process (one per test process,
so one per xdist worker), reset and seeded with the demo practice and a service user per test.

Faults are switched on in the sandbox (``/_admin/faults``, ``/_admin/rate_limits``, the user
routes), never by patching our client.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from core.tenancy import cross_tenant, tenant_context
from ehr.models import ConnectionKind, EHRConnection
from ehr.nextech.poller import forget_cursor
from ehr.nextech.port import NextechPort, reset_ports
from ehr.registry import port_for
from ehr_sandbox.nextech.demo import DEMO_PRACTICE_ID, demo_practice
from ehr_sandbox.nextech.testing import NextechServer
from scheduling.models import Provider
from tests.factories import LocationFactory, PracticeFactory, sign_baa

USERNAME = "svc-user@practice.example"  # the sandbox tests' user; adapter tests get their own
PASSWORD = "first-password"
TZ = ZoneInfo("America/Chicago")


@dataclass
class NextechWorld:
    server: NextechServer
    practice_id: str = DEMO_PRACTICE_ID
    username: str = USERNAME
    password: str = PASSWORD

    def api(self) -> httpx.Client:
        return self.server.api(self.username, self.password, self.practice_id)

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        return self.server.admin(method, path, body).json()

    def appointments(self) -> list[dict[str, Any]]:
        return list(self.admin("GET", f"/_admin/practices/{self.practice_id}/appointments"))

    def patients(self) -> list[dict[str, Any]]:
        return list(self.admin("GET", f"/_admin/practices/{self.practice_id}/patients"))

    def faults(self, **changes: Any) -> None:
        self.admin("POST", "/_admin/faults", changes)

    def stats(self) -> dict[str, Any]:
        return self.server.stats()


@pytest.fixture
def nextech(nextech_server: NextechServer) -> Iterator[NextechWorld]:
    """The sandbox, reset, with the demo practice and its service user."""
    world = seeded_world(nextech_server)
    # The sandbox tests' shared user too; the adapter tests get one of their own per test:
    # Redis (tokens, rate buckets) is shared by the test processes, and Nextech's scopes are
    # per user, so nothing of one test leaks into another.
    nextech_server.admin(
        "POST",
        "/_admin/users",
        {"username": USERNAME, "password": PASSWORD, "practices": [DEMO_PRACTICE_ID]},
    )
    yield world
    nextech_server.reset()


def next_weekday(weekday: int, *, after: int = 1) -> date:
    """The first date at least ``after`` days from today that falls on ``weekday`` (0 = Monday)."""
    day = date.today() + timedelta(days=after)
    while day.weekday() != weekday:
        day += timedelta(days=1)
    return day


def local(day: date, hhmm: str) -> datetime:
    hour, minute = (int(x) for x in hhmm.split(":"))
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=TZ)


def make_config(world: NextechWorld, **overrides: Any) -> Any:
    from ehr.nextech.config import NextechConfig

    fields: dict[str, Any] = {
        "practice_id": world.practice_id,
        "client_id": world.server.client_id,
        "client_secret": world.server.client_secret,
        "username": world.username,
        "password": world.password,
        "api_base_url": world.server.api_url,
        "token_url": world.server.token_url,
        "health_key": f"nextech-test-{uuid.uuid4().hex[:8]}",
    }
    fields.update(overrides)
    return NextechConfig(**fields)


def connect(world: NextechWorld, practice: Any, location: Any) -> EHRConnection:
    """`location` connected to the sandbox's demo practice (location 1) as `world`'s user."""
    config = make_config(world)
    with tenant_context(practice.pk):
        conn = EHRConnection.objects.create(
            practice=practice,
            location=location,
            kind=ConnectionKind.NEXTECH,
            base_url=world.server.api_url,
            subdomain=world.practice_id,
            ehr_location_id=1,
            status="connected",
            api_key=json.dumps(
                {
                    "client_id": config.client_id,
                    "client_secret": config.client_secret,
                    "username": config.username,
                    "password": config.password,
                    "token_url": config.token_url,
                }
            ),
        )
        return EHRConnection.objects.select_related("location__practice").get(pk=conn.pk)


@dataclass
class Connected:
    """A practice whose one location is connected to the sandbox's demo practice (location 1)
    as this test's service user; its port."""

    conn: EHRConnection
    port: NextechPort


@pytest.fixture
def connected(nextech: NextechWorld, db: None) -> Iterator[Connected]:
    practice = PracticeFactory(timezone="America/Chicago")
    sign_baa(practice)
    location = LocationFactory(practice=practice, ehr_id=1)
    with cross_tenant("test data setup"):
        Provider.objects.create(practice=practice, key="walters", name="Dr. Walters", ehr_id=9323)
    conn = connect(nextech, practice, location)
    port = port_for(conn)
    assert isinstance(port, NextechPort)
    yield Connected(conn, port)
    forget_cursor(conn)
    reset_ports()


# --- a portal practice on the sandbox's Nextech, its location in native mode ------------------

WEEK = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
GLAUCOMA_EHR = 32  # the sandbox demo's 30-minute type, on Dr. Walters's 08:00-16:00 template


@dataclass
class Native:
    practice: Any
    location: Any
    conn: Any
    port: Any
    walters: Any
    room: Any
    glaucoma: Any

    def offered(self, day: date) -> list[str]:
        """The glaucoma check's slots on `day` (local HH:MM), as the receptionist API offers."""
        from core.tenancy import tenant_context
        from scheduling.selectors import available_slots

        with tenant_context(self.practice):
            found = available_slots(
                self.practice, appointment_type_id=self.glaucoma.pk, start_date=day, days=1
            )
        assert all(s.operatory_id == self.room.pk for s in found)
        return [s.start.astimezone(TZ).strftime("%H:%M") for s in found]

    def stored(self) -> int:
        from core.tenancy import tenant_context
        from scheduling.models import NativeSlot

        with tenant_context(self.practice):
            return NativeSlot.objects.filter(location=self.location).count()


def build_native(world: NextechWorld) -> Native:
    """A practice whose one location (native mode) is connected to the sandbox's demo practice:
    Dr. Walters (9323) in one room of ours, Mon-Fri 08:00-16:00, taking the glaucoma check
    (30 min, Nextech type 32, 30-day horizon)."""
    from datetime import time

    from ehr.models import AppointmentTypeLink
    from tests.scheduling.factories import (
        AppointmentTypeFactory,
        OperatoryFactory,
        ProviderFactory,
        WorkingHourFactory,
    )

    practice = PracticeFactory(timezone="America/Chicago")
    sign_baa(practice)
    location = LocationFactory(practice=practice, ehr_id=1, working_hours_mode="native")
    walters = ProviderFactory(practice=practice, key="walters", ehr_id=9323)
    glaucoma = AppointmentTypeFactory(practice=practice, minutes=30, horizon_days=30)
    room = OperatoryFactory(practice=practice, location=location, ehr_id=1)
    WorkingHourFactory(
        practice=practice,
        provider=walters,
        operatory=room,
        days=WEEK,
        begin=time(8),
        end=time(16),
        appointment_types=[glaucoma],
    )
    conn = connect(world, practice, location)
    with cross_tenant("test data setup"):
        AppointmentTypeLink.objects.create(
            practice=practice, connection=conn, appointment_type=glaucoma, ehr_id=GLAUCOMA_EHR
        )
    return Native(practice, location, conn, port_for(conn), walters, room, glaucoma)


def forget_native(native: Native) -> None:
    """What a native world left in Redis and the process (its poll cursor, its ports)."""
    from ehr.native_slots import forget_far_refresh

    forget_cursor(native.conn)
    forget_far_refresh(native.conn)
    reset_ports()


def staff_book(world: NextechWorld, start: datetime, minutes: int = 30) -> str:
    """Staff book Dr. Walters at `start` in Nextech itself; the appointment's id."""
    made = world.admin(
        "POST",
        f"/_admin/practices/{world.practice_id}/appointments",
        {"practitioner": "9323", "location": "1", "start": start.isoformat(), "minutes": minutes},
    )
    return str(made["id"])


def staff_cancel(world: NextechWorld, appointment_id: str) -> None:
    world.admin(
        "POST", f"/_admin/practices/{world.practice_id}/appointments/{appointment_id}/cancel"
    )


def staff_block(world: NextechWorld, start: datetime, end: datetime) -> None:
    world.admin(
        "POST",
        f"/_admin/practices/{world.practice_id}/blocks",
        {
            "practitioner": "9323",
            "location": "1",
            "start": start.isoformat(),
            "end": end.isoformat(),
        },
    )


def seeded_world(server: NextechServer) -> NextechWorld:
    """The sandbox reset, with the demo practice and a service user of its own."""
    server.reset()
    server.admin("POST", "/_admin/practices", demo_practice())
    world = NextechWorld(server)
    world.username = f"svc-{uuid.uuid4().hex[:12]}@practice.example"
    server.admin(
        "POST",
        "/_admin/users",
        {"username": world.username, "password": PASSWORD, "practices": [DEMO_PRACTICE_ID]},
    )
    return world
