"""Bad input is never a 500: every case here answered 500 (or went into the EHR) before the
bounded fields, the bounded JSON parser and the API's problem middleware.

Through Django's test client against real PostgreSQL; the webhook cases sign their bodies with
the connection's own secret.
"""

from __future__ import annotations

import json
import time
from datetime import date, timedelta
from urllib.parse import quote

import pytest
from django.utils import timezone

from core.tenancy import cross_tenant, tenant_context
from ehr.models import ConnectionKind, ConnectionStatus, EHRConnection, WebhookDelivery
from scheduling.models import Booking
from scheduling.services import place_hold
from tests.ehr.conftest import resign
from tests.factories import sign_baa
from tests.receptionist_api.factories import (
    api_client,
    bearer,
    level_2d,
    local,
    schedule,
    token_for,
)

pytestmark = pytest.mark.django_db

TOKEN_URL = "/api/v1/oauth/token"
BIG = 56161511854575460352  # past bigint's 9223372036854775807


@pytest.fixture(autouse=True)
def fast_secret_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def alpha():
    world = level_2d(schedule("alpha", "Alpha Dental"))
    sign_baa(world.s.practice)
    return world


@pytest.fixture
def credentials(alpha):
    return api_client(alpha.s.practice)


@pytest.fixture
def auth(credentials):
    raw, _ = token_for(credentials[0])
    return bearer(raw)


def assert_problem(response, status: int, type_: str | None = None) -> dict:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"] == "application/problem+json", response.content[:200]
    body = response.json()
    assert {"type", "title", "status", "detail"} <= set(body), body
    assert body["status"] == status
    if type_ is not None:
        assert body["type"] == type_, body
    return body


def post_json(client, path, body, auth=None, **headers):
    raw = body if isinstance(body, bytes | str) else json.dumps(body)
    return client.post(path, raw, content_type="application/json", **(auth or {}), **headers)


def hold_body(alpha, **overrides):
    return {
        "appointment_type_id": alpha.cleaning.pk,
        "provider_id": alpha.patel.pk,
        "operatory_id": alpha.op1.pk,
        "start": local(alpha.day, 11).isoformat(),
        **overrides,
    }


# --- dates, instants and offsets at the edges ------------------------------------------------


@pytest.mark.parametrize(("start_date", "days"), [("0001-01-01", 1), ("9999-12-01", 31)])
def test_availability_at_the_calendars_edges_is_a_400(client, alpha, auth, start_date, days):
    query = {"appointment_type_id": alpha.cleaning.pk, "start_date": start_date, "days": days}
    response = client.get("/api/v1/availability", query, **auth)
    body = assert_problem(response, 400, "validation_error")
    assert "2000-01-01" in body["errors"]["start_date"][0]


@pytest.mark.parametrize("start", ["9999-12-31T23:00:00-12:00", "0001-01-01T00:00:00+14:00"])
def test_a_hold_at_the_calendars_edges_is_a_400(client, alpha, auth, start):
    response = post_json(client, "/api/v1/holds", hold_body(alpha, start=start), auth)
    assert "start" in assert_problem(response, 400, "validation_error")["errors"]


def test_an_offset_postgresql_cannot_store_is_a_400_for_calls_and_transcripts(client, auth):
    started = "2026-05-04T11:00:00+22:59"
    response = post_json(
        client, "/api/v1/calls", {"external_id": "c1", "started_at": started}, auth
    )
    assert "15:59" in assert_problem(response, 400)["errors"]["started_at"][0]

    ok = post_json(
        client, "/api/v1/calls", {"external_id": "c1", "started_at": "2026-05-04T11:00-07:00"}, auth
    )
    assert ok.status_code == 201, ok.content
    call_id = ok.json()["id"]
    transcript = {
        "turns": [{"speaker": "caller", "text": "hi", "at": "2026-05-04T11:00:01-07:00"}],
        "ended_at": "2026-05-04T11:05:00-22:59",
    }
    response = client.put(
        f"/api/v1/calls/{call_id}/transcript",
        json.dumps(transcript),
        content_type="application/json",
        **auth,
    )
    assert "ended_at" in assert_problem(response, 400)["errors"]


