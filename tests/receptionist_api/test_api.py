"""The receptionist API as the voice agent sees it: OAuth2 client credentials, scopes, tenant
isolation by token, problem+json errors, the schema, appointment types, intents, availability.

Everything goes through Django's test client against real PostgreSQL with row-level security;
holds and their concurrency are in test_holds.py.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import textwrap
from datetime import time, timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from oauth2_provider.models import AccessToken

from core.tenancy import cross_tenant, current_practice_id
from scheduling.models import ApiClient
from scheduling.services import revoke_api_client, rotate_api_client_secret
from tests.factories import sign_baa
from tests.receptionist_api.factories import (
    api_client,
    bearer,
    level_2d,
    local,
    next_weekday_in_dst,
    schedule,
    token_for,
)

pytestmark = pytest.mark.django_db

TOKEN_URL = "/api/v1/oauth/token"
CONTRACT_PATHS = {
    "/api/v1/oauth/token",
    "/api/v1/appointment-types",
    "/api/v1/intents/resolve",
    "/api/v1/availability",
    "/api/v1/holds",
    "/api/v1/holds/{hold_id}",
}


@pytest.fixture
def alpha():
    return level_2d(schedule("alpha", "Alpha Dental"))


@pytest.fixture
def beta():
    return level_2d(schedule("beta", "Beta Surgery"))


@pytest.fixture
def credentials(alpha):
    client, secret = api_client(alpha.s.practice)
    return client, secret


@pytest.fixture
def auth(credentials):
    raw, _ = token_for(credentials[0])
    return bearer(raw)


def assert_problem(response, status: int, type_: str) -> dict:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert {"type", "title", "status", "detail"} <= set(body), body
    assert body["type"] == type_, body
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    return body


def availability(client, auth, type_id, day, days=1, **params):
    query = {"appointment_type_id": type_id, "start_date": day.isoformat(), "days": days, **params}
    return client.get("/api/v1/availability", query, **auth)


# --- OAuth2 client credentials ----------------------------------------------------------------


def test_token_endpoint_accepts_a_form_and_the_token_works(client, credentials):
    api, secret = credentials
    response = client.post(
        TOKEN_URL,
        {
            "grant_type": "client_credentials",
            "client_id": api.application.client_id,
            "client_secret": secret,
        },
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert set(body["scope"].split()) == {"availability:read", "bookings:write", "calls:write"}
    assert response["Cache-Control"] == "no-store"
    listed = client.get("/api/v1/appointment-types", **bearer(body["access_token"]))
    assert listed.status_code == 200
    # stored as a checksum only: the bearer token itself is not in the database
    assert not AccessToken.objects.filter(token=body["access_token"]).exists()


def test_token_endpoint_accepts_json_and_basic_auth(client, credentials):
    api, secret = credentials
    response = client.post(
        TOKEN_URL,
        json.dumps(
            {
                "grant_type": "client_credentials",
                "client_id": api.application.client_id,
                "client_secret": secret,
                "scope": "availability:read",
            }
        ),
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["scope"] == "availability:read"

    basic = base64.b64encode(f"{api.application.client_id}:{secret}".encode()).decode()
    response = client.post(
        TOKEN_URL,
        {"grant_type": "client_credentials", "scope": "bookings:write"},
        HTTP_AUTHORIZATION=f"Basic {basic}",
    )
    assert response.status_code == 200, response.content
    assert response.json()["scope"] == "bookings:write"


def test_wrong_secret_or_unknown_client_is_401(client, credentials):
    api, secret = credentials
    for client_id, client_secret in (
        (api.application.client_id, secret + "x"),
        ("no-such-client", secret),
    ):
        response = client.post(
            TOKEN_URL,
            {
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": client_secret,
            },
        )
        body = assert_problem(response, 401, "invalid_client")
        assert body["error"] == "invalid_client"  # what OAuth2 libraries read


def test_a_scope_the_client_was_not_granted_is_invalid_scope(client, alpha):
    api, secret = api_client(alpha.s.practice, scopes=["availability:read"])
    response = client.post(
        TOKEN_URL,
        {
            "grant_type": "client_credentials",
            "client_id": api.application.client_id,
            "client_secret": secret,
            "scope": "availability:read bookings:write",
        },
    )
    assert_problem(response, 400, "invalid_scope")
    response = client.post(
        TOKEN_URL,
        {
            "grant_type": "client_credentials",
            "client_id": api.application.client_id,
            "client_secret": secret,
        },
    )
    assert response.json()["scope"] == "availability:read"  # no scope asked: all it was granted


def test_other_grant_types_are_refused(client, credentials):
    api, _ = credentials
    response = client.post(
        TOKEN_URL,
        {"grant_type": "password", "client_id": api.application.client_id, "username": "x"},
    )
    assert response.status_code in (400, 401)
    assert response["Content-Type"] == "application/problem+json"


def test_no_token_or_a_garbage_token_is_401_with_a_bearer_challenge(client, alpha):
    for headers in ({}, bearer("not-a-token"), {"HTTP_AUTHORIZATION": "Basic Zm9vOmJhcg=="}):
        response = client.get("/api/v1/appointment-types", **headers)
        assert_problem(response, 401, "not_authenticated")
        assert response["WWW-Authenticate"].startswith("Bearer")


def test_an_unknown_token_costs_one_query_and_no_tenant(client, alpha):
    with CaptureQueriesContext(connection) as captured:
        response = client.get("/api/v1/appointment-types", **bearer("never-issued"))
    assert_problem(response, 401, "not_authenticated")
    assert len(captured.captured_queries) == 1  # the token table; no cross-tenant lookup
    assert "oauth2_provider_accesstoken" in captured.captured_queries[0]["sql"]


def test_a_known_token_is_checked_on_every_request(client, credentials):
    """The practice of a token is remembered; the token itself is read every time: expiry,
    deletion and revocation act on the next request, not when some cache runs out."""
    raw, token = token_for(credentials[0])
    assert client.get("/api/v1/appointment-types", **bearer(raw)).status_code == 200
    with CaptureQueriesContext(connection) as captured:
        assert client.get("/api/v1/appointment-types", **bearer(raw)).status_code == 200
    # entering the tenant with token, client and practice read under it and, in the same round
    # trip, the list (prepared statements); leaving the tenant
    assert len(captured.captured_queries) == 2
    first = captured.captured_queries[0]["sql"]
    assert "set_config" in first and first.count("EXECUTE") == 2
    AccessToken.objects.filter(pk=token.pk).delete()
    assert_problem(client.get("/api/v1/appointment-types", **bearer(raw)), 401, "not_authenticated")


def test_an_expired_token_is_401(client, credentials):
    raw, token = token_for(credentials[0])
    assert client.get("/api/v1/appointment-types", **bearer(raw)).status_code == 200
    AccessToken.objects.filter(pk=token.pk).update(expires=timezone.now() - timedelta(seconds=1))
    assert_problem(client.get("/api/v1/appointment-types", **bearer(raw)), 401, "not_authenticated")


def test_a_revoked_client_loses_its_tokens_and_cannot_get_new_ones(client, credentials):
    api, secret = credentials
    raw, _ = token_for(api)
    revoke_api_client(api)
    assert_problem(client.get("/api/v1/appointment-types", **bearer(raw)), 401, "not_authenticated")
    response = client.post(
        TOKEN_URL,
        {
            "grant_type": "client_credentials",
            "client_id": api.application.client_id,
            "client_secret": secret,
        },
    )
    assert_problem(response, 401, "invalid_client")
    with cross_tenant("test: check the row stays"):
        assert ApiClient.objects.get(pk=api.pk).revoked_at is not None


def test_a_token_of_a_client_marked_revoked_is_refused_even_if_it_survived(client, credentials):
    """Belt and braces: `revoked_at` alone is enough, whatever happened to the tokens."""
    api, _ = credentials
    raw, _ = token_for(api)
    with cross_tenant("test: revoke behind the service's back"):
        ApiClient.objects.filter(pk=api.pk).update(revoked_at=timezone.now())
    assert_problem(
        client.get("/api/v1/appointment-types", **bearer(raw)), 401, "authentication_failed"
    )


def test_rotating_the_secret_kills_the_old_secret_and_its_tokens(client, credentials):
    api, old = credentials
    raw, _ = token_for(api)
    new = rotate_api_client_secret(api)
    assert client.get("/api/v1/appointment-types", **bearer(raw)).status_code == 401
    for secret, status in ((old, 401), (new, 200)):
        response = client.post(
            TOKEN_URL,
            {
                "grant_type": "client_credentials",
                "client_id": api.application.client_id,
                "client_secret": secret,
            },
        )
        assert response.status_code == status


def test_a_missing_scope_is_403(client, alpha, credentials):
    read_only, _ = token_for(credentials[0], scopes=["availability:read"])
    body = {
        "appointment_type_id": alpha.cleaning.pk,
        "provider_id": alpha.patel.pk,
        "operatory_id": alpha.op1.pk,
        "start": local(alpha.day, 11).isoformat(),
    }
    response = client.post(
        "/api/v1/holds", body, content_type="application/json", **bearer(read_only)
    )
    assert "bookings:write" in assert_problem(response, 403, "insufficient_scope")["detail"]
    assert_problem(client.delete("/api/v1/holds/1", **bearer(read_only)), 403, "insufficient_scope")
    calls_only, _ = token_for(credentials[0], scopes=["calls:write"])
    for path in ("/api/v1/appointment-types", "/api/v1/availability?appointment_type_id=1"):
        assert_problem(client.get(path, **bearer(calls_only)), 403, "insufficient_scope")


def test_a_scope_taken_away_from_the_client_stops_working_on_existing_tokens(client, credentials):
    api, _ = credentials
    raw, _ = token_for(api)
    with cross_tenant("test: narrow the client's grant"):
        ApiClient.objects.filter(pk=api.pk).update(scopes=["bookings:write"])
    assert_problem(
        client.get("/api/v1/appointment-types", **bearer(raw)), 403, "insufficient_scope"
    )


def test_create_api_client_command_prints_working_credentials(client, alpha):
    out = io.StringIO()
    call_command(
        "create_api_client",
        "alpha",
        "--scopes",
        "availability:read",
        "bookings:write",
        "--name",
        "Setup script",
        stdout=out,
    )
    printed = json.loads(out.getvalue())
    assert set(printed) >= {"client_id", "client_secret"}
    response = client.post(
        TOKEN_URL,
        {
            "grant_type": "client_credentials",
            "client_id": printed["client_id"],
            "client_secret": printed["client_secret"],
        },
    )
    assert response.status_code == 200, response.content
    assert set(response.json()["scope"].split()) == {"availability:read", "bookings:write"}
    types = client.get("/api/v1/appointment-types", **bearer(response.json()["access_token"]))
    assert {t["name"] for t in types.json()["results"]} == {"Cleaning", "Exam"}


def test_create_api_client_command_refuses_unknown_practices_and_scopes(alpha):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command(
            "create_api_client", "nope", "--scopes", "availability:read", stdout=io.StringIO()
        )
    with pytest.raises(CommandError):
        call_command("create_api_client", "alpha", "--scopes", "admin", stderr=io.StringIO())


# --- tenancy by token -------------------------------------------------------------------------


def test_the_practice_is_the_tokens_and_the_connection_is_left_clean(client, alpha, beta, auth):
    names = client.get("/api/v1/appointment-types", **auth).json()["results"]
    assert {t["id"] for t in names} == {alpha.cleaning.pk, alpha.exam.pk}
    assert current_practice_id() is None


def test_another_practices_ids_answer_404_on_every_endpoint_that_takes_one(
    client, alpha, beta, auth
):
    hold_body = {
        "appointment_type_id": alpha.cleaning.pk,
        "provider_id": alpha.patel.pk,
        "operatory_id": alpha.op1.pk,
        "start": local(alpha.day, 11).isoformat(),
    }
    foreign = {
        "appointment_type_id": beta.cleaning.pk,
        "provider_id": beta.patel.pk,
        "operatory_id": beta.op1.pk,
    }
    for field, foreign_id in foreign.items():
        response = client.post(
            "/api/v1/holds",
            {**hold_body, field: foreign_id},
            content_type="application/json",
            **auth,
        )
        assert_problem(response, 404, "not_found")
    for params in (
        {"appointment_type_id": beta.cleaning.pk},
        {"appointment_type_id": alpha.cleaning.pk, "provider_id": beta.patel.pk},
        {"appointment_type_id": alpha.cleaning.pk, "location_id": beta.s.location.pk},
    ):
        type_id = params.pop("appointment_type_id")
        assert_problem(availability(client, auth, type_id, alpha.day, **params), 404, "not_found")

    beta_client, _ = api_client(beta.s.practice)
    beta_raw, _ = token_for(beta_client)
    beta_hold = client.post(
        "/api/v1/holds",
        {
            "appointment_type_id": beta.cleaning.pk,
            "provider_id": beta.patel.pk,
            "operatory_id": beta.op1.pk,
            "start": local(beta.day, 11).isoformat(),
        },
        content_type="application/json",
        **bearer(beta_raw),
    )
    assert beta_hold.status_code == 201, beta_hold.content
    assert_problem(
        client.delete(f"/api/v1/holds/{beta_hold.json()['id']}", **auth), 404, "not_found"
    )
    # ...and it is still beta's, still holding 11:00
    beta_slots = availability(client, bearer(beta_raw), beta.cleaning.pk, beta.day).json()["slots"]
    assert [x["start"][11:16] for x in beta_slots] == ["11:30"]


# --- errors -----------------------------------------------------------------------------------


def test_days_out_of_range_and_bad_params_are_400_with_an_errors_map(client, alpha, auth):
    for days in (0, 32, -1):
        response = availability(client, auth, alpha.cleaning.pk, alpha.day, days=days)
        body = assert_problem(response, 400, "validation_error")
        assert list(body["errors"]) == ["days"]
        assert all(isinstance(m, str) for m in body["errors"]["days"])
    response = client.get(
        "/api/v1/availability",
        {"start_date": "07/05/2026", "days": "x", "patient_status": "vip"},
        **auth,
    )
    body = assert_problem(response, 400, "validation_error")
    assert set(body["errors"]) == {"appointment_type_id", "start_date", "days", "patient_status"}


def test_malformed_json_is_a_validation_problem(client, alpha, auth):
    response = client.post("/api/v1/holds", "{not json", content_type="application/json", **auth)
    body = assert_problem(response, 400, "validation_error")
    assert "body" in body["errors"]


def test_schema_is_public_and_lists_the_contract_paths(client):
    response = client.get("/api/v1/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    assert set(schema["paths"]) >= CONTRACT_PATHS
    assert set(schema["paths"]["/api/v1/holds/{hold_id}"]) >= {"delete"}
    flows = schema["components"]["securitySchemes"]["oauth2"]["flows"]
    assert flows["clientCredentials"]["tokenUrl"] == TOKEN_URL
    yaml = client.get("/api/v1/schema/")
    assert yaml.status_code == 200 and b"/api/v1/availability" in yaml.content


# A new gunicorn worker's threads take its first requests together. In a fresh process (the
# state that matters is per process, and this one's is long warm), eight threads ask for the
# schema at once: drf-spectacular loads its extensions on first use without a lock, and all but
# one of them used to fail with a 500 (tfranzel/drf-spectacular#1122).
_FIRST_SCHEMA_REQUESTS = """
    import json, threading
    import django
    django.setup()
    from django.test import RequestFactory
    from django.urls import resolve
    view = resolve("/api/v1/schema/").func
    barrier = threading.Barrier(8)
    codes = []
    def ask():
        request = RequestFactory().get("/api/v1/schema/", HTTP_ACCEPT="application/json")
        barrier.wait(60)
        codes.append(view(request).render().status_code)
    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps(sorted(codes)))
