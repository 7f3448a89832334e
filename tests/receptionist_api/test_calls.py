"""The calls API as the voice agent sees it: idempotent POST /calls, the transcript stored
encrypted, the BAA gate, another practice's call answering 404, the booking linked."""

from __future__ import annotations

import json

import pytest
from django.db import connection

from calls.models import Call, CallOutcome, EncounterNote, NoteStatus
from core.tenancy import cross_tenant, tenant_context
from scheduling.models import BookingStatus
from tests.calls.factories import TURNS, desk_for
from tests.factories import PracticeFactory, sign_baa
from tests.receptionist_api.factories import api_client, bearer, token_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_secret_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def alpha():
    practice = PracticeFactory(slug="alpha", name="Alpha Dental", timezone="America/Los_Angeles")
    sign_baa(practice)
    return practice


@pytest.fixture
def token(alpha):
    client, _ = api_client(alpha)
    return token_for(client)[0]


def post_call(client, token, **body):
    body.setdefault("started_at", "2026-05-04T10:00:00-07:00")
    return client.post("/api/v1/calls", body, content_type="application/json", **bearer(token))


def put_transcript(client, token, call_id, turns=TURNS, **extra):
    return client.put(
        f"/api/v1/calls/{call_id}/transcript",
        json.dumps({"turns": turns, **extra}),
        content_type="application/json",
        **bearer(token),
    )


def test_post_call_is_idempotent_on_external_id(client, alpha, token):
    first = post_call(client, token, external_id="vapi-123", caller_phone="+1 555 555 0101")
    assert first.status_code == 201, first.content
    assert set(first.json()) == {"id"}
    again = post_call(client, token, external_id="vapi-123", caller_phone="+1 555 555 0101")
    assert again.status_code == 201 and again.json() == first.json()
    other = post_call(client, token, external_id="vapi-124")
    assert other.json()["id"] != first.json()["id"]
    with tenant_context(alpha):
        assert Call.objects.count() == 2
        call = Call.objects.get(pk=first.json()["id"])
        assert call.caller_phone == "+1 555 555 0101"
        assert call.outcome == CallOutcome.IN_PROGRESS


def test_post_call_validates_and_answers_problem_json(client, token):
    response = post_call(client, token, external_id="", started_at="yesterday")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "validation_error"
    assert set(body["errors"]) == {"external_id", "started_at"}


def test_transcript_is_stored_encrypted_and_the_phone_is_blind_indexed(client, alpha, token):
    call_id = post_call(client, token, external_id="enc-1", caller_phone="5555550101").json()["id"]
    response = put_transcript(client, token, call_id, outcome="message_taken")
    assert response.status_code == 200, response.content
    assert response.json() == {
        "id": call_id,
        "turns": 3,
        "outcome": "message_taken",
        "booking_id": None,
        "encounter_note": None,
    }
    with connection.cursor() as cur, cross_tenant("test: read the raw columns"):
        cur.execute(
            "SELECT transcript, caller_phone, caller_phone_index FROM calls_call WHERE id = %s",
            [call_id],
        )
        transcript, phone, index = (bytes(v) for v in cur.fetchone())
    assert b"gums bleed" not in transcript and b"cleaning" not in transcript
    assert b"5555550101" not in phone and b"555" not in phone
    with tenant_context(alpha):
        call = Call.objects.get(pk=call_id)
        assert call.transcript[1]["text"].startswith("Hi, I need a cleaning")
        assert call.transcript[0]["speaker"] == "agent"
        # Found by the blind index of the number however it is written; never by plaintext.
        from calls.services import phone_digest

        assert index == phone_digest(alpha, "+1 (555) 555-0101")
        assert (
            Call.objects.filter(caller_phone_index=phone_digest(alpha, "555.555.0101")).get()
            == call
        )


def test_transcript_turns_are_validated(client, token):
    call_id = post_call(client, token, external_id="bad-turns").json()["id"]
    response = put_transcript(
        client, token, call_id, turns=[{"speaker": "doctor", "text": "hi", "at": "now"}]
    )
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"turns.0.speaker", "turns.0.at"}
    assert put_transcript(client, token, call_id, turns=[]).status_code == 400


