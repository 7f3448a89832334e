"""What a support session never does, even when the practice allowed support to make changes:
credentials, BAAs, clinical approval, retention, security settings, exports, configuration
uploads (compliance.support_policy). Each is refused with 403 and changes nothing; the same
request by the practice's own member does change something (so the refusal is the policy's).
Credential-like things made in a session anyway are revoked when it ends."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from accounts.models import Membership, Role, VendorRole
from calls.escalation import services as escalation_services
from calls.models import ApprovalPolicy, CallRetention, ProtocolVersion
from compliance import audit, impersonation, support_policy
from compliance.context import audit_context
from compliance.models import (
    AccessEvent,
    BusinessAssociateAgreement,
    ChangeEntry,
    ImpersonationSession,
    SupportAccess,
)
from compliance.support_policy import SupportForbidden
from core.tenancy import cross_tenant, tenant_context
from onboarding import services as onboarding_services
from portal.setup import services as setup_services
from scheduling.models import ApiClient, AppointmentType, ConfigImport
from tests.calls.test_escalation_world import Clinic
from tests.conftest import verify_second_factor
from tests.factories import MembershipFactory, UserFactory, sign_baa
from tests.receptionist_api.factories import api_client, bearer, token_for
from tests.urlconf import routes

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n% countersigned\n%%EOF\n"


@dataclass
class World:
    """One practice with something to act on for every forbidden route."""

    client_row: ApiClient
    executed: BusinessAssociateAgreement
    draft: BusinessAssociateAgreement
    draft_version: ProtocolVersion
    live_version: ProtocolVersion
    preview: ConfigImport  # an uploaded configuration waiting for confirmation


@pytest.fixture
def world(practice) -> World:
    from compliance import services as baa_services

    sign_baa(practice)
    with tenant_context(practice):
        executed = BusinessAssociateAgreement.objects.get(version=1)
        draft = baa_services.create_draft(practice, practice_signer_name="Dana Reyes")
    row, _ = api_client(practice)
    clinic = Clinic(practice)
    with tenant_context(practice):
        shown = onboarding_services.preview_config(
            practice, config_file().read().decode(), "alpha.json", may_import_baa=False
        )
    assert shown.job is not None, shown.errors
    return World(
        client_row=row,
        executed=executed,
        draft=draft,
        draft_version=clinic.protocol("Fever", ["fever"], approve=False),
        live_version=clinic.protocol("Bleeding", ["bleeding"], approve=True),
        preview=shown.job,
    )


def config_file() -> SimpleUploadedFile:
    doc = json.loads((Path(settings.BASE_DIR) / "demo" / "happy-smiles.json").read_text())
    doc["practice"]["slug"], doc["practice"]["name"] = "alpha", "Alpha Dental"
    doc["ehr"]["kind"] = "none"
    doc.pop("baa", None)
    return SimpleUploadedFile("alpha.json", json.dumps(doc).encode(), "application/json")


def execute_data() -> dict:
    return {
        "practice_signer_name": "Dana Reyes",
        "hello_signer_name": "Sam Hello",
        "executed_on": "2026-01-05",
        "effective_on": "2026-01-05",
        "signed_pdf": SimpleUploadedFile("baa.pdf", PDF, "application/pdf"),
    }


@dataclass(frozen=True)
class Case:
    role: str  # who in the practice may do it
    method: str
    path: Callable[[World], str]
    data: Callable[[], dict] = dict


P = "/p/alpha/"
BAA = P + "compliance/baa/"
MANAGER, OFFICER, CLINICIAN = Role.PRACTICE_MANAGER, Role.COMPLIANCE_OFFICER, Role.CLINICIAN

# Every route refused to support sessions, with a request that the practice itself may make.
CASES: dict[str, Case] = {
    "setup_api_client_create": Case(
        MANAGER,
        "post",
        lambda w: P + "api-clients/new/",
        lambda: {"name": "Support's client", "scopes": ["availability:read", "bookings:write"]},
    ),
    "setup_api_client_rotate": Case(
        MANAGER, "post", lambda w: f"{P}api-clients/{w.client_row.pk}/rotate/"
    ),
    "setup_api_client_revoke": Case(
        MANAGER, "post", lambda w: f"{P}api-clients/{w.client_row.pk}/revoke/"
    ),
    "setup_config_download": Case(MANAGER, "get", lambda w: P + "configuration/download/"),
    "setup_config_upload": Case(
        MANAGER, "post", lambda w: P + "configuration/upload/", lambda: {"file": config_file()}
    ),
    "setup_config_apply": Case(
        MANAGER, "post", lambda w: f"{P}configuration/imports/{w.preview.pk}/apply/"
    ),
    "setup_config_discard": Case(
        MANAGER, "post", lambda w: f"{P}configuration/imports/{w.preview.pk}/discard/"
    ),
    "compliance_baa_new": Case(
        OFFICER, "post", lambda w: BAA + "new/", lambda: {"practice_signer_name": "Dana Reyes"}
    ),
    "compliance_baa_upload": Case(
        OFFICER,
        "post",
        lambda w: f"{BAA}{w.draft.pk}/upload/",
        lambda: {"signed_pdf": SimpleUploadedFile("baa.pdf", PDF, "application/pdf")},
    ),
    "compliance_baa_send": Case(OFFICER, "post", lambda w: f"{BAA}{w.draft.pk}/send/"),
    "compliance_baa_execute": Case(
        OFFICER, "post", lambda w: f"{BAA}{w.draft.pk}/execute/", execute_data
    ),
    "compliance_baa_terminate": Case(
        OFFICER,
        "post",
        lambda w: f"{BAA}{w.executed.pk}/terminate/",
        lambda: {"reason": "practice closed", "confirm": "on"},
    ),
    "compliance_baa_amend": Case(OFFICER, "post", lambda w: f"{BAA}{w.executed.pk}/amend/"),
    "compliance_audit_export": Case(OFFICER, "get", lambda w: P + "compliance/audit/export.csv"),
    "compliance_support_access": Case(
        MANAGER, "post", lambda w: P + "compliance/support-access/", lambda: {}
    ),
    "escalation_protocol_approve": Case(
        CLINICIAN,
        "post",
        lambda w: (
            f"{P}protocols/{w.draft_version.protocol_id}/versions/{w.draft_version.pk}/approve/"
        ),
        lambda: {"confirm": "on", "note": "reviewed"},
    ),
    "escalation_approval_policy": Case(
        CLINICIAN,
        "post",
        lambda w: P + "protocols/approval-policy/",
        lambda: {"allow_self_approval": "on"},
    ),
    "escalation_protocol_withdraw": Case(
        CLINICIAN, "post", lambda w: f"{P}protocols/{w.live_version.protocol_id}/withdraw/"
    ),
    "calls_retention": Case(
        MANAGER,
        "post",
        lambda w: P + "calls/retention/",
        lambda: {"transcript_days": "1", "note_days": "1"},
    ),
}


def snapshot(practice) -> dict:
    """What any of these acts would change: the rows they touch and the audit trail."""
    with tenant_context(practice):
        return {
            "clients": sorted(
                ApiClient.objects.values_list(
                    "pk", "revoked_at", "application__client_secret", "scopes"
                )
            ),
            "baas": sorted(
                BusinessAssociateAgreement.objects.values_list(
                    "pk", "status", "signed_pdf_sha256", "terminated_at"
                )
            ),
            "versions": sorted(ProtocolVersion.objects.values_list("pk", "status")),
            "retention": list(CallRetention.objects.values_list("transcript_days", "note_days")),
            "approval_policy": list(ApprovalPolicy.objects.values_list("allow_self_approval")),
            "support_access": list(SupportAccess.objects.values_list("allow_write")),
            "types": sorted(AppointmentType.objects.values_list("key", "name")),
            "members": sorted(Membership.objects.values_list("user_id", "role")),
            "events": Counter(AccessEvent.objects.values_list("action", flat=True)),
            "changes": ChangeEntry.objects.count(),
            "imports": sorted(ConfigImport.objects.values_list("pk", "status")),
        }


@pytest.fixture
def support(client):
    user = UserFactory(
        totp=True, username="support@hello.test", vendor_role=VendorRole.SUPPORT, is_staff=True
    )
    verify_second_factor(client, user)
    return user


def start_session(client, practice, *, write: bool) -> ImpersonationSession:
    owner = UserFactory(totp=True)
    MembershipFactory(user=owner, practice=practice, role=Role.PRACTICE_MANAGER)
    impersonation.set_write_access(practice, write, owner)
    response = client.post(
        "/support/impersonate/",
        {"practice": "alpha", "reason": "caller cannot book", "ticket": "SUP-7", "minutes": 30},
    )
    assert response.status_code == 302
    with tenant_context(practice):
        session = ImpersonationSession.objects.get(ended_at__isnull=True)
    assert session.write_allowed is write
    return session


def send(client, case: Case, w: World):
    return getattr(client, case.method)(case.path(w), case.data())


def test_the_forbidden_routes_are_exactly_the_declared_ones():
    """Walking the URL conf: every route marked with the policy is a case here, and back."""
    marked = {
        r.name: support_policy.forbidden_action(r.callback)
        for r in routes()
        if support_policy.forbidden_action(r.callback) is not None
    }
    assert set(marked) == set(CASES)
    assert set(marked.values()) >= set(SupportForbidden) - {SupportForbidden.MEMBERSHIP}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_write_enabled_support_session_is_refused_and_nothing_changes(
    client, support, practice, world, name
):
    start_session(client, practice, write=True)
    before = snapshot(practice)
    response = send(client, CASES[name], world)
    assert response.status_code == 403, name
    assert snapshot(practice) == before


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_practice_itself_may(client, practice, world, name):
    """The same requests by the member whose act it is succeed: the 403 above is the policy's."""
    case = CASES[name]
    member = UserFactory(totp=True)
    MembershipFactory(user=member, practice=practice, role=case.role)
    verify_second_factor(client, member)
    before = snapshot(practice)
    response = send(client, case, world)
    assert response.status_code in (200, 302), (name, response.status_code)
    if hasattr(response, "streaming_content"):
        b"".join(response.streaming_content)
    assert snapshot(practice) != before


