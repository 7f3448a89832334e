"""Staff pages for calls: the list (outcomes, search by date, outcome, type and phone through
the blind index, pagination, a constant number of queries, one access event per request), a
call with its transcript masked until revealed with a reason (audited), roles and the BAA."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Role
from calls.models import CallRetention, EncounterNote, NoteStatus
from compliance.models import AccessEvent
from core.tenancy import cross_tenant, tenant_context
from tests.calls.factories import TURNS, desk_for
from tests.conftest import verify_second_factor
from tests.factories import MembershipFactory, PracticeFactory, UserFactory, sign_baa, staff_member

pytestmark = pytest.mark.django_db
NY = ZoneInfo("America/New_York")


@pytest.fixture
def alpha():
    practice = PracticeFactory(slug="alpha", name="Alpha Dental", timezone="America/New_York")
    sign_baa(practice)
    return practice


def staff(client, practice, role):
    user = UserFactory(totp=True)
    MembershipFactory(user=user, practice=practice, role=role)
    verify_second_factor(client, user)
    return user


@pytest.fixture
def front_desk(client, alpha):
    staff(client, alpha, Role.FRONT_DESK)
    return client


def events(practice, object_type):
    with tenant_context(practice):
        return list(
            AccessEvent.objects.filter(practice_id=practice.pk, object_type=object_type).order_by(
                "id"
            )
        )


def test_the_list_shows_outcomes_and_records_one_access_event_with_the_ids(front_desk, alpha):
    desk = desk_for(alpha)
    booked = desk.call(turns=TURNS, booking=desk.booking(), outcome="booked")
    escalated = desk.call(outcome="escalated")
    message = desk.call(outcome="message_taken", phone=None)
    failed = desk.call(outcome="failed")
    page = front_desk.get("/p/alpha/calls/")
    assert page.status_code == 200
    html = page.content.decode()
    for label in ("Booked", "Escalated", "Message taken", "Failed", "Cleaning", "••• 0101"):
        assert label in html, label
    assert "555-0101" not in html and "5550101" not in html  # never the whole number
    [event] = events(alpha, "calls.call")
    assert event.action == "phi.read"
    assert sorted(map(int, event.object_ids)) == sorted(
        c.pk for c in (booked, escalated, message, failed)
    )
    assert event.details["filters"]["phone"] is False


def test_search_by_phone_uses_the_blind_index_outcome_date_and_type(front_desk, alpha):
    desk = desk_for(alpha)
    with cross_tenant("test data setup"):
        from scheduling.models import AppointmentType

        consult = AppointmentType.objects.create(
            practice=alpha, key="consult", name="Consultation", minutes=45
        )
    ana = desk.call(phone="+1 555 555 0101", booking=desk.booking(), outcome="booked")
    bo = desk.call(
        phone="(555) 555-0199",
        booking=desk.booking(appointment_type=consult),
        outcome="booked",
        started_at=datetime(2026, 3, 2, 9, tzinfo=NY),
    )
    cy = desk.call(phone="555 555 0177", outcome="message_taken")

    def shown(search: dict[str, object]) -> list[int]:
        assert front_desk.post("/p/alpha/calls/", search).status_code == 200
        return sorted(map(int, events(alpha, "calls.call")[-1].object_ids))

    assert shown({"phone": "555.555.0101"}) == [ana.pk]  # however the number is written
    assert shown({"phone": "+15555550199"}) == [bo.pk]
    assert shown({"phone": "0101"}) == []  # partial numbers are not searchable
    assert shown({"outcome": "message_taken"}) == [cy.pk]
    assert shown({"appointment_type": consult.pk}) == [bo.pk]
    assert shown({"since": "2026-03-02", "until": "2026-03-02"}) == [bo.pk]
    assert shown({"outcome": "booked", "since": "2026-03-03"}) == [ana.pk]
    last = events(alpha, "calls.call")[-1]
    assert "0101" not in str(last.details)  # the number searched for is never recorded
    # The filters without PHI still work from a URL (links, bookmarks).
    front_desk.get("/p/alpha/calls/?outcome=message_taken")
    assert sorted(map(int, events(alpha, "calls.call")[-1].object_ids)) == [cy.pk]


def test_a_phone_search_is_posted_with_csrf_never_put_in_a_url(front_desk, alpha, client):
    """The caller's number is PHI: the search form posts it (CSRF-protected), a phone in the
    query string is not searched for, and the pager of a search posts the search again."""
    from django.test import Client

    desk = desk_for(alpha)
    mine = [desk.call(phone="+1 555 555 0101", outcome="failed") for _ in range(27)]
    other = desk.call(phone="+1 555 555 0177", outcome="failed")
    html = front_desk.get("/p/alpha/calls/").content.decode()
    assert 'method="post"' in html and 'name="csrfmiddlewaretoken"' in html
    assert re.search(r'<form method="post"[^>]*aria-label="Search calls"', html)

    front_desk.get("/p/alpha/calls/?phone=%2B15555550177")  # ignored, not searched for
    event = events(alpha, "calls.call")[-1]
    assert event.details["filters"]["phone"] is False and len(event.object_ids) == 25

    first = front_desk.post("/p/alpha/calls/", {"phone": "(555) 555-0101"}).content.decode()
    assert "Page 1 of 2" in first and "?page=" not in first and "phone=" not in first
    assert 'name="page" value="2"' in first and 'name="phone" value="(555) 555-0101"' in first
    assert str(other.pk) not in events(alpha, "calls.call")[-1].object_ids
    second = front_desk.post("/p/alpha/calls/", {"phone": "(555) 555-0101", "page": "2"})
    assert "Page 2 of 2" in second.content.decode()
    shown = {int(i) for e in events(alpha, "calls.call")[-2:] for i in e.object_ids}
    assert shown == {c.pk for c in mine}

    strict = Client(enforce_csrf_checks=True)
    strict.cookies = front_desk.cookies  # the same signed-in session, without the form's token
    assert strict.post("/p/alpha/calls/", {"phone": "+15555550101"}).status_code == 403


def test_the_list_paginates_with_a_constant_number_of_queries(
    transactional_db, front_desk, alpha, django_assert_num_queries
):
    # Committed data (transactional_db): data keys made inside a test transaction that never
    # commits are, rightly, never cached by the process, which would add one query per row.
    desk = desk_for(alpha)
    for _ in range(3):
        desk.call(turns=TURNS, booking=desk.booking(), outcome="booked")
    front_desk.get("/p/alpha/calls/")  # the process's key cache, warm as in production
    with CaptureQueriesContext(connection) as few:
        assert front_desk.get("/p/alpha/calls/").status_code == 200
    for i in range(27):
        booking = desk.booking() if i % 2 else None
        call = desk.call(turns=TURNS, booking=booking, outcome="booked" if booking else "failed")
        if booking:
            with tenant_context(alpha):
                EncounterNote.objects.create(practice=alpha, call=call, booking=booking)
    with django_assert_num_queries(len(few.captured_queries)):
        first = front_desk.get("/p/alpha/calls/")
    assert first.content.decode().count("/calls/") >= 25
    assert len(events(alpha, "calls.call")[-1].object_ids) == 25
    second = front_desk.get("/p/alpha/calls/?page=2")
    assert "Page 2 of 2" in second.content.decode()
    assert len(events(alpha, "calls.call")[-1].object_ids) == 5


def test_the_transcript_is_masked_until_revealed_with_a_reason(front_desk, alpha):
    desk = desk_for(alpha)
    call = desk.call(turns=TURNS, booking=desk.booking(), outcome="booked")
    with tenant_context(alpha):
        EncounterNote.objects.create(
            practice=alpha,
            call=call,
            booking=call.booking,
            status=NoteStatus.FAILED,
            failure_reason="The EHR rejected the note: test. Retry the note.",
        )
    page = front_desk.get(f"/p/alpha/calls/{call.pk}/").content.decode()
    assert "gums bleed" not in page and "Masked: 3 turns" in page
    assert "The EHR rejected the note" in page and "Retry the note" in page
    assert events(alpha, "calls.transcript") == []

    refused = front_desk.post(f"/p/alpha/calls/{call.pk}/reveal/", {"reason": ""})
    assert refused.status_code == 200
    assert "This field is required." in refused.content.decode()
    assert "gums bleed" not in refused.content.decode()
    assert events(alpha, "calls.transcript") == []

    reason = "Caller asked us to confirm what was booked"
    shown = front_desk.post(f"/p/alpha/calls/{call.pk}/reveal/", {"reason": reason})
    assert "my gums bleed when I brush" in shown.content.decode()
    [event] = events(alpha, "calls.transcript")
    assert event.action == "phi.read" and event.reason == reason
    assert event.object_ids == [str(call.pk)] and event.actor_user_id is not None

    partial = front_desk.post(
        f"/p/alpha/calls/{call.pk}/reveal/", {"reason": reason}, HTTP_HX_REQUEST="true"
    )
    assert "<html" not in partial.content.decode() and "gums bleed" in partial.content.decode()
    assert len(events(alpha, "calls.transcript")) == 2


@pytest.mark.parametrize("role", [Role.CLINICIAN, Role.COMPLIANCE_OFFICER])
def test_roles_without_call_access_are_refused(client, alpha, role):
    desk = desk_for(alpha)
    call = desk.call(turns=TURNS)
    staff(client, alpha, role)
    assert client.get("/p/alpha/calls/").status_code == 403
    assert client.get(f"/p/alpha/calls/{call.pk}/").status_code == 403
    response = client.post(f"/p/alpha/calls/{call.pk}/reveal/", {"reason": "curious, really"})
    assert response.status_code == 403
    assert events(alpha, "calls.transcript") == []


def test_practice_managers_may_reveal_and_set_retention_front_desk_may_not_set_it(client, alpha):
    desk = desk_for(alpha)
    call = desk.call(turns=TURNS)
    staff(client, alpha, Role.PRACTICE_MANAGER)
    response = client.post(f"/p/alpha/calls/{call.pk}/reveal/", {"reason": "quality review"})
    assert "gums bleed" in response.content.decode()
    bad = client.post("/p/alpha/calls/retention/", {"transcript_days": 0, "note_days": 2192})
    assert "greater than or equal to 1" in bad.content.decode()
    saved = client.post("/p/alpha/calls/retention/", {"transcript_days": 30, "note_days": 2192})
    assert saved.status_code == 302
    with tenant_context(alpha):
        assert CallRetention.objects.get().transcript_days == 30

    other = staff_member(alpha, Role.FRONT_DESK)
    client.logout()
    verify_second_factor(client, other)
    assert client.get("/p/alpha/calls/retention/").status_code == 403


def test_another_practices_call_is_404(front_desk, alpha):
    beta = PracticeFactory(slug="beta")
    sign_baa(beta)
    theirs = desk_for(beta).call(turns=TURNS)
    assert front_desk.get(f"/p/alpha/calls/{theirs.pk}/").status_code == 404
    response = front_desk.post(f"/p/alpha/calls/{theirs.pk}/reveal/", {"reason": "looking around"})
    assert response.status_code == 404
    assert events(alpha, "calls.transcript") == []


def test_without_a_baa_the_pages_refuse_to_decrypt(client):
    practice = PracticeFactory(slug="nobaa")
    call = desk_for(practice).call(turns=TURNS)
    staff(client, practice, Role.FRONT_DESK)
    assert client.get("/p/nobaa/calls/").status_code == 403
    assert client.get(f"/p/nobaa/calls/{call.pk}/").status_code == 403
    response = client.post(f"/p/nobaa/calls/{call.pk}/reveal/", {"reason": "need to check"})
    assert response.status_code == 403
    assert events(practice, "calls.transcript") == []


def test_the_empty_list_says_what_to_do_next(front_desk):
    html = front_desk.get("/p/alpha/calls/").content.decode()
    assert "No calls yet" in html and "calls:write" in html
    html = front_desk.get("/p/alpha/calls/?outcome=booked").content.decode()
    assert "No calls match this search" in html


def test_the_list_sorts_by_outcome_and_keeps_the_order_across_pages(front_desk, alpha):
    desk = desk_for(alpha)
    outcomes = ["message_taken", "abandoned", "escalated"] * 9
    made = [desk.call(outcome=o) for o in outcomes]
    page = front_desk.get("/p/alpha/calls/?sort=outcome").content.decode()
    assert 'aria-sort="ascending"' in page and 'href="?sort=-outcome"' in page
    cells = page.split('id="call-rows"')[1].split("</table>")[0]
    labels = [c.split(">", 1)[1].split("<")[0] for c in cells.split('class="outcome-')[1:]]
    assert labels == sorted(labels) and labels[0] == "Abandoned" and len(labels) == 25
    # The pager posts the order back with the filters.
    assert 'name="sort" value="outcome"' in page
    second = front_desk.post("/p/alpha/calls/", {"sort": "outcome", "page": "2"}).content.decode()
    rest = second.split('id="call-rows"')[1].split("</table>")[0]
    assert rest.count('class="outcome-message_taken"') == 2
    assert len(made) == 27