def test_without_a_baa_calls_are_refused_with_baa_required(client):
    practice = PracticeFactory(slug="nobaa")
    raw = token_for(api_client(practice)[0])[0]
    response = post_call(client, raw, external_id="x-1", caller_phone="5555550101")
    assert response.status_code == 403
    assert response.json()["type"] == "baa_required"
    with cross_tenant("test: nothing was stored"):
        assert not Call.objects.filter(practice=practice).exists()
    assert put_transcript(client, raw, 1).json()["type"] == "baa_required"


def test_another_practices_call_is_404_and_untouched(client, alpha, token):
    beta = PracticeFactory(slug="beta")
    sign_baa(beta)
    beta_token = token_for(api_client(beta)[0])[0]
    theirs = post_call(client, beta_token, external_id="shared-id").json()["id"]
    response = put_transcript(client, token, theirs)
    assert response.status_code == 404 and response.json()["type"] == "not_found"
    # The same external id in our practice is our own call, not theirs.
    ours = post_call(client, token, external_id="shared-id").json()["id"]
    assert ours != theirs
    with cross_tenant("test: their call has no transcript"):
        assert Call.objects.get(pk=theirs).transcript is None


def test_calls_need_the_calls_write_scope(client, alpha):
    raw = token_for(api_client(alpha, scopes=["bookings:write"])[0])[0]
    response = post_call(client, raw, external_id="scope-1")
    assert response.status_code == 403 and response.json()["type"] == "insufficient_scope"


def test_a_confirmed_booking_naming_the_call_books_it_and_queues_the_note(
    client, alpha, token, django_capture_on_commit_callbacks
):
    call_id = post_call(client, token, external_id="booked-1").json()["id"]
    desk = desk_for(alpha)
    booking = desk.booking(status=BookingStatus.CONFIRMED, call_id=str(call_id))
    with django_capture_on_commit_callbacks() as queued:
        response = put_transcript(client, token, call_id)
    body = response.json()
    assert body["outcome"] == "booked" and body["booking_id"] == booking.pk
    assert body["encounter_note"] == {"status": "pending", "failure_reason": "", "attempts": 0}
    assert queued, "the note task is handed over after commit"
    with tenant_context(alpha):
        note = EncounterNote.objects.get(call_id=call_id)
        assert note.status == NoteStatus.PENDING and note.booking_id == booking.pk
        # A second transcript (a retry by the agent) makes no second note.
    put_transcript(client, token, call_id)
    with tenant_context(alpha):
        assert EncounterNote.objects.filter(call_id=call_id).count() == 1


def test_a_booking_confirmed_after_the_transcript_links_by_external_id(
    client, alpha, token, django_capture_on_commit_callbacks
):
    from booking import services as bookings

    call_id = post_call(client, token, external_id="vapi-late").json()["id"]
    desk = desk_for(alpha)
    booking = desk.booking(status=BookingStatus.PENDING, call_id="vapi-late")
    body = put_transcript(client, token, call_id).json()
    assert body["encounter_note"] is None and body["booking_id"] == booking.pk
    with tenant_context(alpha):
        assert Call.objects.get(pk=call_id).outcome == CallOutcome.IN_PROGRESS
        with django_capture_on_commit_callbacks(execute=True):
            assert bookings.mark_confirmed(booking.pk, 4242)
        call = Call.objects.get(pk=call_id)
        assert call.outcome == CallOutcome.BOOKED and call.booking_id == booking.pk
        assert EncounterNote.objects.get(call_id=call_id).status == NoteStatus.PENDING


def test_a_purged_transcript_cannot_be_replaced(client, alpha, token):
    from calls import services

    call_id = post_call(client, token, external_id="purged-1").json()["id"]
    put_transcript(client, token, call_id)
    with tenant_context(alpha):
        services.set_retention(alpha, transcript_days=1, note_days=2192)
        from datetime import timedelta

        from django.utils import timezone

        services.purge_practice(alpha.pk, now=timezone.now() + timedelta(days=2))
    response = put_transcript(client, token, call_id)
    assert response.status_code == 409 and response.json()["type"] == "transcript_purged"