@pytest.mark.parametrize(
    "call",
    [
        lambda p, w: setup_services.issue_api_client(p, "x", ["availability:read"], None),
        lambda p, w: setup_services.rotate_api_client(w.client_row),
        lambda p, w: setup_services.revoke_api_client(w.client_row),
        lambda p, w: onboarding_services.record_export(p),
        lambda p, w: impersonation.set_write_access(p, True, UserFactory()),
        lambda p, w: escalation_services.set_self_approval(p, True, UserFactory()),
        lambda p, w: escalation_services.approve_version(w.draft_version, UserFactory()),
    ],
    ids=[
        "issue",
        "rotate",
        "revoke",
        "config-export",
        "write-access",
        "self-approval",
        "approve",
    ],
)
def test_services_refuse_too_whoever_calls_them(practice, world, call):
    """Not only the views: a service of the practice's own refuses inside a support session."""
    with tenant_context(practice):
        session = ImpersonationSession.objects.create(
            practice=practice,
            support_user=UserFactory(vendor_role=VendorRole.SUPPORT, is_staff=True),
            reason="r",
            ticket="t",
            started_at=timezone.now(),
            expires_at=timezone.now() + timedelta(minutes=5),
        )
        before = snapshot(practice)
        with audit_context(impersonation_session_id=session.pk), pytest.raises(PermissionDenied):
            call(practice, world)
        assert snapshot(practice) == before


