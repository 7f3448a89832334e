"""The encounter note goes to the patient's chart once, for either EHR, even when the EHR
wrote it but its answer was lost: the call and its transcript come through the voice agent's
API, the note is written by a real worker."""

from __future__ import annotations

import pytest
from django.utils import timezone

from calls import tasks
from calls.models import EncounterNote, NoteStatus
from core.tenancy import tenant_context
from ehr_sandbox.testing import wait_until
from tests.calls.factories import TURNS

from .conftest import World

pytestmark = [pytest.mark.worker]


def note_of(w: World, call_id: int) -> EncounterNote | None:
    with tenant_context(w.practice):
        return EncounterNote.objects.filter(call_id=call_id).first()


def test_the_note_is_written_once_even_when_the_first_writes_answer_is_lost(world: World) -> None:
    agent = world.agent
    with world.worker(ENCOUNTER_NOTE_POLL_SECONDS="0.2"):
        call = agent.call(
            "POST",
            "/calls",
            json={"external_id": "note-call-1", "started_at": timezone.now().isoformat()},
        )
        assert call.status_code == 201, call.text
        call_id = int(call.json()["id"])
        booking_id = world.book(10, 0, "note-1", call_id="note-call-1")
        agent.wait_status(booking_id, "confirmed")
        # Every note write lands in the chart, and its answer is lost on the way back.
        world.ehr.faults(
            timeout_share=1.0,
            timeout_mode="after",
            timeout_seconds=0.2,
            only_endpoints=[world.ehr.note_endpoints[0]],
        )
        put = agent.call("PUT", f"/calls/{call_id}/transcript", json={"turns": TURNS})
        assert put.status_code == 200, put.text
        # The note's task delivered a second time, as a broker may: still one note.
        tasks.write_encounter_note.apply_async(args=(call_id, world.practice.pk), queue=world.queue)
        wait_until(
            lambda: world.ehr.stats()["faults"].get("timeout", 0) >= 1,
            timeout=60,
            message="a note write whose answer was lost",
        )
        world.ehr.clear_faults()
        note = wait_until(
            lambda: (
                (n := note_of(world, call_id)) is not None and n.status == NoteStatus.WRITTEN and n
            ),
            timeout=90,
            interval=0.2,
            message="the note written",
        )
    patient = world.row(booking_id).patient
    assert patient is not None and patient.ehr_id is not None
    notes = world.ehr.notes(patient.ehr_id)
    assert len(notes) == 1, notes
    assert note.failure_reason == "" and note.reference in str(notes[0])
    assert note.ehr_document_id == int(notes[0]["id"])
