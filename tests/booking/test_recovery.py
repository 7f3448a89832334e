"""Recovery without waiting for a sweep: the outbox is the truth about accepted bookings.

A real worker (its own process) is killed in the middle of a burst and the broker's queue is
dropped, as an embedded Redis that keeps nothing on disk drops it; a new worker and the outbox
relay (driven here at a short period, as beat drives it) confirm every accepted booking once.
"""

from __future__ import annotations

import time
from datetime import datetime
from datetime import time as clock

import httpx
import pytest
import redis
from django.utils import timezone

from booking import services as bookings
from core.tenancy import tenant_context
from ehr import services as integration_services
from ehr import tasks as integration_tasks
from ehr_sandbox.testing import wait_until
from scheduling.models import Appointment, Booking, BookingStatus
from tests.booking.test_bookings import (
    LA,
    _purge_queue,
    _weekday_ahead,
    booking_body,
    desk,
    fast_secret_hashing,  # noqa: F401 (autouse fixture)
)
from tests.workers import celery_worker

pytestmark = [pytest.mark.worker]

NAMES = ["Ana", "Bo", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana"]


def _statuses(practice, ids: list[int]) -> list[Booking]:
    with tenant_context(practice):
        return list(Booking.objects.filter(pk__in=ids).order_by("pk"))


def _drop_everything_queued(queue: str) -> None:
    """What a Redis restarted without persistence loses: the queue and the unacked messages
    (the killed worker's own, and the countdown retries and polls it was holding)."""
    from django.conf import settings

    _purge_queue(queue)
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        broker.delete("unacked", "unacked_index", "unacked_mutex")
    finally:
        broker.close()


def test_bookings_of_a_killed_worker_whose_queue_was_lost_are_confirmed_once_by_the_relay(
    transactional_db, live_server, settings
):
    ack = {"BOOKING_OUTBOX_ACK_SECONDS": "3"}
    settings.BOOKING_OUTBOX_ACK_SECONDS = 3.0
    with desk(live_server, settings, pool="solo", env=ack) as d:
        # Eight half-hour slots (the desk's hours end at noon: one more hour).
        with tenant_context(d.world.practice):
            hours = d.cleaning.working_hours.get().ehr_id
        d.world.ok("PATCH", f"/working_hours/{hours}", {"working_hour": {"end_time": "13:00"}})
        integration_services.sync_connection(d.world.conn)
        # Slow posts, so the burst is still going when the worker dies.
        d.world.admin(
            "PATCH",
            "/_admin/faults",
            {"latency_ms": 1200, "only_endpoints": ["POST /appointments"]},
        )
        ids = []
        for i, name in enumerate(NAMES):
            hold = d.hold(9 + i // 2, 30 * (i % 2))
            response = d.post(booking_body(hold, first_name=name), f"burst-{i}")
            assert response.status_code == 202, response.text
            ids.append(response.json()["id"])

        def some_done_some_not() -> bool:
            rows = _statuses(d.world.practice, ids)
            done = [b for b in rows if b.ehr_appointment_id is not None]
            return len(done) >= 2 and len(done) <= len(rows) - 3

        wait_until(some_done_some_not, timeout=60, interval=0.1, message="the burst under way")
        d.worker.kill()  # SIGKILL mid-burst: no ack, no clean-up
        d.worker.wait(timeout=10)
        _drop_everything_queued(d.queue)
        d.world.admin("DELETE", "/_admin/faults")
        pending = [b.pk for b in _statuses(d.world.practice, ids) if b.status == "pending"]
        assert len(pending) >= 3, "the kill came too late to prove anything"

        with celery_worker(
            queues=d.queue, extra_env={"BOOKINGS_QUEUE": d.queue, **ack}, pool="solo"
        ):
            returned = datetime.now(LA)

            def all_confirmed() -> bool:
                bookings.relay_outbox()  # beat's job, at the test's short period
                rows = _statuses(d.world.practice, ids)
                return all(b.status == BookingStatus.CONFIRMED for b in rows)

            wait_until(all_confirmed, timeout=120, interval=1.0, message="every booking confirmed")
            took = (datetime.now(LA) - returned).total_seconds()
        assert took < 120
        print(f"all {len(ids)} confirmed {took:.1f} s after the worker's return")

        rows = _statuses(d.world.practice, ids)
        live = [a for a in d.ehr_appointments() if not a["cancelled"]]
        assert len(live) == len(ids)  # one appointment per booking, none twice
        assert sorted(a["id"] for a in live) == sorted(b.ehr_appointment_id for b in rows)
        assert {datetime.fromisoformat(a["start_time"]) for a in live} == {b.start for b in rows}
        stats = d.world.admin("GET", "/_admin/stats")
        assert stats["duplicates_detected"].get("appointments", 0) == 0
        assert stats["appointments"]["accepted"] == len(ids)


# --- a slot taken in the EHR while every webhook is dropped -------------------------------------


def _offered(d, start: datetime) -> bool:
    response = httpx.get(
        f"{d.portal_url}/api/v1/availability",
        params={
            "appointment_type_id": d.cleaning.pk,
            "start_date": d.day.isoformat(),
            "days": 1,
        },
        headers={"Authorization": f"Bearer {d.token}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return any(datetime.fromisoformat(s["start"]) == start for s in response.json()["slots"])


def _staff_book_in_ehr(d, start: datetime) -> int:
    someone = d.world.admin(
        "POST",
        "/_admin/ehr/patients",
        {"location_id": d.world.lid, "patient": {"first_name": "Bo", "last_name": "Diaz"}},
    )
    created = d.world.admin(
        "POST",
        "/_admin/ehr/appointments",
        {
            "location_id": d.world.lid,
            "appt": {
                "provider_id": d.world.provider_id,
                "operatory_id": d.world.operatory_id,
                "patient_id": someone["id"],
                "start_time": start.isoformat(),
                "minutes": 30,
            },
        },
    )
    return int(created["id"])


def test_a_slot_the_booking_task_found_taken_leaves_availability_at_once(
    transactional_db, live_server, settings
):
    with desk(live_server, settings) as d:
        d.world.admin("PATCH", "/_admin/faults", {"webhook_drop_share": 1.0})
        start = datetime.combine(d.day, clock(10), LA)
        taken = _staff_book_in_ehr(d, start)
        assert _offered(d, start)  # no webhook came: the mirror does not know
        booking_id = d.post(booking_body(d.hold(10)), "taken-live").json()["id"]
        body = d.wait_status(booking_id, "failed")
        assert "taken in the EHR" in body["failure_reason"]
        # No webhook, no reconcile: what the live check learnt is in the mirror already.
        assert not _offered(d, start)
        with tenant_context(d.world.practice):
            assert Appointment.objects.filter(ehr_id=taken, cancelled=False).exists()
        stats = d.world.admin("GET", "/_admin/stats")
        assert stats["webhooks"].get("dropped", 0) >= 1


def test_the_near_reconcile_drops_a_slot_booked_in_the_ehr_within_one_period(
    transactional_db, live_server, settings
):
    days_ahead = str((_weekday_ahead(6) - timezone.now().astimezone(LA).date()).days)
    with desk(live_server, settings, env={"EHR_NEAR_RECONCILE_DAYS": days_ahead}) as d:
        d.world.admin("PATCH", "/_admin/faults", {"webhook_drop_share": 1.0})
        start = datetime.combine(d.day, clock(10, 30), LA)
        assert _offered(d, start)
        _staff_book_in_ehr(d, start)
        assert _offered(d, start)  # the webhook was dropped
        beat = settings.CELERY_BEAT_SCHEDULE["integrations-reconcile-near"]
        assert beat["task"] == "integrations.reconcile_near_all"
        period = float(beat["schedule"])
        assert period <= 300  # every few minutes
        started = time.monotonic()
        # One beat tick (beat's own process would send it; here the test does), the worker
        # runs the connection's reconcile.
        assert integration_tasks.reconcile_near_all.apply().get() >= 1
        wait_until(
            lambda: not _offered(d, start),
            timeout=period,
            interval=0.2,
            message="the slot to leave availability",
        )
        took = time.monotonic() - started
        assert took < period
        print(f"the slot left availability {took:.1f} s after the reconcile's tick")
        # A period later nothing more to repair (and rate limits held: no 429 from the EHR).
        assert integration_tasks.reconcile_near_all.apply().get() >= 1
        stats = d.world.admin("GET", "/_admin/stats")
        assert stats["rate_limited_total"] == 0
