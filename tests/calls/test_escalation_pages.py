"""The protocol pages: a clinician writes a draft, edits never touch the live version, approval
needs a confirmation, is recorded (approver, time, audit event), and the test console shows the
decision; managers may look but not write; other roles and practices see nothing."""

from __future__ import annotations

import pytest

from accounts.models import Role
from calls.escalation import services
from calls.models import ProtocolVersion, VersionStatus
from compliance.models import AccessEvent
from core.tenancy import tenant_context
from tests.calls.test_escalation_world import clinic
from tests.conftest import verify_second_factor
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def surgery():
    return clinic()


def member(client, practice, role):
    user = UserFactory(totp=True, first_name="Mei", last_name="Chen")
    MembershipFactory(user=user, practice=practice, role=role)
    verify_second_factor(client, user)
    return user


@pytest.fixture
def clinician(client, surgery):
    return member(client, surgery.practice, Role.CLINICIAN)


FORM = {
    "name": "Post-op bleeding",
    "triggers": "bleeding that won't stop\nfever",
    "severity": "urgent",
    "route": "on_call",
    "within_days_of_procedure": "14",
    "instructions": "Connect the caller to the on-call surgeon now.",
}


def test_a_clinician_writes_a_draft_then_approves_it_and_it_goes_live(client, surgery, clinician):
    base = f"/p/{surgery.practice.slug}/protocols/"
    response = client.post(
        f"{base}new/", {**FORM, "appointment_types": [surgery.types["facelift"].pk]}
    )
    assert response.status_code == 302
    with tenant_context(surgery.practice):
        version = ProtocolVersion.objects.get()
        assert list(version.appointment_types.values_list("key", flat=True)) == ["facelift"]
    assert (version.status, version.number, version.created_by) == ("draft", 1, clinician)
    assert version.triggers == ["bleeding that won't stop", "fever"]
    detail = client.get(f"{base}{version.protocol_id}/").content.decode()
    assert "No live version" in detail and "Draft" in detail

    approve = f"{base}{version.protocol_id}/versions/{version.pk}/approve/"
    clinician = member(client, surgery.practice, Role.CLINICIAN)  # a second clinician approves
    page = client.get(approve).content.decode()
    assert "Approve and put live" in page and "bleeding that won&#x27;t stop" in page
    refused = client.post(approve, {"note": "reviewed"})  # the confirmation is required
    assert refused.status_code == 200
    assert "This field is required" in refused.content.decode()
    with tenant_context(surgery.practice):
        assert ProtocolVersion.objects.get().status == VersionStatus.DRAFT

    assert client.post(approve, {"confirm": "on", "note": "Reviewed with Dr. M"}).status_code == 302
    with tenant_context(surgery.practice):
        version.refresh_from_db()
        event = AccessEvent.objects.get(action=services.APPROVED_ACTION)
    assert (version.status, version.approved_by, version.approval_source) == (
        "live",
        clinician,
        "portal",
    )
    assert version.approved_at is not None
    assert event.actor_user_id == clinician.pk
    assert event.object_ids == [str(version.pk)]
    assert event.details["version"] == 1 and event.reason == "Reviewed with Dr. M"
    detail = client.get(f"{base}{version.protocol_id}/").content.decode()
    assert "Approved" in detail and "Mei Chen" in detail and "Reviewed with Dr. M" in detail


def test_editing_makes_a_new_draft_and_the_live_version_keeps_answering(client, surgery, clinician):
    live = surgery.protocol("Infection after Mohs", ["fever"], types=["mohs"], within_days=14)
    url = f"/p/{surgery.practice.slug}/protocols/{live.protocol_id}/edit/"
    form = client.get(url).content.decode()
    assert "Infection after Mohs" in form and "fever</textarea>" in form

    client.post(url, {**FORM, "name": "Infection after Mohs", "triggers": "fever\npus"})
    client.post(url, {**FORM, "name": "Infection after Mohs", "triggers": "fever\npus\nchills"})

    with tenant_context(surgery.practice):
        versions = {v.number: v for v in ProtocolVersion.objects.filter(protocol=live.protocol)}
    assert set(versions) == {1, 2}  # the second save updated the same draft
    assert versions[1].status == "live" and versions[1].triggers == ["fever"]
    assert versions[2].status == "draft" and versions[2].triggers == ["fever", "pus", "chills"]
    history = client.get(f"/p/{surgery.practice.slug}/protocols/{live.protocol_id}/")
    assert history.content.decode().count("<tr><td>v") == 2


