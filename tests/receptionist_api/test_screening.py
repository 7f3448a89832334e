"""POST /api/v1/calls/{id}/screen as the voice agent sees it: the decision and who to connect
to now, the decision recorded on the call (words encrypted), the scope, the BAA gate, another
practice's call answering 404, problem+json validation errors."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from calls.models import Call, CallOutcome, Screening
from compliance.gate import is_phi_gated
from core.tenancy import cross_tenant, tenant_context
from tests.calls.test_escalation_world import clinic
from tests.factories import sign_baa
from tests.receptionist_api.factories import api_client, bearer, token_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_secret_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def surgery():
    c = clinic()
    sign_baa(c.practice)
    c.protocol(
        "Post-op bleeding or fever",
        ["bleeding that won't stop", "fever"],
        types=["facelift"],
        within_days=14,
        instructions="Connect the caller to the on-call surgeon now.",
    )
    c.protocol(
        "Chest pain",
        ["chest pain", "short of breath"],
        severity="emergency",
        instructions="Tell the caller to dial 911 now.",
    )
    now = timezone.now()
    c.on_call("martinez", now - timedelta(hours=2), now + timedelta(hours=10))
    return c


def new_call(practice, **kwargs) -> Call:
    with cross_tenant("test data setup"):
        return Call.objects.create(
            practice=practice,
            external_id=kwargs.pop("external_id", f"ext-{Call.objects.count()}"),
            started_at=timezone.now(),
            **kwargs,
        )


def token(practice, scopes=("calls:write",)) -> str:
    client, _ = api_client(practice, scopes=scopes)
    return token_for(client)[0]


def screen(client, raw, call_id, **body):
    return client.post(
        f"/api/v1/calls/{call_id}/screen", body, content_type="application/json", **bearer(raw)
    )


def test_post_op_bleeding_connects_the_caller_to_the_on_call_surgeon(client, surgery):
    call = new_call(surgery.practice)
    raw = token(surgery.practice)
    procedure = (timezone.now() - timedelta(days=3)).date().isoformat()

    response = screen(
        client,
        raw,
        call.pk,
        text="My facelift was Monday and the dressing is soaked through with blood.",
        appointment_type_id=surgery.types["facelift"].pk,
        procedure_date=procedure,
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["escalate"] is True
    assert body["severity"] == "urgent"
    assert body["route_to"] == {
        "provider_id": surgery.providers["martinez"].pk,
        "name": "Dr. Martinez",
        "phone": "+15555550111",
    }
    assert body["instructions"] == "Connect the caller to the on-call surgeon now."
    with tenant_context(surgery.practice):
        call.refresh_from_db()
        assert call.outcome == CallOutcome.ESCALATED
        screening = Screening.objects.get(call=call)
        assert screening.protocol_version.protocol_id == body["protocol_id"]
        assert screening.text.startswith("My facelift was Monday")
        assert screening.procedure_date == procedure
        assert screening.routed_to_id == surgery.providers["martinez"].pk
    # the caller's words are stored encrypted, never in clear
    with cross_tenant("test: read the raw column"), connection.cursor() as cur:
        cur.execute(
            "SELECT octet_length(text), position(convert_to('soaked', 'UTF8') in text) "
            "FROM calls_screening WHERE id = %s",
            [screening.pk],
        )
        length, found_at = cur.fetchone()
    assert length > 0 and found_at == 0


def test_an_emergency_says_dial_911_and_no_match_says_escalate_false(client, surgery):
    call = new_call(surgery.practice)
    raw = token(surgery.practice)

    emergency = screen(client, raw, call.pk, text="I have crushing chest pain").json()
    assert (emergency["escalate"], emergency["severity"], emergency["route_to"]) == (
        True,
        "emergency",
        None,
    )
    assert emergency["instructions"] == "Tell the caller to dial 911 now."

    other = new_call(surgery.practice)
    calm = screen(client, raw, other.pk, text="Can I reschedule my follow-up to Friday?")
    assert calm.status_code == 200
    assert calm.json()["escalate"] is False
    assert calm.json()["protocol_id"] is None and calm.json()["route_to"] is None
    with tenant_context(surgery.practice):
        other.refresh_from_db()
        assert other.outcome == CallOutcome.IN_PROGRESS
        assert Screening.objects.get(call=other).escalate is False


def test_the_procedure_window_is_applied_through_the_api(client, surgery):
    call = new_call(surgery.practice)
    raw = token(surgery.practice)
    long_ago = (timezone.now() - timedelta(days=40)).date().isoformat()
    body = screen(
        client,
        raw,
        call.pk,
        text="I have a fever",
        appointment_type_id=surgery.types["facelift"].pk,
        procedure_date=long_ago,
    ).json()
    assert body["escalate"] is False


def test_another_practices_call_is_404_and_its_type_is_a_validation_error(client, surgery):
    other = clinic("beta", "Beta")
    sign_baa(other.practice)
    theirs = new_call(other.practice, external_id="theirs")
    raw = token(surgery.practice)

    response = screen(client, raw, theirs.pk, text="I have a fever")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"

    mine = new_call(surgery.practice)
    response = screen(
        client, raw, mine.pk, text="fever", appointment_type_id=other.types["facelift"].pk
    )
    assert response.status_code == 400
    assert response.json()["errors"] == {"appointment_type_id": ["Unknown appointment type."]}


def test_validation_errors_are_problem_json(client, surgery):
    call = new_call(surgery.practice)
    raw = token(surgery.practice)
    response = screen(client, raw, call.pk, text="", procedure_date="last tuesday")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "validation_error"
    assert set(body["errors"]) == {"text", "procedure_date"}


def test_the_calls_write_scope_is_required(client, surgery):
    call = new_call(surgery.practice)
    raw = token(surgery.practice, scopes=("availability:read",))
    response = screen(client, raw, call.pk, text="I have a fever")
    assert response.status_code == 403
    assert response.json()["type"] == "insufficient_scope"
    assert client.post(f"/api/v1/calls/{call.pk}/screen", {"text": "x"}).status_code == 401


def test_without_a_baa_in_force_nothing_is_screened(client):
    c = clinic("nobaa", "No BAA Yet")
    c.protocol("Fever", ["fever"])
    call = new_call(c.practice)
    response = screen(client, token(c.practice), call.pk, text="I have a fever")
    assert response.status_code == 403
    assert response.json()["type"] == "baa_required"
    with tenant_context(c.practice):
        assert Screening.objects.count() == 0


def test_the_route_is_phi_gated():
    from django.urls import resolve

    assert is_phi_gated(resolve("/api/v1/calls/1/screen").func)