def test_an_integer_past_bigint_is_a_400(client, alpha, auth):
    response = post_json(client, "/api/v1/holds", hold_body(alpha, operatory_id=BIG), auth)
    assert "operatory_id" in assert_problem(response, 400, "validation_error")["errors"]
    query = {"appointment_type_id": BIG, "start_date": alpha.day.isoformat(), "days": 1}
    response = client.get("/api/v1/availability", query, **auth)
    assert "appointment_type_id" in assert_problem(response, 400)["errors"]


# --- token endpoint: NUL bytes, a multipart body without its boundary --------------------------


def test_a_nul_in_the_client_id_is_refused_as_a_form_and_as_json(client, credentials):
    form = "grant_type=client_credentials&client_id=%00x&client_secret=s"
    response = client.post(TOKEN_URL, form, content_type="application/x-www-form-urlencoded")
    assert_problem(response, 400)
    as_json = {"grant_type": "client_credentials", "client_id": "\x00x", "client_secret": "s"}
    response = post_json(client, TOKEN_URL, as_json)
    assert_problem(response, 400)
    # a lone surrogate cannot be encoded for PostgreSQL either
    lone = json.dumps(as_json).replace("\\u0000x", "\\ud800")
    assert "ud800" in lone
    assert_problem(post_json(client, TOKEN_URL, lone), 400)
    # ... and in the query string of any API call
    response = client.get("/api/v1/appointment-types?x=" + quote("\x00"))
    assert_problem(response, 400)


def test_a_multipart_token_request_without_a_boundary_is_a_400(client, credentials):
    api, _ = credentials
    form = f"grant_type=client_credentials&client_id={api.application.client_id}&client_secret=x"
    response = client.post(TOKEN_URL, form, content_type="multipart/form-data")
    assert_problem(response, 400, "unsupported_grant_type")  # the body reads as empty


# --- bodies: too big, too deep ----------------------------------------------------------------


@pytest.mark.parametrize("path", [TOKEN_URL, "/api/v1/holds"])
def test_a_12_mb_body_is_a_413_problem(client, auth, path):
    body = json.dumps({"pad": "x" * (12 * 1024 * 1024)})
    response = post_json(client, path, body, auth)
    assert_problem(response, 413, "payload_too_large")


@pytest.mark.parametrize("path", [TOKEN_URL, "/api/v1/holds", "/api/v1/intents/resolve"])
def test_5000_deep_json_is_a_400_problem(client, auth, path):
    response = post_json(client, path, "[" * 5000 + "]" * 5000, auth)
    assert_problem(response, 400)


def test_nul_characters_and_infinities_in_json_are_a_400(client, alpha, auth):
    body = {"utterance": "cleaning", "patient_status": "new", "x\u0000": 1}
    assert_problem(post_json(client, "/api/v1/intents/resolve", body, auth), 400)
    raw = json.dumps(hold_body(alpha)).replace("}", ', "x": 1e999}')
    assert_problem(post_json(client, "/api/v1/holds", raw, auth), 400)


# --- routing: problem+json for every status ----------------------------------------------------


def test_api_404_and_405_are_problem_json(client, auth):
    assert_problem(client.delete("/api/v1/holds/abc", **auth), 404, "not_found")
    assert_problem(client.delete(f"/api/v1/holds/{BIG}", **auth), 404, "not_found")
    assert_problem(client.get("/api/v1/no-such-thing", **auth), 404, "not_found")
    response = client.put("/api/v1/holds", "{}", content_type="application/json", **auth)
    body = assert_problem(response, 405, "method_not_allowed")
    assert "POST" in response["Allow"], body


# --- demographics as the EHR would take them ---------------------------------------------------