def test_form_errors_show_next_to_their_field(client, surgery, clinician):
    response = client.post(
        f"/p/{surgery.practice.slug}/protocols/new/",
        {**FORM, "severity": "emergency", "triggers": "  "},
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "Emergencies route to 911, and only emergencies do." in page
    assert "This field is required." in page  # the blank triggers


def test_the_test_console_shows_the_decision_and_can_try_drafts(client, surgery, clinician):
    surgery.protocol("Possible DVT", ["calf pain"], types=["knee"], within_days=42)
    surgery.protocol("Vomiting", ["throwing up"], approve=False)
    url = f"/p/{surgery.practice.slug}/protocols/console/"
    assert "What the caller says" in client.get(url).content.decode()

    partial = client.post(
        url,
        {
            "text": "the back of my leg is swollen and sore",
            "appointment_type": surgery.types["knee"].pk,
        },
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert 'data-escalate="true"' in partial and "Possible DVT" in partial
    assert "Nobody is on call right now" in partial
    assert "<html" not in partial  # htmx gets the fragment only

    live_only = client.post(url, {"text": "I keep throwing up"}, HTTP_HX_REQUEST="true")
    assert 'data-escalate="false"' in live_only.content.decode()
    with_drafts = client.post(url, {"text": "I keep throwing up", "drafts": "on"})
    assert "Vomiting" in with_drafts.content.decode()  # a full page without htmx


def test_managers_may_look_but_only_clinicians_write(client, surgery):
    version = surgery.protocol("Fever", ["fever"], approve=False)
    member(client, surgery.practice, Role.PRACTICE_MANAGER)
    base = f"/p/{surgery.practice.slug}/protocols/"
    assert client.get(base).status_code == 200
    assert client.get(f"{base}{version.protocol_id}/").status_code == 200
    assert client.get(f"{base}console/").status_code == 200
    assert client.get(f"{base}new/").status_code == 403
    assert client.post(f"{base}{version.protocol_id}/edit/", FORM).status_code == 403
    approve = f"{base}{version.protocol_id}/versions/{version.pk}/approve/"
    assert client.post(approve, {"confirm": "on"}).status_code == 403
    with tenant_context(surgery.practice):
        assert ProtocolVersion.objects.get().status == "draft"


def test_front_desk_does_not_see_protocols(client, surgery):
    member(client, surgery.practice, Role.FRONT_DESK)
    assert client.get(f"/p/{surgery.practice.slug}/protocols/").status_code == 403


def test_another_practices_protocol_is_404(client, surgery, clinician):
    theirs = clinic("beta", "Beta").protocol("Fever", ["fever"], approve=False)
    base = f"/p/{surgery.practice.slug}/protocols/{theirs.protocol_id}"
    assert client.get(f"{base}/").status_code == 404
    assert client.post(f"{base}/edit/", FORM).status_code == 404
    assert (
        client.post(f"{base}/versions/{theirs.pk}/approve/", {"confirm": "on"}).status_code == 404
    )


def test_withdrawing_takes_a_protocol_off_the_air(client, surgery, clinician):
    live = surgery.protocol("Fever", ["fever"])
    url = f"/p/{surgery.practice.slug}/protocols/{live.protocol_id}/withdraw/"
    assert "Withdraw this protocol?" in client.get(url).content.decode()
    client.post(url)
    with tenant_context(surgery.practice):
        live.refresh_from_db()
    assert live.status == "withdrawn"


def test_the_list_page_costs_the_same_queries_however_many_protocols(client, surgery, clinician):
    for n in range(4):
        surgery.protocol(f"Protocol {n}", ["fever"], approve=n % 2 == 0)
    url = f"/p/{surgery.practice.slug}/protocols/"
    client.get(url)  # warm the session
    few = _queries(client, url)
    for n in range(4, 10):
        surgery.protocol(f"Protocol {n}", ["fever"], approve=n % 2 == 0)
    assert _queries(client, url) == few
    page = client.get(url).content.decode()
    assert page.count("badge live") == 5 and page.count("badge draft") == 5


def _queries(client, url) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured.captured_queries)


def test_the_console_shows_which_trigger_fired_and_the_words_that_qualified_it(
    client, surgery, clinician
):
    surgery.protocol("Hematoma", ["rapidly increasing swelling", "fever"], types=["facelift"])
    url = f"/p/{surgery.practice.slug}/protocols/console/"
    kind = surgery.types["facelift"].pk

    fired = client.post(
        url,
        {"text": "The swelling is getting worse by the hour.", "appointment_type": kind},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert 'data-escalate="true"' in fired
    assert 'data-trigger="rapidly increasing swelling" data-outcome="fired"' in fired
    assert "qualified by “getting worse”, “by the hour”" in fired

    calm = client.post(
        url,
        {"text": "The swelling is going down, is that normal? No fever.", "appointment_type": kind},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert 'data-escalate="false"' in calm
    assert 'data-trigger="rapidly increasing swelling" data-outcome="played down"' in calm
    assert "“going down”" in calm
    assert 'data-trigger="fever" data-outcome="negated"' in calm


def test_the_console_shows_a_built_in_emergency(client, surgery, clinician):
    url = f"/p/{surgery.practice.slug}/protocols/console/"
    page = client.post(
        url, {"text": "my husband's speech is slurred"}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert 'id="emergency"' in page and "stroke signs" in page
    assert "call 911 first" in page


def test_a_clinician_names_the_group_whose_on_call_takes_a_protocol(client, surgery, clinician):
    with tenant_context(surgery.practice):
        eyes = services.group_for(surgery.practice, "ophthalmology", "Ophthalmology on call")
    base = f"/p/{surgery.practice.slug}/protocols/"
    form = client.get(f"{base}new/").content.decode()
    assert "Whose on-call takes it" in form and "Ophthalmology on call" in form

    response = client.post(f"{base}new/", {**FORM, "on_call_group": eyes.pk})
    assert response.status_code == 302
    with tenant_context(surgery.practice):
        version = ProtocolVersion.objects.get()
        assert version.on_call_group == eyes and version.route_provider is None
    detail = client.get(f"{base}{version.protocol_id}/").content.decode()
    assert "The on-call provider: Ophthalmology on call" in detail
