"""Bookings while the EHR hangs: the booking worker as deployed (its pool and concurrency from
the settings) keeps confirming other callers' bookings while some EHR calls are stuck, and the
voice agent is told honestly why a booking is still pending."""

from __future__ import annotations

from typing import Any

import pytest

from ehr_sandbox.testing import wait_until
from tests.booking.test_bookings import Desk, booking_body, desk

pytestmark = [pytest.mark.worker]

STALLED = 2  # more stuck calls than the old two-slot prefork worker could carry


@pytest.fixture(autouse=True)
def fast_secret_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def booking_worker(settings, **env: str) -> dict[str, Any]:
    return {
        "pool": settings.BOOKING_WORKER_POOL,
        "concurrency": settings.BOOKING_WORKER_CONCURRENCY,
        "env": env,
    }


def post_booking(d: Desk, hour: int, minute: int, n: int) -> int:
    hold = d.hold(hour, minute)
    body = booking_body(
        hold, first_name="Caller", last_name=f"Stall{n:02d}", date_of_birth=f"19{60 + n}-03-04"
    )
    response = d.post(body, f"stall-{n}")
    assert response.status_code == 202, response.text
    return int(response.json()["id"])


def stats(d: Desk) -> dict[str, Any]:
    return d.world.admin("GET", "/_admin/stats")


def test_bookings_confirm_while_ehr_calls_hang(transactional_db, live_server, settings):
    # The stuck calls must stay stuck from the worker's side too: its time-outs exceed the stall.
    worker = booking_worker(settings, EHR_READ_TIMEOUT_SECONDS="60", EHR_WRITE_TIMEOUT_SECONDS="60")
    with desk(live_server, settings, **worker) as d:
        d.world.admin(
            "PATCH",
            "/_admin/faults",
            {"stall_count": STALLED, "stall_seconds": 30, "only_endpoints": ["GET /patients"]},
        )
        stuck = [post_booking(d, 9, 0, 0), post_booking(d, 9, 30, 1)]
        wait_until(
            lambda: stats(d).get("faults_injected", {}).get("stall", 0) == STALLED,
            timeout=30,
            message="both first bookings' patient searches to hang in the EHR",
        )
        others = [post_booking(d, 10 + i // 2, 30 * (i % 2), 2 + i) for i in range(4)]
        confirmed = [d.wait_status(b, "confirmed", timeout=25) for b in others]
        assert all(body["pending_reason"] is None for body in confirmed)

        # Still stuck while the others were confirmed, and saying so.
        assert stats(d).get("faults_injected", {}).get("stall_released", 0) == 0
        for booking_id in stuck:
            body = d.get(booking_id)
            assert body["status"] == "pending"
            assert body["pending_reason"] == "sending"
            assert body["pending_message"]

        for booking_id in stuck:
            d.wait_status(booking_id, "confirmed", timeout=60)
        assert stats(d)["duplicates_detected"] == {"appointments": 0, "patients": 0}
        assert len(d.ehr_appointments()) == len(stuck) + len(others)


def test_a_slow_ehr_is_reported_while_the_booking_waits(transactional_db, live_server, settings):
    worker = booking_worker(settings, EHR_READ_TIMEOUT_SECONDS="0.5")
    with desk(live_server, settings, **worker) as d:
        # Every patient search hangs past the read time-out and is abandoned (nothing done).
        d.world.admin(
            "PATCH",
            "/_admin/faults",
            {
                "timeout_share": 1.0,
                "timeout_seconds": 1.0,
                "timeout_mode": "before",
                "only_endpoints": ["GET /patients"],
            },
        )
        booking_id = post_booking(d, 9, 0, 0)
        body = wait_until(
            lambda: (b := d.get(booking_id))["pending_reason"] == "ehr_slow" and b,
            timeout=30,
            interval=0.1,
            message="the booking to say the EHR is slow",
        )
        assert body["status"] == "pending"
        assert "slow" in body["pending_message"]

        d.world.admin("DELETE", "/_admin/faults")
        d.wait_status(booking_id, "confirmed", timeout=90)