def booking_post(client, auth, hold_id, key="k-1", **patient):
    body = {
        "hold_id": hold_id,
        "patient": {
            "first_name": "Ana",
            "last_name": "Lopez",
            "date_of_birth": "1985-04-12",
            "phone": "+12135550101",
            **patient,
        },
        "reason": "cleaning",
    }
    return post_json(client, "/api/v1/bookings", body, auth, HTTP_IDEMPOTENCY_KEY=key)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("date_of_birth", "2990-01-01"),
        ("date_of_birth", "1800-01-01"),
        ("date_of_birth", (timezone.now().date() + timedelta(days=2)).isoformat()),
        ("phone", "1"),
        ("phone", "+15555550101"),
        ("first_name", "   "),
        ("last_name", "\u0007Lopez"),
        ("last_name", "1234"),
    ],
)
def test_demographics_the_ehr_would_refuse_are_a_400(client, alpha, auth, field, value):
    response = booking_post(client, auth, 1, **{field: value})
    body = assert_problem(response, 400, "validation_error")
    assert f"patient.{field}" in body["errors"], body


def test_a_booking_keeps_trimmed_names_and_the_phone_as_e164(client, alpha, auth):
    practice = alpha.s.practice
    with tenant_context(practice):
        hold = place_hold(
            practice,
            appointment_type_id=alpha.cleaning.pk,
            provider_id=alpha.patel.pk,
            operatory_id=alpha.op1.pk,
            start=local(alpha.day, 11),
        )
    response = booking_post(
        client,
        auth,
        hold.pk,
        first_name="  Ana   María ",
        last_name=" Lopez ",
        phone="(213) 555-0101",
        date_of_birth=(date.today() - timedelta(days=365 * 40)).isoformat(),
    )
    assert response.status_code == 202, response.content
    with cross_tenant("test: read the booking"):
        stored = Booking.objects.get(pk=response.json()["id"]).demographics
    assert (stored["first_name"], stored["last_name"], stored["phone"]) == (
        "Ana María",
        "Lopez",
        "+12135550101",
    )


def test_an_idempotency_key_with_a_control_character_is_a_400(client, alpha, auth):
    response = booking_post(client, auth, 1, key="k\x07")
    assert "Idempotency-Key" in assert_problem(response, 400)["errors"]


# --- the schema states the bounds -------------------------------------------------------------


def test_the_schema_states_the_bounds(client):
    schema = client.get("/api/v1/schema/?format=json").json()
    props = schema["components"]["schemas"]["HoldRequest"]["properties"]
    assert (props["operatory_id"]["minimum"], props["operatory_id"]["maximum"]) == (1, 2**63 - 1)
    assert props["start"]["format"] == "date-time" and "15:59" in props["start"]["description"]
    query = {p["name"]: p for p in schema["paths"]["/api/v1/availability"]["get"]["parameters"]}
    assert "2199-12-31" in query["start_date"]["schema"].get("description", "") + query[
        "start_date"
    ].get("description", "")
    (hold_id,) = schema["paths"]["/api/v1/holds/{hold_id}"]["delete"]["parameters"]
    assert hold_id["schema"]["maximum"] == 2**63 - 1
    for methods in schema["paths"].values():
        for operation in methods.values():
            assert {"400", "404", "405", "413"} <= set(operation["responses"])


# --- webhooks ----------------------------------------------------------------------------------


@pytest.fixture
def connection(alpha):
    with cross_tenant("test data setup"):
        return EHRConnection.objects.create(
            practice=alpha.s.practice,
            location=alpha.s.location,
            kind=ConnectionKind.SANDBOX,
            base_url="http://127.0.0.1:9",
            subdomain="alpha",
            api_key="k",
            webhook_secret="whsec-test",
            status=ConnectionStatus.NEW,
        )