def test_a_client_made_in_a_session_is_revoked_when_it_ends_and_its_tokens_stop(
    client, support, practice, world
):
    """Should a credential be made in a session at all (below the guarded services), it carries
    the session and dies with it: the client, and the tokens already issued to it."""
    session = start_session(client, practice, write=True)
    with audit_context(impersonation_session_id=session.pk):
        made, _ = api_client(practice, name="made in session")
    raw, _ = token_for(made)
    assert made.support_session_id == session.pk
    assert client.get("/api/v1/appointment-types", **bearer(raw)).status_code == 200
    kept_raw, _ = token_for(world.client_row)

    client.post("/support/impersonate/end/")

    assert client.get("/api/v1/appointment-types", **bearer(raw)).status_code == 401
    assert client.get("/api/v1/appointment-types", **bearer(kept_raw)).status_code == 200
    with tenant_context(practice):
        made.refresh_from_db()
        world.client_row.refresh_from_db()
        revoked = AccessEvent.objects.get(action="api_client.revoked")
    assert made.revoked_at is not None and world.client_row.revoked_at is None
    assert revoked.object_ids == [str(made.pk)] and revoked.reason == "support session ended"


def test_an_expired_session_nobody_returns_to_is_closed_by_the_sweep(
    client, support, practice, world
):
    session = start_session(client, practice, write=True)
    with audit_context(impersonation_session_id=session.pk):
        made, _ = api_client(practice, name="made in session")
    raw, _ = token_for(made)
    with tenant_context(practice):
        ImpersonationSession.objects.filter(pk=session.pk).update(
            started_at=session.started_at - timedelta(hours=2),
            expires_at=session.started_at - timedelta(minutes=61),
        )
    from compliance.tasks import close_expired_support_sessions

    assert close_expired_support_sessions() == 1
    assert close_expired_support_sessions() == 0
    with tenant_context(practice):
        session.refresh_from_db()
        made.refresh_from_db()
    assert session.end_reason == "expired" and made.revoked_at is not None
    client.logout()
    assert client.get("/api/v1/appointment-types", **bearer(raw)).status_code == 401
    audit.seal_now()
    with cross_tenant("test"):
        assert audit.verify_chain(audit.chain_name(practice.pk)).ok


def test_the_vendor_admin_where_memberships_change_is_closed_during_a_session(
    client, support, practice
):
    support.is_superuser = True  # even with every permission
    support.save(update_fields=["is_superuser"])
    assert client.get("/admin/portal/membership/").status_code == 200
    start_session(client, practice, write=True)
    assert client.get("/admin/portal/membership/").status_code == 403
    before = snapshot(practice)
    member = UserFactory()
    response = client.post(
        "/admin/portal/membership/add/",
        {"user": member.pk, "practice": practice.pk, "role": Role.PRACTICE_MANAGER},
    )
    assert response.status_code == 403 and snapshot(practice) == before
