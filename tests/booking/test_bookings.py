"""Bookings end to end: real PostgreSQL, the sandbox as its own process, real Celery workers
(subprocesses), a live portal receiving the sandbox's signed webhooks. No mocks, no fixed sleeps:
every wait is on a condition with a deadline."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as clock
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from django.utils import timezone

from booking import services as bookings
from core.tenancy import cross_tenant, tenant_context
from ehr_sandbox.testing import SandboxServer, wait_until
from scheduling.models import (
    AppointmentType,
    Booking,
    BookingStatus,
    Hold,
    HoldStatus,
    OutboxMessage,
)
from scheduling.services import SlotUnavailableError, place_hold, release_hold
from tests import workers
from tests.ehr.conftest import API_KEY, World, build_world
from tests.receptionist_api.factories import CALLER, api_client, token_for
from tests.scheduling.factories import BookingFactory
from tests.workers import ROOT, celery_worker

LA = ZoneInfo("America/Los_Angeles")
SANDBOX_ARGS = ["--insertion-delay-ms", "30", "--time-scale", "0.001"]
pytestmark = [pytest.mark.worker]


@dataclass
class Desk:
    """A practice connected to its own sandbox, webhooks to the live portal, a worker on a
    queue of its own, and the voice agent's bearer token."""

    world: World
    portal_url: str
    queue: str
    token: str
    day: date
    cleaning: AppointmentType
    worker: subprocess.Popen

    def hold(self, hour: int = 10, minute: int = 0) -> Hold:
        with tenant_context(self.world.practice):
            provider = self.cleaning.working_hours.get().provider
            operatory = self.cleaning.working_hours.get().operatory
            return place_hold(
                self.world.practice,
                appointment_type_id=self.cleaning.pk,
                provider_id=provider.pk,
                operatory_id=operatory.pk,
                start=datetime.combine(self.day, clock(hour, minute), LA),
            )

    def post(self, body: dict[str, Any], key: str | None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        if key is not None:
            headers["Idempotency-Key"] = key
        return httpx.post(
            f"{self.portal_url}/api/v1/bookings", json=body, headers=headers, timeout=30
        )

    def get(self, booking_id: int) -> dict[str, Any]:
        response = httpx.get(
            f"{self.portal_url}/api/v1/bookings/{booking_id}",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return response.json()

    def wait_status(self, booking_id: int, wanted: str, timeout: float = 40) -> dict[str, Any]:
        return wait_until(
            lambda: (body := self.get(booking_id))["status"] == wanted and body,
            timeout=timeout,
            interval=0.1,
            message=f"booking {booking_id} to be {wanted}",
        )

    def ehr_appointments(self) -> list[dict[str, Any]]:
        return self.world.ok(
            "GET",
            "/appointments",
            location_id=self.world.lid,
            start=datetime.combine(self.day, clock(0), LA).isoformat(),
            end=datetime.combine(self.day + timedelta(days=1), clock(0), LA).isoformat(),
        )


def booking_body(hold: Hold, **patient: Any) -> dict[str, Any]:
    return {
        "hold_id": hold.pk,
        "patient": {**CALLER, **patient},
        "reason": "cleaning, a bit of bleeding when brushing",
        "call_id": "call-1",
    }


def _weekday_ahead(days: int) -> date:
    day = timezone.now().astimezone(LA).date() + timedelta(days=days)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


@contextmanager
def desk(live_server, settings, **worker: Any) -> Iterator[Desk]:
    queue = f"test-{uuid.uuid4().hex[:8]}"
    env = {"BOOKINGS_QUEUE": queue, "BOOKING_POLL_SECONDS": "1", **worker.pop("env", {})}
    with (
        SandboxServer(api_keys=[API_KEY], extra_args=SANDBOX_ARGS) as ehr,
        celery_worker(queues=queue, extra_env=env, **worker) as (proc, _),
    ):
        settings.INTEGRATIONS_QUEUES = {"bookings": queue, "sync": queue}
        world = build_world(ehr, public_url=live_server.url, register_webhooks=True)
        day = _weekday_ahead(6)
        world.working_hours([day.strftime("%A")])
        cleaning = world.bookable_type()
        client, _ = api_client(world.practice)
        raw, _ = token_for(client)
        try:
            yield Desk(world, live_server.url, queue, raw, day, cleaning, proc)
        finally:
            world.api.close()


def booking_row(d: Desk, booking_id: int) -> Booking:
    with tenant_context(d.world.practice):
        return Booking.objects.select_related("hold", "patient").get(pk=booking_id)


# --- (b) end to end ----------------------------------------------------------------------------


def test_a_booking_ends_confirmed_in_the_ehr_with_the_mapped_type(
    transactional_db, live_server, settings
):
    with desk(live_server, settings) as d:
        hold = d.hold()
        accepted = d.post(booking_body(hold), "e2e-1")
        assert accepted.status_code == 202
        assert accepted.json() == {
            "id": accepted.json()["id"],
            "status": "pending",
            "booking_mode": "book",
        }
        booking_id = accepted.json()["id"]
        body = d.wait_status(booking_id, "confirmed")
        assert body["start"] == datetime.combine(d.day, clock(10), LA).isoformat()
        assert body["appointment_type_id"] == d.cleaning.pk and body["failure_reason"] == ""
        [appt] = d.ehr_appointments()
        assert appt["id"] == body["ehr_appointment_id"]
        assert appt["appointment_type_id"] == d.world.type_id
        assert appt["insertion_status"] == "complete"
        assert d.world.descriptor_id in appt.get("emr_appt_descriptor_ids", [])
        row = booking_row(d, booking_id)
        assert row.patient is not None and row.patient.needs_review  # created by us
        assert row.patient.ehr_id == appt["patient_id"]
        assert row.reason.startswith("cleaning") and row.demographics["last_name"] == "Lopez"
        assert row.hold.status == HoldStatus.BOOKED and row.confirmed_at is not None
        with cross_tenant("test: the reason is stored encrypted"):
            raw = Booking.objects.filter(pk=booking_id).values_list("reason", flat=True)[0]
        assert b"bleeding" not in bytes(raw)


def test_a_cancellation_in_the_ehr_cancels_the_booking(transactional_db, live_server, settings):
    with desk(live_server, settings) as d:
        booking_id = d.post(booking_body(d.hold()), "ehr-cancel").json()["id"]
        body = d.wait_status(booking_id, "confirmed")
        d.world.admin(
            "PATCH",
            f"/_admin/ehr/appointments/{body['ehr_appointment_id']}",
            {"appt": {"cancelled": True}},
        )
        d.wait_status(booking_id, "cancelled")
        assert booking_row(d, booking_id).hold.status == HoldStatus.RELEASED


# --- (c) the slot taken in the EHR meanwhile ----------------------------------------------------


def test_a_slot_taken_in_the_ehr_fails_with_a_reason_and_waits_for_staff(
    transactional_db, live_server, settings
):
    with desk(live_server, settings) as d:
        hold = d.hold()
        d.world.staff_appointment(datetime.combine(d.day, clock(10), LA))
        booking_id = d.post(booking_body(hold), "taken-1").json()["id"]
        body = d.wait_status(booking_id, "failed")
        assert "taken in the EHR" in body["failure_reason"]
        assert body["ehr_appointment_id"] is None
        with tenant_context(d.world.practice):
            queue = list(bookings.needs_attention(d.world.practice))
            assert [b.pk for b in queue] == [booking_id]
            assert Hold.objects.get(pk=hold.pk).status == HoldStatus.RELEASED
            bookings.resolve_booking(queue[0], "rebooked by phone for Friday", None)
            assert list(bookings.needs_attention(d.world.practice)) == []
        assert len(d.ehr_appointments()) == 1  # only the staff's


# --- (d) the broker down when the booking is accepted -------------------------------------------

_ACCEPT_WITH_BROKER_DOWN = """
import django, json, sys
django.setup()
from accounts.models import Practice
from core.tenancy import tenant_context
from booking import services as bookings
practice_id, body = int(sys.argv[1]), json.loads(sys.argv[2])
practice = Practice.objects.get(pk=practice_id)
with tenant_context(practice):
    booking, created = bookings.create_booking(practice, idempotency_key="down-1", body=body)
print(booking.pk)
"""


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_booking_accepted_while_the_broker_is_down_is_confirmed_after_the_relay(
    transactional_db, live_server, settings
):
    with desk(live_server, settings) as d:
        hold = d.hold()
        port = _closed_port()
        env = {
            **os.environ,
            "DATABASE_URL": workers.test_database_url(),
            "PORTAL_TESTING": "1",
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "CELERY_BROKER_URL": f"redis://127.0.0.1:{port}/0",
            "CELERY_RESULT_BACKEND": f"redis://127.0.0.1:{port}/0",
            "BOOKINGS_QUEUE": d.queue,
        }
        import json

        done = subprocess.run(
            [
                sys.executable,
                "-c",
                _ACCEPT_WITH_BROKER_DOWN,
                str(d.world.practice.pk),
                json.dumps(booking_body(hold)),
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode()[-3000:]
        booking_id = int(done.stdout.decode().split()[-1])
        with tenant_context(d.world.practice):
            [message] = OutboxMessage.objects.filter(booking_id=booking_id)
            assert message.dispatched_at is None and message.attempts == 1
            assert Booking.objects.get(pk=booking_id).status == BookingStatus.PENDING
        # The broker is back (this process's URL): the relay run by beat hands it over.
        assert bookings.relay_outbox() == 1
        assert bookings.relay_outbox() == 0
        d.wait_status(booking_id, "confirmed")
        assert len(d.ehr_appointments()) == 1


# --- (d2) the task message lost after the relay sent it ---------------------------------------


def _purge_queue(name: str) -> None:
    from portal.celery import app

    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge(name)


def test_a_booking_whose_sent_message_was_lost_is_requeued_and_confirmed_once(
    transactional_db, live_server, settings
):
    with desk(live_server, settings) as d:
        hold = d.hold()
        # The message goes to a queue no worker reads, then that queue is dropped, as a broker
        # restart without persistence would drop it.
        lost = f"lost-{uuid.uuid4().hex[:8]}"
        settings.INTEGRATIONS_QUEUES = {"bookings": lost, "sync": lost}
        booking_id = d.post(booking_body(hold), "lost-1").json()["id"]
        with tenant_context(d.world.practice):
            wait_until(
                lambda: OutboxMessage.objects.filter(
                    booking_id=booking_id, dispatched_at__isnull=False
                ).exists(),
                timeout=20,
                message="the outbox row to be sent",
            )
        _purge_queue(lost)
        settings.INTEGRATIONS_QUEUES = {"bookings": d.queue, "sync": d.queue}
        assert bookings.relay_outbox() == 0  # the relay thinks it was delivered
        assert booking_row(d, booking_id).status == BookingStatus.PENDING

        # Not yet stale: the sweep leaves it alone.
        assert bookings.requeue_stale_pending() == 0
        assert bookings.requeue_stale_pending(older_than=timedelta(0)) == 1
        d.wait_status(booking_id, "confirmed")
        # A second sweep finds nothing pending, and the EHR holds one appointment.
        assert bookings.requeue_stale_pending(older_than=timedelta(0)) == 0
        assert len(d.ehr_appointments()) == 1


# --- (e) the worker killed in the middle of the booking task ------------------------------------


def test_a_worker_killed_mid_task_still_ends_confirmed_once(
    transactional_db, live_server, settings
):
    short = {"CELERY_VISIBILITY_TIMEOUT": "2", "CELERY_UNACKED_RESTORE_THROTTLE": "1"}
    with desk(live_server, settings, pool="solo", env=short) as d:
        d.world.admin(
            "PATCH",
            "/_admin/faults",
            {"latency_ms": 4000, "only_endpoints": ["POST /appointments"]},
        )
        booking_id = d.post(booking_body(d.hold()), "killed-1").json()["id"]
        wait_until(
            lambda: booking_row(d, booking_id).attempts >= 1 and booking_row(d, booking_id).patient,
            timeout=30,
            message="the task to be in flight (patient found, posting)",
        )
        d.worker.kill()  # SIGKILL: no ack, no clean-up; PostgreSQL drops its session lock
        d.worker.wait(timeout=10)
        d.world.admin("DELETE", "/_admin/faults")
        with celery_worker(
            queues=d.queue, extra_env={"BOOKINGS_QUEUE": d.queue, **short}, pool="solo"
        ):
            d.wait_status(booking_id, "confirmed", timeout=60)
        live = [a for a in d.ehr_appointments() if not a["cancelled"]]
        assert len(live) == 1
        assert booking_row(d, booking_id).ehr_appointment_id == live[0]["id"]


# --- (f) the front desk's queue: retry and resolve ----------------------------------------------


def test_resolving_a_failed_booking_records_who_and_how_and_takes_it_off_the_queue(
    db, practice, manager
):
    soon = timezone.now()
    failed = BookingFactory(
        practice=practice,
        status="failed",
        failure_reason="The slot was taken in the EHR before we could book it.",
        created_at=soon - timedelta(minutes=5),
    )
    other = BookingFactory(
        practice=practice, status="failed", failure_reason="Not mapped to the EHR: provider."
    )
    pending = BookingFactory(practice=practice)
    with tenant_context(practice):
        assert [b.pk for b in bookings.needs_attention(practice)] == [failed.pk, other.pk]
        bookings.resolve_booking(failed, "Rebooked by phone for Friday 9:00", manager)
        row = Booking.objects.get(pk=failed.pk)
        assert row.resolved_by == manager and row.resolved_at is not None
        assert row.resolution_note == "Rebooked by phone for Friday 9:00"
        assert row.status == BookingStatus.FAILED  # what happened is kept; it is just handled
        assert [b.pk for b in bookings.needs_attention(practice)] == [other.pk]

        # A booking still in flight cannot be resolved: it would never reach the queue.
        bookings.resolve_booking(pending, "nothing to do", manager)
        assert Booking.objects.get(pk=pending.pk).resolved_at is None

        # Retried after being resolved and failing again: back in the queue, not hidden.
        bookings.retry_booking(row)
        again = Booking.objects.get(pk=failed.pk)
        assert again.status == BookingStatus.PENDING and again.resolved_at is None
        assert again.resolution_note == "" and again.failure_reason == ""
        assert OutboxMessage.objects.filter(booking=again, dispatched_at__isnull=True).count() == 1
        bookings.mark_failed(again.pk, "The EHR refused the booking: closed.")
        assert {b.pk for b in bookings.needs_attention(practice)} == {failed.pk, other.pk}


def test_retrying_a_failed_booking_books_it_once_the_cause_is_gone(
    transactional_db, live_server, settings
):
    with desk(live_server, settings) as d:
        hold = d.hold()
        staff = d.world.staff_appointment(datetime.combine(d.day, clock(10), LA))
        booking_id = d.post(booking_body(hold), "retry-1").json()["id"]
        assert "taken in the EHR" in d.wait_status(booking_id, "failed")["failure_reason"]
        with tenant_context(d.world.practice):
            assert bookings.retry_booking(booking_row(d, booking_id)).status == "pending"
        # The cause is still there: it fails again, with the same reason, and stays queued.
        assert "taken in the EHR" in d.wait_status(booking_id, "failed")["failure_reason"]

        # Staff move the other patient; meanwhile another caller holds the freed slot, so a
        # retry now is refused rather than double-booking it.
        d.world.admin(
            "PATCH", f"/_admin/ehr/appointments/{staff['id']}", {"appt": {"cancelled": True}}
        )
        rival = wait_until(
            lambda: _try_hold(d), timeout=30, message="the freed slot to be offered again"
        )
        with tenant_context(d.world.practice), pytest.raises(bookings.SlotTakenError):
            bookings.retry_booking(booking_row(d, booking_id))
        assert d.get(booking_id)["status"] == "failed"

        # The rival lets it go: the retry claims the slot, books it and ends confirmed, once.
        with tenant_context(d.world.practice):
            release_hold(d.world.practice, rival.pk)
            bookings.retry_booking(booking_row(d, booking_id))
        body = d.wait_status(booking_id, "confirmed")
        assert body["failure_reason"] == ""
        live = [a for a in d.ehr_appointments() if not a["cancelled"]]
        assert [a["id"] for a in live] == [body["ehr_appointment_id"]]
        row = booking_row(d, booking_id)
        assert row.hold.status == HoldStatus.BOOKED and row.attempts == 3
        with tenant_context(d.world.practice):
            assert list(bookings.needs_attention(d.world.practice)) == []
            # Retrying a booking that is not failed does nothing.
            assert bookings.retry_booking(row).status == BookingStatus.CONFIRMED
            assert OutboxMessage.objects.filter(booking_id=booking_id).count() == 3


def _try_hold(d: Desk) -> Hold | None:
    try:
        return d.hold()
    except SlotUnavailableError:
        return None


# --- (g) queued behind the EHR's rate limit -----------------------------------------------------


def test_a_booking_queued_behind_the_rate_limit_is_not_failed_as_faulty(
    transactional_db, live_server, settings
):
    """A surge above the practice's EHR rate re-queues booking tasks (the limiter will not
    send more). Waiting in line is not a fault: even with no fault retries allowed at all, the
    booking is deferred as often as it takes and ends confirmed."""
    with desk(live_server, settings, env={"BOOKING_MAX_RETRIES": "0"}) as d:
        with tenant_context(d.world.practice):
            # Two patient/appointment calls per 12 s: a run makes two calls, then would have to
            # wait longer than a worker may (EHR_RATE_LIMIT_MAX_WAIT_SECONDS): it is re-queued.
            d.world.conn.rate_limits = {"patients_appointments": {"limit": 2, "window_seconds": 12}}
            d.world.conn.save(update_fields=["rate_limits"])
        booking_id = d.post(booking_body(d.hold()), "throttled-1").json()["id"]
        body = d.wait_status(booking_id, "confirmed", timeout=90)
        assert body["failure_reason"] == ""
        assert booking_row(d, booking_id).attempts >= 2  # it was deferred, then ran again
        assert [a["id"] for a in d.ehr_appointments()] == [body["ehr_appointment_id"]]
        stats = d.world.admin("GET", "/_admin/stats")
        assert stats["rate_limited_total"] == 0  # our limiter held them back, not the EHR
