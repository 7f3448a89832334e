"""The encounter note against the real EHR sandbox (its own process): composed once, written
once to the patient's record even when the sandbox answers 5xx and times out after writing,
its state visible on the call, a rejected document failing with a reason. A real worker writing
it once under lost answers, for either EHR: tests/booking/both/test_notes.py. Faults are switched
on in the sandbox, never patched in.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from calls import services, tasks
from calls.models import Call, EncounterNote, NoteStatus
from compliance.gate import BAARequired
from core.tenancy import cross_tenant, tenant_context
from ehr.errors import EHRTransientError
from ehr_sandbox.testing import wait_until
from tests.calls.factories import TURNS, desk_for
from tests.ehr import conftest as integration
from tests.ehr.conftest import World
from tests.factories import PracticeFactory, sign_baa

# The sandbox fixtures of the integration tests (a session sandbox process, reset per test).
ehr_server = integration.ehr_server
ehr = integration.ehr
world = integration.world
_fresh_process_state = integration._fresh_process_state
eager_celery = integration.eager_celery

DOCS = ["POST /patients/{id}/documents", "GET /patients/{id}/documents"]


@pytest.fixture(autouse=True)
def quick_backoff(settings):
    settings.EHR_BACKOFF_BASE_SECONDS = 0.01
    settings.EHR_BACKOFF_CAP_SECONDS = 0.05


def ehr_patient(w: World) -> int:
    created = w.ok(
        "POST",
        "/patients",
        {
            "patient": {
                "first_name": "Ana",
                "last_name": "Lopez",
                "email": None,
                "bio": {"date_of_birth": "1985-04-12", "phone_number": "5555550101"},
            }
        },
        location_id=w.lid,
    )
    return int(created["user"]["id"])


def booked_call(w: World) -> tuple[Call, EncounterNote, int]:
    """A call with a transcript and a confirmed booking for a patient who is in the EHR; the
    note is created (pending) as the API would."""
    patient_ehr_id = ehr_patient(w)
    desk = desk_for(w.practice, w.location)
    patient = desk.patient(ehr_id=patient_ehr_id)
    booking = desk.booking(patient=patient)
    call = desk.call(turns=TURNS, booking=booking, outcome="booked")
    with tenant_context(w.practice):
        note = services.ensure_note(call)
    assert note is not None and note.status == NoteStatus.PENDING
    return call, note, patient_ehr_id


def documents(w: World, patient_ehr_id: int) -> list[dict[str, Any]]:
    return w.ok("GET", f"/patients/{patient_ehr_id}/documents")


def content_of(w: World, patient_ehr_id: int, doc_id: int) -> str:
    doc = w.ok("GET", f"/patients/{patient_ehr_id}/documents/{doc_id}")
    return base64.b64decode(doc["content_base64"]).decode()


def note_row(w: World, call: Call) -> EncounterNote:
    with tenant_context(w.practice):
        return EncounterNote.objects.get(call_id=call.pk)


def write_until_done(w: World, call: Call, timeout: float = 90) -> str:
    """Run the task body as the worker would, retrying on transient faults (the task's retry)."""

    def attempt() -> str | None:
        try:
            return services.write_note(call.pk, w.practice.pk)
        except EHRTransientError:
            return None

    return wait_until(attempt, timeout=timeout, interval=0.05, message="the note to be sent")


def poll_until(w: World, call: Call, wanted: str, timeout: float = 30) -> EncounterNote:
    def attempt() -> bool:
        try:
            return services.poll_note(call.pk, w.practice.pk) == wanted
        except EHRTransientError:
            return False

    wait_until(attempt, timeout=timeout, interval=0.05, message=f"the note to be {wanted}")
    return note_row(w, call)


def test_the_note_is_written_once_despite_5xx_and_timeouts_after_writing(world):
    call, note, patient_id = booked_call(world)
    # First every documents call answers 504 after doing its work (a fault is certain to fire),
    # then a stretch of random 5xx and lost answers until the note is through.
    world.admin(
        "PATCH",
        "/_admin/faults",
        {
            "timeout_share": 1.0,
            "timeout_mode": "after",
            "timeout_seconds": 0.2,
            "only_endpoints": DOCS,
        },
    )
    with pytest.raises(EHRTransientError):
        services.write_note(call.pk, world.practice.pk)
    world.admin("PATCH", "/_admin/faults", {"error_share": 0.35, "timeout_share": 0.35})
    outcome = write_until_done(world, call)
    assert outcome in ("sent", "written")
    # A redelivered task (or a second run) finds the note already sent: nothing is posted.
    assert services.write_note(call.pk, world.practice.pk) in ("sent", "written")
    world.admin("DELETE", "/_admin/faults")
    row = poll_until(world, call, "written")

    docs = documents(world, patient_id)
    assert len(docs) == 1, docs
    stats = world.admin("GET", "/_admin/stats")
    assert stats["documents"].get("accepted") == 1
    assert stats["faults_injected"]["timeout"] >= 1
    [doc] = docs
    assert row.ehr_document_id == doc["id"] and row.written_at is not None
    assert row.attempts >= 1 and row.failure_reason == ""
    assert note.reference in doc["title"]
    text = content_of(world, patient_id, doc["id"])
    for expected in (
        "Type: Cleaning",
        "Provider: Dr. Patel",
        "Stated reason: cleaning; gums bleed when brushing",
        "Date of birth: 1985-04-12",
        "carrier: Delta Dental",
        "member_id: DD-778812",
        "Caller: Hi, I need a cleaning, my gums bleed when I brush.",
    ):
        assert expected in text, expected
    # What was sent is kept here encrypted, and equals the EHR's copy.
    assert row.content == text
    with cross_tenant("test: raw column"):
        raw = EncounterNote.objects.filter(pk=row.pk).values_list("content", flat=True)[0]
    assert b"gums bleed" not in bytes(raw)


def test_a_run_killed_after_posting_is_adopted_not_doubled(world):
    call, note, patient_id = booked_call(world)
    # An earlier run composed and posted the note, then died before recording it.
    assert services.write_note(call.pk, world.practice.pk) in ("sent", "written")
    with tenant_context(world.practice):
        EncounterNote.objects.filter(pk=note.pk).update(
            status=NoteStatus.PENDING, ehr_document_id=None, sent_at=None, written_at=None
        )
    assert services.write_note(call.pk, world.practice.pk) in ("sent", "written")
    poll_until(world, call, "written")
    assert len(documents(world, patient_id)) == 1
    assert world.admin("GET", "/_admin/stats")["documents"]["accepted"] == 1


def test_a_rejected_document_fails_with_a_reason_and_a_retry_writes_it(world, settings):
    settings.ENCOUNTER_NOTE_MAX_REJECTIONS = 0  # no automatic repost: straight to staff
    call, _, patient_id = booked_call(world)
    world.admin("PATCH", "/_admin/faults", {"document_failure_share": 1.0})
    assert services.write_note(call.pk, world.practice.pk) in ("sent", "failed")
    row = poll_until(world, call, "failed")
    assert "rejected the note" in row.failure_reason
    world.admin("DELETE", "/_admin/faults")
    with tenant_context(world.practice):
        services.retry_note(row)
    assert note_row(world, call).status == NoteStatus.PENDING
    assert services.write_note(call.pk, world.practice.pk) in ("sent", "written")
    row = poll_until(world, call, "written")
    docs = documents(world, patient_id)
    assert [d["insertion_status"] for d in sorted(docs, key=lambda d: d["id"])] == [
        "failed",
        "complete",
    ]
    assert row.ehr_document_id == max(d["id"] for d in docs)


def test_a_booking_without_an_ehr_patient_fails_the_note_with_a_reason(world):
    desk = desk_for(world.practice, world.location)
    booking = desk.booking(patient=desk.patient(ehr_id=None))
    call = desk.call(turns=TURNS, booking=booking)
    with tenant_context(world.practice):
        services.ensure_note(call)
    assert services.write_note(call.pk, world.practice.pk) == "failed"
    assert "no patient in the EHR" in note_row(world, call).failure_reason
    assert not world.admin("GET", "/_admin/stats").get("documents", {}).get("accepted")


def test_the_sweep_links_a_missed_booking_and_hands_the_note_to_its_task(db, eager_celery):
    """A confirmation whose after-commit hand-over was lost (here: the test transaction never
    commits) is repaired by the beat: call linked, outcome booked, note created and run."""
    practice = PracticeFactory(slug="swept")
    sign_baa(practice)
    desk = desk_for(practice)  # a location without an EHR connection: the run fails, saying so
    call = desk.call(turns=TURNS)
    booking = desk.booking(call_id=str(call.pk))
    with tenant_context(practice):
        assert not EncounterNote.objects.exists()
    assert tasks.sweep_encounter_notes.apply(kwargs={}).get() >= 1  # link + create
    services.sweep_notes(stale_seconds=0)  # the pending note is stale now: run it
    with tenant_context(practice):
        call = Call.objects.get(pk=call.pk)
        note = EncounterNote.objects.get(call=call)
    assert call.booking_id == booking.pk and call.outcome == "booked"
    assert note.status == NoteStatus.FAILED and note.attempts == 1
    assert "no EHR connection" in note.failure_reason


def test_without_a_baa_the_note_task_touches_nothing(db):
    practice = PracticeFactory(slug="nobaa")
    with pytest.raises(BAARequired):
        services.write_note(1, practice.pk)
    with pytest.raises(BAARequired):
        tasks.write_encounter_note.apply(args=(1, practice.pk), throw=True)
