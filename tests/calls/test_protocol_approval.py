"""A second pair of eyes on protocols: a version is approved by a clinician who did not write
it. A practice with a single clinician may allow self-approval explicitly (a tracked change),
and that stops applying when a second clinician joins; support sessions never approve."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import Role
from calls.escalation import services
from calls.models import ApprovalPolicy, ProtocolVersion, VersionStatus
from compliance.models import AccessEvent, ChangeEntry
from core.tenancy import tenant_context
from tests.calls.test_escalation_pages import FORM, member
from tests.calls.test_escalation_world import clinic

pytestmark = pytest.mark.django_db


@pytest.fixture
def surgery():
    return clinic()


def draft_by(client, surgery) -> tuple[ProtocolVersion, str]:
    """A clinician writes a draft in the portal; returns it and its approval URL."""
    author = member(client, surgery.practice, Role.CLINICIAN)
    base = f"/p/{surgery.practice.slug}/protocols/"
    assert client.post(f"{base}new/", FORM).status_code == 302
    with tenant_context(surgery.practice):
        version = ProtocolVersion.objects.get()
    assert version.created_by == author
    return version, f"{base}{version.protocol_id}/versions/{version.pk}/approve/"


def status_of(surgery, version) -> str:
    with tenant_context(surgery.practice):
        version.refresh_from_db()
    return version.status


def test_the_author_cannot_approve_their_own_draft_and_a_second_clinician_does(client, surgery):
    version, approve = draft_by(client, surgery)
    colleague = Client()
    second = member(colleague, surgery.practice, Role.CLINICIAN)
    page = client.get(approve).content.decode()
    assert 'id="approval-refused"' in page and "another clinician approves it" in page
    assert "Approve and put live" not in page
    refused = client.post(approve, {"confirm": "on"}, follow=True)
    assert "another clinician approves it" in refused.content.decode()
    assert status_of(surgery, version) == VersionStatus.DRAFT

    assert colleague.post(approve, {"confirm": "on", "note": "looks right"}).status_code == 302
    assert status_of(surgery, version) == VersionStatus.LIVE
    assert (version.approved_by, version.self_approved) == (second, False)
    with tenant_context(surgery.practice):
        event = AccessEvent.objects.get(action=services.APPROVED_ACTION)
    assert event.actor_user_id == second.pk and event.details["self_approved"] is False


def test_whoever_edited_the_draft_is_an_author_too(client, surgery):
    version, approve = draft_by(client, surgery)
    editor = member(client, surgery.practice, Role.CLINICIAN)
    edit = f"/p/{surgery.practice.slug}/protocols/{version.protocol_id}/edit/"
    assert client.post(edit, {**FORM, "triggers": "fever\nchills"}).status_code == 302
    with tenant_context(surgery.practice):
        version.refresh_from_db()
        assert version.edited_by == editor
        with pytest.raises(services.ApprovalError):
            services.approve_version(version, editor)
    assert status_of(surgery, version) == VersionStatus.DRAFT
    third = member(client, surgery.practice, Role.CLINICIAN)
    assert client.post(approve, {"confirm": "on"}).status_code == 302
    assert status_of(surgery, version) == VersionStatus.LIVE and version.approved_by == third


def test_a_single_clinician_allows_self_approval_explicitly_and_it_is_audited(client, surgery):
    version, approve = draft_by(client, surgery)
    listing = client.get(f"/p/{surgery.practice.slug}/protocols/").content.decode()
    assert 'data-self-approval="false"' in listing
    assert "another clinician approves it" in client.get(approve).content.decode()

    policy_url = f"/p/{surgery.practice.slug}/protocols/approval-policy/"
    assert client.post(policy_url, {"allow_self_approval": "on"}).status_code == 302
    with tenant_context(surgery.practice):
        policy = ApprovalPolicy.objects.get()
        change = ChangeEntry.objects.filter(object_repr__icontains="approval policy").latest("id")
    assert policy.allow_self_approval and policy.updated_by == version.created_by
    assert change.actor_id == version.created_by.pk
    assert "allow_self_approval" in str(change.changes)
    assert 'data-self-approval="true"' in client.get(policy_url).content.decode()

    assert "Approve and put live" in client.get(approve).content.decode()
    assert client.post(approve, {"confirm": "on"}).status_code == 302
    assert status_of(surgery, version) == VersionStatus.LIVE and version.self_approved
    with tenant_context(surgery.practice):
        event = AccessEvent.objects.get(action=services.APPROVED_ACTION)
    assert event.details["self_approved"] is True
    detail = client.get(f"/p/{surgery.practice.slug}/protocols/{version.protocol_id}/")
    assert "its own author, as the practice" in detail.content.decode()


def test_self_approval_needs_a_single_clinician_and_lapses_when_a_second_joins(client, surgery):
    version, approve = draft_by(client, surgery)
    author = version.created_by
    with tenant_context(surgery.practice):
        services.set_self_approval(surgery.practice, True, author)
    second = member(client, surgery.practice, Role.CLINICIAN)  # the practice grows
    with tenant_context(surgery.practice):
        assert services.approval_refusal(version, author)
        with pytest.raises(services.ApprovalError):
            services.approve_version(version, author)
    policy_url = f"/p/{surgery.practice.slug}/protocols/approval-policy/"
    page = client.get(policy_url).content.decode()
    assert 'data-self-approval="false"' in page and "it has 2 now" in page
    refused = client.post(policy_url, {"allow_self_approval": "on"})
    assert refused.status_code == 200
    assert "more than one clinician" in refused.content.decode()
    assert client.post(policy_url, {}).status_code == 302  # turning it off is always allowed
    with tenant_context(surgery.practice):
        assert not ApprovalPolicy.objects.get().allow_self_approval
    assert client.post(approve, {"confirm": "on"}).status_code == 302
    assert status_of(surgery, version) == VersionStatus.LIVE and version.approved_by == second


def test_front_desk_cannot_change_the_policy_and_another_practice_is_404(client, surgery):
    clinic("beta", "Beta")
    member(client, surgery.practice, Role.FRONT_DESK)
    assert client.post(f"/p/{surgery.practice.slug}/protocols/approval-policy/").status_code == 403
    assert client.get("/p/beta/protocols/approval-policy/").status_code == 404


def test_the_console_tests_a_sentence_against_the_rota_of_a_chosen_time(client, surgery):
    """The time typed is the practice's (Los Angeles here); the decision names it, with zone."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    la = ZoneInfo("America/Los_Angeles")
    surgery.protocol("Possible DVT", ["calf pain"], types=["knee"])
    surgery.on_call(
        "martinez",
        datetime(2026, 12, 12, 20, 0, tzinfo=la),
        datetime(2026, 12, 13, 8, 0, tzinfo=la),
    )
    member(client, surgery.practice, Role.CLINICIAN)
    url = f"/p/{surgery.practice.slug}/protocols/console/"
    form = client.get(url).content.decode()
    assert 'name="at"' in form and 'type="datetime-local"' in form and "America/Los_Angeles" in form
    said = {"text": "my calf hurts", "appointment_type": surgery.types["knee"].pk}

    night = client.post(url, {**said, "at": "2026-12-12T22:00"}, HTTP_HX_REQUEST="true")
    page = night.content.decode()
    assert "Connect to <strong>Dr. Martinez</strong>" in page
    assert "on call at Sat 12 Dec 2026, 22:00 PST" in page

    morning = client.post(url, {**said, "at": "2026-12-13T09:00"}, HTTP_HX_REQUEST="true")
    assert "Nobody is on call at Sun 13 Dec 2026, 09:00 PST" in morning.content.decode()