def deliver(client, connection, body: bytes):
    headers = resign(body, "whsec-test", int(time.time()))
    return client.post(
        f"/integrations/webhooks/nexhealth/{connection.pk}",
        body,
        content_type="application/json",
        **headers,
    )


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 5000 + b"]" * 5000,
        b'{"event": "appointment_created", "delivery_id": "d\\u0000"}',
        b'{"event": "appointment_created", "delivery_id": "d1", "data": {"x": "\\u0000"}}',
        b'{"event": "appointment_created", "delivery_id": "d1", "data": [1]}',
        b'{"event": "appointment_created", "delivery_id": "d1",'
        b' "data": {"appointment": {"id": 56161511854575460352}}}',
        b'{"event": "appointment_created", "delivery_id": "d1",'
        b' "data": {"appointment": {"id": "abc"}}}',
        b'{"event": "appointment_created", "delivery_id": "' + b"d" * 101 + b'"}',
        b'{"event": "appointment_created", "delivery_id": "d1", "data": {"x": "\\ud800"}}',
    ],
    ids=["deep", "nul-id", "nul-data", "data-list", "bigint", "id-text", "long-id", "surrogate"],
)
def test_a_signed_webhook_with_a_bad_body_is_a_400_and_stores_nothing(client, connection, body):
    response = deliver(client, connection, body)
    assert response.status_code == 400, response.content
    with cross_tenant("test: count deliveries"):
        assert not WebhookDelivery.objects.exists()


def test_a_webhook_created_at_past_the_calendar_is_stored_without_it(client, connection):
    body = json.dumps(
        {
            "event": "something_else",
            "delivery_id": "d-edge",
            "created_at": "9999-12-31T23:00:00-12:00",
        }
    ).encode()
    response = deliver(client, connection, body)
    assert response.status_code in (200, 503), response.content  # 503: broker refused the task
    with cross_tenant("test: read the delivery"):
        assert WebhookDelivery.objects.get(delivery_id="d-edge").ehr_created_at is None


# --- staff pages ------------------------------------------------------------------------------


@pytest.fixture
def staff(alpha):
    """A practice manager and a compliance officer of Alpha, each signed in with both factors."""
    from django.test import Client

    from accounts.models import Role
    from tests.conftest import verify_second_factor
    from tests.factories import MembershipFactory, UserFactory

    clients = {}
    for role in (Role.PRACTICE_MANAGER, Role.COMPLIANCE_OFFICER):
        user = UserFactory(totp=True)
        MembershipFactory(user=user, practice=alpha.s.practice, role=role)
        clients[role] = Client()
        verify_second_factor(clients[role], user)
    return clients


EDGE_DAYS = ["9999-12-31", "0001-01-01"]


@pytest.mark.parametrize("day", EDGE_DAYS)
@pytest.mark.parametrize(
    ("role", "page", "params"),
    [
        ("practice_manager", "scheduling/schedule/", ["week"]),
        ("practice_manager", "bookings/", ["since", "until"]),
        ("practice_manager", "calls/", ["since", "until"]),
        ("compliance_officer", "compliance/audit/", ["since", "until"]),
    ],
)
def test_pages_take_dates_at_the_calendars_edges_without_a_500(staff, role, page, params, day):
    for param in params:
        response = staff[role].get(f"/p/alpha/{page}", {param: day})
        assert response.status_code == 200, (param, response.status_code)


@pytest.mark.parametrize("value", ["0001-01-01T00:00", "9999-12-31T23:59"])
def test_a_block_at_the_calendars_edges_is_a_form_error(staff, alpha, value):
    later = "2026-05-04T10:00" if value.startswith("0001") else value
    response = staff["practice_manager"].post(
        "/p/alpha/scheduling/schedule/blocks/new/",
        {
            "location": alpha.s.location.pk,
            "start": value if value.startswith("0001") else "2026-05-04T09:00",
            "end": later,
            "reason": "edge",
        },
    )
    assert response.status_code in (200, 400), response.status_code
    assert b"Give a date from 1900-01-01 to 2199-12-31" in response.content