"""


def test_schema_answers_concurrent_first_requests_in_a_new_process():
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_FIRST_SCHEMA_REQUESTS)],
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.splitlines()[-1]) == [200] * 8


def test_every_api_route_but_token_and_schema_needs_a_bearer_token(client):
    from tests.urlconf import routes

    api = [r for r in routes() if r.template.startswith("api/")]
    assert {r.fill() for r in api} >= {"/api/v1/availability", "/api/v1/holds/1"}
    for route in api:
        path = route.fill()
        if route.name in ("api-token", "api-schema"):
            continue
        for method in ("get", "post", "delete"):
            response = getattr(client, method)(path)
            assert response.status_code in (401, 405), f"{method} {path}"


# --- appointment types and intents ------------------------------------------------------------


def test_appointment_types_list_the_practices_types(client, alpha, auth):
    alpha.s.type("Botox", 15, new_patients=False, bookable=False)
    response = client.get("/api/v1/appointment-types", **auth)
    assert response.status_code == 200
    results = response.json()["results"]
    assert [t["name"] for t in results] == ["Botox", "Cleaning", "Exam"]
    botox = results[0]
    assert {k: botox[k] for k in ("minutes", "new_patients", "existing_patients", "bookable")} == {
        "minutes": 15,
        "new_patients": False,
        "existing_patients": True,
        "bookable": False,
    }
    assert set(results[1]) >= {
        "id",
        "name",
        "minutes",
        "new_patients",
        "existing_patients",
        "bookable",
    }


def test_intents_resolve_validates_its_body(client, alpha, auth):
    sign_baa(alpha.s.practice)
    response = client.post(
        "/api/v1/intents/resolve", {"utterance": ""}, content_type="application/json", **auth
    )
    body = assert_problem(response, 400, "validation_error")
    assert set(body["errors"]) == {"utterance", "patient_status"}


def test_intents_resolve_answers_matches(client, alpha, auth):
    from scheduling.models import CallerPhrase

    sign_baa(alpha.s.practice)
    with cross_tenant("test data setup"):
        CallerPhrase.objects.create(
            practice=alpha.s.practice, appointment_type=alpha.cleaning, text="teeth cleaned"
        )
    response = client.post(
        "/api/v1/intents/resolve",
        {"utterance": "I'd like to get my teeth cleaned please", "patient_status": "existing"},
        content_type="application/json",
        **auth,
    )
    assert response.status_code == 200, response.content
    matches = response.json()["matches"]
    assert matches and matches[0]["appointment_type_id"] == alpha.cleaning.pk
    assert set(matches[0]) == {"appointment_type_id", "name", "confidence", "matched_phrase"}
    assert 0 <= matches[0]["confidence"] <= 1
    nothing = client.post(
        "/api/v1/intents/resolve",
        {"utterance": "what are your parking options", "patient_status": "existing"},
        content_type="application/json",
        **auth,
    )
    assert nothing.json() == {"matches": []}


def test_intents_resolve_refuses_without_a_baa(client, alpha, auth):
    """What a caller says about their health is PHI: no BAA in force, no processing."""
    response = client.post(
        "/api/v1/intents/resolve",
        {"utterance": "I had cataract surgery last month", "patient_status": "existing"},
        content_type="application/json",
        **auth,
    )
    assert_problem(response, 403, "baa_required")


# --- availability -----------------------------------------------------------------------------


def test_level_2d_cleaning_slots_are_11_00_and_11_30_in_los_angeles(client, alpha, auth):
    response = availability(client, auth, alpha.cleaning.pk, alpha.day)
    assert response.status_code == 200, response.content
    d = alpha.day.isoformat()
    assert response.json() == {
        "slots": [
            {
                "start": f"{d}T11:00:00-07:00",
                "end": f"{d}T11:30:00-07:00",
                "provider_id": alpha.patel.pk,
                "operatory_id": alpha.op1.pk,
                "location_id": alpha.s.location.pk,
            },
            {
                "start": f"{d}T11:30:00-07:00",
                "end": f"{d}T12:00:00-07:00",
                "provider_id": alpha.patel.pk,
                "operatory_id": alpha.op1.pk,
                "location_id": alpha.s.location.pk,
            },
        ]
    }
    # The afternoon is bound to Exam only: 15-minute exam slots 13:00..16:45.
    exams = availability(client, auth, alpha.exam.pk, alpha.day).json()["slots"]
    assert exams[0]["start"] == f"{d}T13:00:00-07:00" and len(exams) == 16


def test_the_query_count_does_not_grow_with_the_window(
    client, alpha, auth, django_assert_num_queries
):
    s = alpha.s
    other = s.provider("Dr. Lee")
    op2 = s.operatory(name="Operatory 2")
    s.hours(other, op2, time(8), time(17), [alpha.cleaning])
    for n in range(31):  # busy time every day of the longest window
        day = alpha.day + timedelta(days=n)
        s.appointment(other, op2, local(day, 9), local(day, 10))
        s.block(local(day, 12), local(day, 13), provider=other)
    availability(client, auth, alpha.cleaning.pk, alpha.day)  # first call learns the practice
    with CaptureQueriesContext(connection) as one_day:
        assert availability(client, auth, alpha.cleaning.pk, alpha.day, days=1).status_code == 200
    for days in (7, 31):
        with django_assert_num_queries(len(one_day.captured_queries)):
            response = availability(client, auth, alpha.cleaning.pk, alpha.day, days=days)
        assert response.status_code == 200
    assert len(response.json()["slots"]) > 31 * 10
    sent = [q["sql"] for q in one_day.captured_queries]
    # entering the tenant with the token and its API client (a prepared statement), the type,
    # then working hours, rules, the EHR's own free slots (native mode) and busy time sent
    # together, leaving the tenant: four round trips
    assert len(sent) == 4
    assert sent[0].startswith("WITH prev") and "EXECUTE " in sent[0]
    assert "scheduling_appointmenttype" in sent[1] and sent[3].startswith("WITH prev")
    assert [part.split(" ", 1)[0] for part in sent[2].split(";\n")] == ["SELECT"] * 3 + ["(SELECT"]


def test_a_held_slot_disappears_for_every_caller(client, alpha, auth, credentials):
    other_agent, _ = token_for(credentials[0])
    response = client.post(
        "/api/v1/holds",
        {
            "appointment_type_id": alpha.cleaning.pk,
            "provider_id": alpha.patel.pk,
            "operatory_id": alpha.op1.pk,
            "start": local(alpha.day, 11).isoformat(),
        },
        content_type="application/json",
        **auth,
    )
    assert response.status_code == 201, response.content
    for caller in (auth, bearer(other_agent)):
        slots = availability(client, caller, alpha.cleaning.pk, alpha.day).json()["slots"]
        assert [s["start"][11:16] for s in slots] == ["11:30"]


def test_slots_of_locations_in_different_zones_keep_their_own_offsets(client, alpha, auth):
    s = alpha.s
    east = s.add_location("America/New_York", name="East Office")
    op_east = s.operatory(location=east)
    kim = s.provider("Dr. Kim")
    s.hours(kim, op_east, time(9), time(10), [alpha.cleaning], days=["Thursday"])
    slots = availability(client, auth, alpha.cleaning.pk, alpha.day).json()["slots"]
    d = alpha.day.isoformat()
    # 09:00 in New York is 06:00 in Los Angeles: the east coast comes first.
    assert [(x["start"], x["location_id"]) for x in slots] == [
        (f"{d}T09:00:00-04:00", east.pk),
        (f"{d}T09:30:00-04:00", east.pk),
        (f"{d}T11:00:00-07:00", s.location.pk),
        (f"{d}T11:30:00-07:00", s.location.pk),
    ]
    only_east = availability(client, auth, alpha.cleaning.pk, alpha.day, location_id=east.pk)
    assert {x["location_id"] for x in only_east.json()["slots"]} == {east.pk}
    only_patel = availability(
        client, auth, alpha.cleaning.pk, alpha.day, provider_id=alpha.patel.pk
    )
    assert {x["provider_id"] for x in only_patel.json()["slots"]} == {alpha.patel.pk}


def test_rules_status_source_and_bookable_shape_availability(client, alpha, auth):
    s = alpha.s
    tuesday = alpha.day - timedelta(days=2)
    consult = s.type("New Patient Consult", 60, existing_patients=False)
    s.hours(alpha.patel, alpha.op1, time(9), time(17), [consult], days=["Tuesday"])
    s.rule(alpha.patel, [consult], "new", ["Tuesday"], time(12), time(17))
    new = availability(client, auth, consult.pk, tuesday, patient_status="new").json()["slots"]
    assert [x["start"][11:16] for x in new] == ["12:00", "13:00", "14:00", "15:00", "16:00"]
    existing = availability(client, auth, consult.pk, tuesday, patient_status="existing")
    assert existing.json()["slots"] == []  # the type takes new patients only

    # Working hours from the source the location does not use are ignored (manual here).
    synced = s.type("Synced Only", 30)
    s.hours(alpha.patel, alpha.op1, time(9), time(12), [synced], days=["Thursday"], source="synced")
    assert availability(client, auth, synced.pk, alpha.day).json()["slots"] == []

    # A type the agent may not book offers nothing to the agent.
    hidden = s.type("Surgery Consult", 30, bookable=False)
    s.hours(alpha.patel, alpha.op1, time(9), time(12), [hidden], days=["Thursday"])
    assert availability(client, auth, hidden.pk, alpha.day).json()["slots"] == []


def test_lead_time_hides_slots_too_soon(client, alpha, auth):
    s = alpha.s
    soon = next_weekday_in_dst(alpha.day.weekday(), min_days_ahead=0)
    urgent = s.type("Urgent", 30, lead_time_hours=24 * 400)
    s.hours(alpha.patel, alpha.op1, time(9), time(12), [urgent], days=["Thursday"])
    assert availability(client, auth, urgent.pk, soon, days=7).json()["slots"] == []


def test_busy_time_of_every_kind_and_only_live_ones(client, alpha, auth):
    s, d = alpha.s, alpha.day
    # A cancelled appointment and a released hold free their time; a location-wide block does not.
    s.appointment(alpha.patel, alpha.op1, local(d, 11), local(d, 11, 30), cancelled=True)
    assert [
        x["start"][11:16] for x in availability(client, auth, alpha.cleaning.pk, d).json()["slots"]
    ] == ["11:00", "11:30"]
    s.block(local(d, 11, 30), local(d, 12))  # no provider, no operatory: the whole office
    assert [
        x["start"][11:16] for x in availability(client, auth, alpha.cleaning.pk, d).json()["slots"]
    ] == ["11:00"]


def test_new_patients_only_see_providers_who_take_them(client, alpha, auth):
    with cross_tenant("test data setup"):
        type(alpha.patel).objects.filter(pk=alpha.patel.pk).update(accepts_new_patients=False)
    new = availability(client, auth, alpha.cleaning.pk, alpha.day, patient_status="new")
    assert new.json()["slots"] == []
    existing = availability(client, auth, alpha.cleaning.pk, alpha.day)
    assert len(existing.json()["slots"]) == 2
