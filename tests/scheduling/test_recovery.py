"""Recovery without waiting for a sweep: the outbox is the truth about accepted bookings.

A real worker (its own process) is killed in the middle of a burst and the broker's queue is
dropped, as an embedded Redis that keeps nothing on disk drops it; a new worker and the outbox
relay (driven here at a short period, as beat drives it) confirm every accepted booking once.
"""

from __future__ import annotations

from datetime import datetime

import pytest
import redis

from integrations import services as integration_services
from integrations.sandbox.testing import wait_until
from portal.tenancy import tenant_context
from scheduling import bookings
from scheduling.models import Booking, BookingStatus
from tests.scheduling.test_bookings import (
    LA,
    _purge_queue,
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
