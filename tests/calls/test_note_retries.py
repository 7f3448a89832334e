"""The encounter note under the EHR's passing trouble: a rejected insertion, 5xx answers,
timeouts and 429s are retried with backoff before the note waits in the staff queue; a permanent
4xx goes there at once. Faults are switched on in the sandbox (its own process), never patched
in; the retries run in a real worker."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from calls import services, tasks
from calls.models import NoteStatus
from core.outcome import Outcome
from core.tenancy import tenant_context
from ehr_sandbox.testing import wait_until
from tests.calls.factories import TURNS, desk_for
from tests.calls.test_notes import DOCS, booked_call, documents, note_row
from tests.ehr import conftest as integration
from tests.ehr.conftest import World, build_world
from tests.workers import celery_worker

ehr_server = integration.ehr_server
ehr = integration.ehr
world = integration.world
_fresh_process_state = integration._fresh_process_state


def _never_failed(w: World, call, done: Callable[[], bool], message: str, timeout: float = 120):
    """Wait for `done`, failing at once if the note lands in the staff queue meanwhile."""

    def check() -> bool:
        row = note_row(w, call)
        assert row.status != NoteStatus.FAILED, f"failed meanwhile: {row.failure_reason}"
        return done()

    wait_until(check, timeout=timeout, interval=0.2, message=message)


def _stats(w: World) -> dict:
    return w.admin("GET", "/_admin/stats")


@pytest.fixture
def worked(transactional_db, ehr, settings):
    """A world whose note tasks run in a real worker on a queue of its own."""
    queue = f"test-{uuid.uuid4().hex[:8]}"
    settings.INTEGRATIONS_QUEUES = {"bookings": queue, "sync": queue}
    w = build_world(ehr)
    env = {
        "BOOKINGS_QUEUE": queue,
        "ENCOUNTER_NOTE_POLL_SECONDS": "0.2",
        "ENCOUNTER_NOTE_MAX_REJECTIONS": "5",
    }
    try:
        with celery_worker(queues=queue, extra_env=env):
            yield w, queue
    finally:
        w.api.close()


@pytest.mark.worker
def test_a_document_the_ehr_rejected_is_posted_again_and_written_not_failed(worked):
    w, queue = worked
    call, _, patient_id = booked_call(w)
    w.admin("PATCH", "/_admin/faults", {"document_failure_share": 1.0})
    tasks.write_encounter_note.apply_async(args=(call.pk, w.practice.pk), queue=queue)
    _never_failed(
        w,
        call,
        lambda: _stats(w).get("documents", {}).get("insertion_failed", 0) >= 1,
        "the EHR to reject the first insertion",
    )
    w.admin("DELETE", "/_admin/faults")
    _never_failed(
        w, call, lambda: note_row(w, call).status == NoteStatus.WRITTEN, "the note written"
    )
    row = note_row(w, call)
    assert row.failure_reason == "" and row.rejections >= 1
    docs = documents(w, patient_id)
    complete = [d for d in docs if d["insertion_status"] == "complete"]
    assert len(complete) == 1 and row.ehr_document_id == complete[0]["id"]
    assert len(docs) == row.rejections + 1  # each rejected one, then the one written


@pytest.mark.worker
def test_5xx_timeouts_and_429s_are_retried_with_backoff_before_the_staff_queue(worked):
    w, queue = worked
    call, _, patient_id = booked_call(w)
    # 503s on every documents call: the client's own attempts run out, the task re-queues.
    w.admin(
        "PATCH",
        "/_admin/faults",
        {"error_share": 1.0, "error_status": 503, "only_endpoints": DOCS},
    )
    tasks.write_encounter_note.apply_async(args=(call.pk, w.practice.pk), queue=queue)
    _never_failed(
        w,
        call,
        lambda: note_row(w, call).attempts >= 2,
        "a second run after the first one's 5xx",
    )
    # Then timeouts before any work is done.
    w.admin(
        "PATCH",
        "/_admin/faults",
        {"error_share": 0.0, "timeout_share": 1.0, "timeout_seconds": 0.2},
    )
    runs = note_row(w, call).attempts
    _never_failed(w, call, lambda: note_row(w, call).attempts > runs, "a run after the timeouts")
    # Then the EHR's rate limit, far below ours: 429s with a Retry-After.
    w.admin(
        "PUT",
        "/_admin/rate_limits",
        {"limits": {"patients_appointments": {"limit": 1, "window_seconds": 8}}},
    )
    w.admin("DELETE", "/_admin/faults")
    _never_failed(w, call, lambda: _stats(w)["rate_limited_total"] >= 1, "the EHR to answer 429")
    w.admin("DELETE", "/_admin/rate_limits")
    _never_failed(
        w, call, lambda: note_row(w, call).status == NoteStatus.WRITTEN, "the note written"
    )
    row = note_row(w, call)
    assert row.failure_reason == "" and row.attempts >= 3
    assert [d["insertion_status"] for d in documents(w, patient_id)] == ["complete"]
    faults = _stats(w)["faults_injected"]
    assert faults.get("error_5xx", 0) >= 1 and faults.get("timeout", 0) >= 1


def test_a_permanent_4xx_sends_the_note_to_the_staff_queue_at_once(world):
    desk = desk_for(world.practice, world.location)
    # The EHR does not know this patient: 404, which no retry can mend.
    booking = desk.booking(patient=desk.patient(ehr_id=987654321))
    call = desk.call(turns=TURNS, booking=booking)
    with tenant_context(world.practice):
        services.ensure_note(call)
    assert tasks.write_encounter_note.apply(args=(call.pk, world.practice.pk)).get() == "failed"
    row = note_row(world, call)
    assert row.status == NoteStatus.FAILED and row.attempts == 1
    assert "The EHR refused the note" in row.failure_reason


def test_a_note_rejected_every_time_waits_for_staff_after_its_reposts(world, settings):
    settings.ENCOUNTER_NOTE_MAX_REJECTIONS = 1
    call, _, patient_id = booked_call(world)
    world.admin("PATCH", "/_admin/faults", {"document_failure_share": 1.0})

    def settled(wanted: str) -> Callable[[], bool]:
        return lambda: services.poll_note(call.pk, world.practice.pk) == wanted

    assert services.write_note(call.pk, world.practice.pk) == "sent"
    wait_until(settled(Outcome.REJECTED), timeout=30, interval=0.05, message="a rejection")
    assert note_row(world, call).status == NoteStatus.PENDING  # posted again, not failed
    assert services.write_note(call.pk, world.practice.pk) == "sent"
    wait_until(settled("failed"), timeout=30, interval=0.05, message="the second rejection")
    row = note_row(world, call)
    assert row.rejections == 1 and "rejected the note" in row.failure_reason
    assert "(2 times)" in row.failure_reason
    assert [d["insertion_status"] for d in documents(world, patient_id)] == ["failed", "failed"]
