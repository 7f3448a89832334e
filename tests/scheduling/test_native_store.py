"""The store of the EHR's own free slots: a refresh replaces a location's window whole, and two
refreshes of one location never interleave."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from django.db import connection, connections, transaction

from core.tenancy import tenant_context
from scheduling.models import NativeSlot
from scheduling.services import replace_native_slots
from tests.factories import LocationFactory, PracticeFactory
from tests.scheduling.factories import AppointmentTypeFactory, ProviderFactory

DAY = datetime(2030, 5, 6, tzinfo=UTC)


def _world():
    practice = PracticeFactory()
    location = LocationFactory(practice=practice, working_hours_mode="native")
    provider = ProviderFactory(practice=practice)
    kind = AppointmentTypeFactory(practice=practice, minutes=30)
    slots = [
        (
            kind.pk,
            provider.pk,
            DAY + timedelta(minutes=30 * i),
            DAY + timedelta(minutes=30 * (i + 1)),
        )
        for i in range(8)
    ]
    return practice, location, slots


def test_a_refresh_replaces_exactly_its_window(db):
    practice, location, slots = _world()
    with tenant_context(practice):
        assert replace_native_slots(location.pk, DAY, DAY + timedelta(days=1), slots) == 8
        later = DAY + timedelta(days=1)
        tomorrow = [(t, p, s + timedelta(days=1), e + timedelta(days=1)) for t, p, s, e in slots]
        replace_native_slots(location.pk, later, later + timedelta(days=1), tomorrow)
        # Today's window again, now with two slots gone: tomorrow's rows are not touched.
        assert replace_native_slots(location.pk, DAY, later, slots[2:]) == 6
        assert NativeSlot.objects.filter(location=location).count() == 6 + 8


def test_two_refreshes_of_one_location_wait_for_each_other(transactional_db):
    """The first refresh is held open inside a transaction; the second, started meanwhile, must
    wait for it and then replace its rows (without the wait it would delete nothing it can see
    and then collide with the first one's rows on the unique constraint)."""
    practice, location, slots = _world()
    written, release = threading.Event(), threading.Event()

    def first() -> None:
        try:
            with tenant_context(practice), transaction.atomic():
                replace_native_slots(location.pk, DAY, DAY + timedelta(days=1), slots)
                written.set()
                assert release.wait(timeout=60)
        finally:
            connections.close_all()

    def second() -> int:
        try:
            with tenant_context(practice):
                return replace_native_slots(location.pk, DAY, DAY + timedelta(days=1), slots[:5])
        finally:
            connections.close_all()

    def waiting() -> int:
        with connection.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
            return int(cur.fetchone()[0])

    with ThreadPoolExecutor(max_workers=2) as pool:
        held = pool.submit(first)
        try:
            assert written.wait(timeout=30)
            later = pool.submit(second)
            deadline = datetime.now(UTC) + timedelta(seconds=30)
            while waiting() < 1:
                assert datetime.now(UTC) < deadline, "the second refresh never waited"
                assert not later.done(), later.result()
        finally:
            release.set()
        held.result(timeout=60)
        assert later.result(timeout=60) == 5
    with tenant_context(practice):
        assert NativeSlot.objects.filter(location=location).count() == 5
