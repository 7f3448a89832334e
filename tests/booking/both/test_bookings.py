"""Bookings through the voice agent's API and a real worker, the same for either EHR: one
Idempotency-Key makes one booking and one EHR appointment; a caller is found before being
created; a booking is confirmed only once the EHR says so; a cancellation frees the slot."""

from __future__ import annotations

import threading

import httpx
import pytest

from core.tenancy import tenant_context
from ehr_sandbox.testing import wait_until
from scheduling.models import Booking, Hold, HoldStatus, OutboxMessage, Patient

from .conftest import World

pytestmark = [pytest.mark.worker]


def test_twenty_concurrent_posts_with_one_key_make_one_booking_and_one_appointment(
    world: World,
) -> None:
    hold_id = world.held(10)
    answers: list[httpx.Response] = []
    lock = threading.Lock()
    start = threading.Barrier(20)

    def post() -> None:
        start.wait()
        response = world.agent.book(hold_id, "key-1")
        with lock:
            answers.append(response)

    with world.worker():
        threads = [threading.Thread(target=post) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert [r.status_code for r in answers] == [202] * 20, [r.text for r in answers]
        ids = {r.json()["id"] for r in answers}
        assert len(ids) == 1
        [booking_id] = ids
        with tenant_context(world.practice):
            assert Booking.objects.count() == 1
            assert OutboxMessage.objects.count() == 1

        # Same key, different body: 422; no key: 400; the same body again: the same booking.
        other = world.agent.book(hold_id, "key-1", first_name="Someone")
        assert other.status_code == 422 and other.json()["type"] == "idempotency_conflict"
        missing = world.agent.call("POST", "/bookings", json={"hold_id": hold_id})
        assert missing.status_code == 400 and missing.json()["type"] == "validation_error"
        again = world.agent.book(hold_id, "key-1")
        assert again.status_code == 202 and again.json()["id"] == booking_id
        # Another key for the booked hold: the slot is taken.
        taken = world.agent.book(hold_id, "key-2")
        assert taken.status_code == 409 and taken.json()["type"] == "slot_unavailable"

        confirmed = world.agent.wait_status(booking_id, "confirmed")
    [appt] = world.live_appointments()
    assert confirmed["ehr_appointment_id"] == appt.id and appt.written
    assert appt.start == world.at(10) and appt.provider_id == world.patel.ehr_id


DIAZ = {
    "first_name": "Bo",
    "last_name": "Diaz",
    "date_of_birth": "1970-06-01",
    "phone": "+12135550177",
    "email": "bo.diaz@example.com",
}


def test_a_caller_is_found_before_being_created_and_a_new_one_created_once(world: World) -> None:
    world.ehr.staff_add_patient(**DIAZ)  # a patient of the practice already
    before = len(world.ehr.patients())
    with world.worker(concurrency=2):
        # The new caller books twice at once: neither run finds them, only one may create them.
        ids = [world.book(9, 0, "twice-1"), world.book(11, 0, "twice-2")]
        ids.append(world.book(10, 0, "known-1", **DIAZ))
        bodies = [world.agent.wait_status(b, "confirmed") for b in ids]
    people = [(p.first_name.lower(), p.last_name.lower()) for p in world.ehr.patients()]
    assert people.count(("ana", "lopez")) == 1 and people.count(("bo", "diaz")) == 1
    assert len(people) == before + 1
    lopez, lopez_again, diaz = (world.row(b).patient for b in ids)
    assert lopez is not None and diaz is not None
    assert lopez.pk == lopez_again.pk and lopez.needs_review  # created by us, once
    assert not diaz.needs_review  # found
    live = {a.id: a for a in world.live_appointments()}
    assert [live[b["ehr_appointment_id"]].patient_id for b in bodies] == [
        lopez.ehr_id,
        lopez.ehr_id,
        diaz.ehr_id,
    ]
    with tenant_context(world.practice):
        assert Patient.objects.count() == 2


def test_a_booking_is_pending_until_the_ehr_has_written_it(world: World) -> None:
    # The appointment write hangs in the EHR (then is answered normally).
    world.ehr.faults(stall_count=1, stall_seconds=3, only_endpoints=[world.ehr.write_endpoint])
    with world.worker():
        booking_id = world.book(10, 0, "stalled-1")
        wait_until(
            lambda: world.ehr.stats()["faults"].get("stall", 0) == 1,
            timeout=60,
            message="the appointment write to hang in the EHR",
        )
        body = world.agent.booking(booking_id)
        assert body["status"] == "pending" and body["ehr_appointment_id"] is None
        assert [a for a in world.ehr.appointments() if a.written] == []
        body = world.agent.wait_status(booking_id, "confirmed")
    [appt] = world.live_appointments()
    assert appt.written and appt.id == body["ehr_appointment_id"]
    assert world.row(booking_id).confirmed_at is not None


def test_a_booking_the_ehr_turns_down_fails_with_a_reason_and_frees_its_hold(
    world: World,
) -> None:
    """NexHealth accepts the write, then reports the insertion failed; Nextech answers 409
    (staff took the time while our write was on its way). Neither is ever confirmed."""
    if world.kind == "nexhealth":
        world.ehr.faults(insertion_failure_share=1.0)
    else:
        world.ehr.faults(stall_count=1, stall_seconds=2, only_endpoints=[world.ehr.write_endpoint])
    with world.worker():
        booking_id = world.book(10, 0, "refused-1")
        if world.kind == "nextech":
            wait_until(
                lambda: world.ehr.stats()["faults"].get("stall", 0) == 1,
                timeout=60,
                message="the appointment write to be on its way",
            )
            world.ehr.staff_book(world.patel.ehr_id, world.at(10), 30)
        body = world.agent.wait_status(booking_id, "failed")
    assert body["failure_reason"].strip()
    row = world.row(booking_id)
    assert row.confirmed_at is None and row.hold.status == HoldStatus.RELEASED
    ours = [a for a in world.ehr.appointments() if a.id == body["ehr_appointment_id"]]
    assert all(not a.written or a.cancelled for a in ours)


def test_a_cancellation_frees_the_slot(world: World) -> None:
    start = world.at(10)
    with world.worker():
        booking_id = world.book(10, 0, "cancel-1")
        body = world.agent.wait_status(booking_id, "confirmed")
        assert not world.offered(start)
        cancelled = world.agent.call("POST", f"/bookings/{booking_id}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        # NexHealth cancels at once; Nextech's cancel is a request its staff act on, which
        # its change poll then sees.
        assert cancelled.json()["status"] in ("cancelled", "cancel_requested")

        def freed() -> bool:
            world.ehr.staff_work_cancel_requests()
            world.ehr.see_changes()
            return world.offered(start)

        wait_until(freed, timeout=60, interval=0.5, message="the slot to be offered again")
        assert world.agent.booking(booking_id)["status"] == "cancelled"
        assert world.row(booking_id).hold.status == HoldStatus.RELEASED
        # Another caller books it.
        again = world.book(10, 0, "cancel-2", **DIAZ)
        rebooked = world.agent.wait_status(again, "confirmed")
    appts = {a.id: a for a in world.ehr.appointments()}
    assert appts[body["ehr_appointment_id"]].cancelled
    assert [a.id for a in world.live_appointments()] == [rebooked["ehr_appointment_id"]]


def test_a_new_caller_without_an_email_is_asked_for_one_where_the_ehr_needs_it(
    world: World,
) -> None:
    """Nextech creates a caller it does not know only with an email: the booking says so at
    once, while the caller is on the line, and the hold stays theirs to book with it. NexHealth
    needs none."""
    hold_id = world.held(10)
    caller = {"first_name": "Cy", "last_name": "Noemail", "date_of_birth": "1979-02-03"}
    body = {"hold_id": hold_id, "patient": {**caller, "phone": "+12135550177"}, "reason": ""}
    answer = world.agent.call("POST", "/bookings", json=body, headers={"Idempotency-Key": "k1"})
    if world.kind == "nextech":
        assert answer.status_code == 400, answer.text
        problem = answer.json()
        assert problem["type"] == "validation_error"
        assert list(problem["errors"]) == ["patient.email"], problem
        with tenant_context(world.practice):
            assert not Booking.objects.exists()
            assert Hold.objects.get(pk=hold_id).status == HoldStatus.ACTIVE
        body["patient"]["email"] = "cy@example.com"
        answer = world.agent.call("POST", "/bookings", json=body, headers={"Idempotency-Key": "k2"})
    assert answer.status_code == 202, answer.text
