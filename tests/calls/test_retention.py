"""Retention: per-practice settings (defaults: a year for local transcripts, six years for our
copy of notes written to the EHR); the beat purges what is past them and leaves a tombstone that
the audit trail records; nothing waiting to be written is purged; audit rows are never deleted."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from accounts.models import Role
from calls import services, tasks
from calls.models import (
    DEFAULT_NOTE_RETENTION_DAYS,
    DEFAULT_TRANSCRIPT_RETENTION_DAYS,
    Call,
    EncounterNote,
    NoteStatus,
)
from compliance.models import AccessEvent, ChangeEntry
from core.tenancy import cross_tenant, tenant_context
from tests.calls.factories import TURNS, desk_for
from tests.conftest import verify_second_factor
from tests.factories import PracticeFactory, sign_baa, staff_member

pytestmark = pytest.mark.django_db


@pytest.fixture
def alpha():
    practice = PracticeFactory(slug="alpha", name="Alpha Dental")
    sign_baa(practice)
    return practice


def aged(call: Call, days: int) -> Call:
    with cross_tenant("test: age the transcript"):
        Call.objects.filter(pk=call.pk).update(
            transcript_received_at=timezone.now() - timedelta(days=days)
        )
    return call


def reload(practice, call: Call) -> Call:
    with tenant_context(practice):
        return Call.objects.get(pk=call.pk)


def audit_counts(practice) -> tuple[int, int]:
    with tenant_context(practice):
        return (
            AccessEvent.objects.filter(practice_id=practice.pk).count(),
            ChangeEntry.objects.filter(practice_id=practice.pk).count(),
        )


def test_defaults_are_six_years_for_notes_and_a_year_for_transcripts(alpha):
    with tenant_context(alpha):
        setting = services.retention_for(alpha)
    assert setting.pk is None  # no row: the defaults
    assert setting.note_days == DEFAULT_NOTE_RETENTION_DAYS == 2192
    assert setting.transcript_days == DEFAULT_TRANSCRIPT_RETENTION_DAYS == 365
    assert settings.CELERY_BEAT_SCHEDULE["calls-purge-expired"]["task"] == "calls.purge_expired"


def test_the_purge_leaves_an_audited_tombstone_and_spares_the_rest(alpha):
    desk = desk_for(alpha)
    with tenant_context(alpha):
        services.set_retention(alpha, transcript_days=30, note_days=2192)
    old = aged(desk.call(turns=TURNS), 40)
    fresh = aged(desk.call(turns=TURNS), 10)
    waiting = aged(desk.call(turns=TURNS, booking=desk.booking(), outcome="booked"), 40)
    with tenant_context(alpha):
        EncounterNote.objects.create(practice=alpha, call=waiting, booking=waiting.booking)
    beta = PracticeFactory(slug="beta")
    theirs = aged(desk_for(beta).call(turns=TURNS), 40)  # beta keeps the default year
    before = audit_counts(alpha)

    assert tasks.purge_expired.apply().get() == {"transcripts": 1, "notes": 0}

    tomb = reload(alpha, old)
    assert tomb.transcript is None and tomb.transcript_purged_at is not None
    assert tomb.transcript_turns == 3  # the row stays: when, how long, what came of it
    assert reload(alpha, fresh).transcript == TURNS
    assert reload(alpha, waiting).transcript == TURNS  # its note still needs it
    assert reload(beta, theirs).transcript == TURNS
    with tenant_context(alpha):
        entry = ChangeEntry.objects.filter(
            content_type=ContentType.objects.get_for_model(Call),
            object_pk=str(old.pk),
            practice_id=alpha.pk,
        ).latest("timestamp")
    assert entry.changes["transcript"][1] == "[encrypted]"  # recorded, never the text
    assert "transcript_purged_at" in entry.changes
    after = audit_counts(alpha)
    assert after[1] > before[1] and after[0] >= before[0]  # only ever grows

    # Idempotent: nothing more to purge; the tombstone stays as it was.
    assert services.purge_expired() == {"transcripts": 0, "notes": 0}
    assert reload(alpha, old).transcript_purged_at == tomb.transcript_purged_at


def test_note_copies_are_purged_after_their_own_retention(alpha):
    desk = desk_for(alpha)
    call = desk.call(turns=TURNS, booking=desk.booking(), outcome="booked")
    with tenant_context(alpha):
        note = EncounterNote.objects.create(
            practice=alpha,
            call=call,
            booking=call.booking,
            status=NoteStatus.WRITTEN,
            ehr_document_id=77,
            content="the note as written",
        )
    later = timezone.now() + timedelta(days=DEFAULT_NOTE_RETENTION_DAYS + 1)
    assert services.purge_expired(now=later) == {"transcripts": 1, "notes": 1}
    with tenant_context(alpha):
        note = EncounterNote.objects.get(pk=note.pk)
    assert note.content is None and note.purged_at is not None
    assert note.status == NoteStatus.WRITTEN and note.ehr_document_id == 77


def test_the_call_page_shows_the_tombstone(client, alpha):
    call = aged(desk_for(alpha).call(turns=TURNS), 400)
    services.purge_expired()
    user = staff_member(alpha, Role.FRONT_DESK)
    verify_second_factor(client, user)
    html = client.get(f"/p/alpha/calls/{call.pk}/").content.decode()
    assert "Purged on" in html and "Reveal" not in html
